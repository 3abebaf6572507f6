package receipt

import (
	"fmt"

	"github.com/posagent/posagent/provisioning"
)

// Copies turns the flow's receipt into the merchant and cardholder copies. Every
// printer (the demo's text printer, the ESC/POS driver) prints these, so paper
// and demo show the same slip. What it says about the card is the paying
// card's, from the transaction.
func Copies(r provisioning.Receipt) []Slip {
	typ := "消费 SALE"
	if r.Kind == "void" {
		typ = "消费撤销 VOID"
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
	if card.AID != "" {
		ic = append(ic, "AID: "+card.AID)
	}
	if card.Label != "" {
		ic = append(ic, "APP LABEL: "+card.Label)
	}
	base := Slip{
		MerchantName: r.Merchant.Name, MID: r.Terminal.MID, TID: r.Terminal.TID, Operator: "01",
		Acquirer: "银联 UNIONPAY", CardMasked: card.Masked, EntryMode: entry, TxnType: typ,
		Expiry: card.Expiry, Batch: r.Txn.Batch, Voucher: fmt.Sprintf("%06d", r.Txn.STAN),
		AuthCode: r.Txn.AuthCode, RRN: r.Txn.RRN, Time: r.Txn.Time, Amount: r.Txn.Amount,
		ICLines: ic, Duplicate: r.Duplicate, Test: r.Test,
	}
	merchant, holder := base, base
	merchant.Copy, holder.Copy = Merchant, Cardholder
	return []Slip{merchant, holder}
}
