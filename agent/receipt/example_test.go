package receipt_test

import (
	"fmt"
	"time"

	"github.com/posagent/posagent/agent/receipt"
	"github.com/posagent/posagent/provisioning"
)

// A cardholder copy at the width of a 58 mm printer. The card number was passed
// in full by mistake; the slip still shows only the first 6 and last 4 digits.
func ExampleText() {
	s := receipt.Slip{
		Copy:         receipt.Cardholder,
		MerchantName: "测试商户 TEST MERCHANT",
		MID:          "898310048160001",
		TID:          "10000001",
		Operator:     "01",
		CardMasked:   "6217900000000000123",
		EntryMode:    "I",
		TxnType:      "消费 SALE",
		Expiry:       "3012",
		Batch:        "000001",
		Voucher:      "000017",
		AuthCode:     "A1B2C3",
		RRN:          "260101123456",
		Time:         time.Date(2026, 1, 2, 15, 4, 5, 0, time.UTC),
		Amount:       1250,
		ICLines:      []string{"AID: A000000333010101", "TC: 8F3A1C2B4D5E6F70"},
		Duplicate:    true,
	}
	fmt.Print(receipt.Text(s, 32))
	// Output:
	//          银联POS签购单
	//          POS SALES SLIP
	//    持卡人存根 CARDHOLDER COPY
	//        重打印 DUPLICATED
	// --------------------------------
	// 商户名称 MERCHANT NAME:
	// 测试商户 TEST MERCHANT
	// 商户编号 MERCHANT NO.:
	//                  898310048160001
	// 终端编号 TERMINAL NO.:  10000001
	// 操作员号 OPERATOR NO.:        01
	// 卡号 CARD NO.:
	//           621790*********0123 /I
	// 交易类型 TRANS TYPE:   消费 SALE
	// 有效期 EXP DATE:           30/12
	// 批次号 BATCH NO.:         000001
	// 凭证号 VOUCHER NO.:       000017
	// 授权码 AUTH NO.:          A1B2C3
	// 日期/时间 DATE/TIME:
	//              2026/01/02 15:04:05
	// 参考号 REFER NO.:   260101123456
	// 金额 AMOUNT:
	//                        RMB 12.50
	//
	// 备注 REFERENCE:
	// AID: A000000333010101
	// TC: 8F3A1C2B4D5E6F70
	// --------------------------------
	// 本人确认以上交易,同意将其计入本
	// 卡账户
	// I ACKNOWLEDGE SATISFACTORY
	// RECEIPT OF RELATIVE
	// GOODS/SERVICES
}

// The IC block of a chip sale the card approved with a TC, as the slip
// prints it under 备注 REFERENCE.
func ExampleICBlock() {
	ic := provisioning.ICData{ARQC: "8F3A1C2B4D5E6F70", Cryptogram: "1D2C3B4A59687786", CID: provisioning.CIDTC,
		TVR: "8000008000", TSI: "7800", ATC: "001A", UN: "5A7B9C1D", AIP: "7C00", CSN: "01"}
	for _, line := range receipt.ICBlock("A000000333010101", "PBOC DEBIT", ic) {
		fmt.Println(line)
	}
	// Output:
	// TC: 1D2C3B4A59687786
	// TVR: 8000008000
	// TSI: 7800
	// ATC: 001A
	// AID: A000000333010101
	// APP LABEL: PBOC DEBIT
	// UNPR NUM: 5A7B9C1D
	// AIP: 7C00
	// CSN: 01
}
