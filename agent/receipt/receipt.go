package receipt

import (
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/posagent/posagent/provisioning"
)

// Copies turns the flow's receipt into the merchant and cardholder copies. Every
// printer (the demo's text printer, the ESC/POS driver) prints these, so paper
// and demo show the same slip. What it says about the card is the paying
// card's, from the transaction. The issuer and acquirer are the institution
// codes the host's answer named (field 44), trimmed, and their lines are left
// out when it named none: UnionPay is the network, not a bank, and a slip
// that made one up would name the wrong party. A void's slip names the sale
// it cancels (原凭证号, 原参考号).
//
// A chip sale's slip (its record holds the chip's IC data) carries under
// 备注 the IC block of UnionPay slips (ICBlock). Any other slip names the
// card's application only (AID, application label) when it has one: a
// swipe has none, and a void reads the card without a cryptogram, so it
// has no IC data of its own to print.
func Copies(r provisioning.Receipt) []Slip {
	typ := "消费 SALE"
	if r.Kind == "void" {
		// 撤销, as the installer's screen says: "消费撤销" would wrap the
		// line on a 58 mm slip.
		typ = "撤销 VOID"
	}
	card := r.Txn
	entry := "I" // chip
	switch card.Entry {
	case provisioning.EntrySwipe:
		entry = "S"
	case provisioning.EntryFallback:
		entry = "F"
	}
	var ic []string
	switch {
	case card.IC != nil && r.Kind != "void":
		ic = ICBlock(card.AID, card.Label, *card.IC)
	default:
		if card.AID != "" {
			ic = append(ic, "AID: "+card.AID)
		}
		if card.Label != "" {
			ic = append(ic, "APP LABEL: "+card.Label)
		}
	}
	base := Slip{
		MerchantName: r.Merchant.Name, MID: r.Terminal.MID, TID: r.Terminal.TID, Operator: "01",
		Issuer: strings.TrimSpace(r.Txn.Issuer), Acquirer: strings.TrimSpace(r.Txn.Acquirer),
		CardMasked: card.Masked, EntryMode: entry, TxnType: typ,
		Expiry: card.Expiry, Batch: r.Txn.Batch, Voucher: fmt.Sprintf("%06d", r.Txn.STAN),
		AuthCode: r.Txn.AuthCode, RRN: r.Txn.RRN, Time: r.Txn.Time, Amount: r.Txn.Amount,
		ICLines: ic, Duplicate: r.Duplicate, Test: r.Test,
		PINVerified: r.Kind != "void" && card.IC != nil && onlinePINCVM(card.IC.CVM),
	}
	if r.Kind == "void" {
		if r.Txn.OrigSTAN > 0 {
			base.OrigVoucher = fmt.Sprintf("%06d", r.Txn.OrigSTAN)
		}
		base.OrigRRN = r.Txn.OrigRRN
	}
	merchant, holder := base, base
	merchant.Copy, holder.Copy = Merchant, Cardholder
	return []Slip{merchant, holder}
}

// ICBlock is the IC block of a chip sale's slip, one line per object as
// UnionPay slips print them: the card's cryptogram (TC, or AAC, or the
// ARQC when the card gave no second one), TVR, TSI, ATC, the AID and
// application label, the unpredictable number, AIP and the PAN sequence
// number. An object the record lacks is left out rather than printed
// empty.
func ICBlock(aid, label string, ic provisioning.ICData) []string {
	var out []string
	add := func(name, v string) {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, name+": "+v)
		}
	}
	switch {
	case ic.Cryptogram != "" && ic.CID == provisioning.CIDTC:
		add("TC", ic.Cryptogram)
	case ic.Cryptogram != "" && ic.CID == provisioning.CIDAAC:
		add("AAC", ic.Cryptogram)
	case ic.Cryptogram != "":
		// A second cryptogram of no kind a slip names: print it as the
		// card's, not as a TC it may not be.
		add("AC", ic.Cryptogram)
	default:
		add("ARQC", ic.ARQC)
	}
	add("TVR", ic.TVR)
	add("TSI", ic.TSI)
	add("ATC", ic.ATC)
	add("AID", aid)
	add("APP LABEL", label)
	add("UNPR NUM", ic.UN)
	add("AIP", ic.AIP)
	add("CSN", ic.CSN)
	return out
}

// onlinePINCVM reports whether CVM results (9F34, hex) name an online PIN
// (method 02, with or without "apply succeeding rule") that did not fail:
// the cardholder was verified by the PIN, not by a signature.
func onlinePINCVM(cvm string) bool {
	b, err := hex.DecodeString(cvm)
	return err == nil && len(b) == 3 && b[0]&0x3F == 0x02 && b[2] != 0x01
}
