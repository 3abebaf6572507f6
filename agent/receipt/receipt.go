package receipt

import (
	"fmt"

	"github.com/posagent/posagent/provisioning"
)

// Copies turns the flow's receipt into the merchant and cardholder copies. Every
// printer (the demo's text printer, the ESC/POS driver) prints these, so paper
// and demo show the same slip.
func Copies(r provisioning.Receipt) []Slip {
	typ := "消费 SALE"
	if r.Kind == "void" {
		typ = "消费撤销 VOID"
	}
	entry := "I" // chip; a card bound without an AID was swiped
	if r.Card.AID == "" {
		entry = "S"
	}
	var ic []string
	if r.Card.AID != "" {
		ic = append(ic, "AID: "+r.Card.AID)
	}
	if r.Card.Label != "" {
		ic = append(ic, "APP LABEL: "+r.Card.Label)
	}
	base := Slip{
		MerchantName: r.Merchant.Name, MID: r.Terminal.MID, TID: r.Terminal.TID, Operator: "01",
		Acquirer: "银联 UNIONPAY", CardMasked: r.Card.Masked, EntryMode: entry, TxnType: typ,
		Expiry: r.Card.Expiry, Batch: r.Txn.Batch, Voucher: fmt.Sprintf("%06d", r.Txn.STAN),
		AuthCode: r.Txn.AuthCode, RRN: r.Txn.RRN, Time: r.Txn.Time, Amount: r.Txn.Amount,
		ICLines: ic, Duplicate: r.Duplicate, Test: r.Test,
	}
	merchant, holder := base, base
	merchant.Copy, holder.Copy = Merchant, Cardholder
	return []Slip{merchant, holder}
}
