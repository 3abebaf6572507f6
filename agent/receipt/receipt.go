package receipt

import (
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
	if card.AID != "" {
		ic = append(ic, "AID: "+card.AID)
	}
	if card.Label != "" {
		ic = append(ic, "APP LABEL: "+card.Label)
	}
	base := Slip{
		MerchantName: r.Merchant.Name, MID: r.Terminal.MID, TID: r.Terminal.TID, Operator: "01",
		Issuer: strings.TrimSpace(r.Txn.Issuer), Acquirer: strings.TrimSpace(r.Txn.Acquirer),
		CardMasked: card.Masked, EntryMode: entry, TxnType: typ,
		Expiry: card.Expiry, Batch: r.Txn.Batch, Voucher: fmt.Sprintf("%06d", r.Txn.STAN),
		AuthCode: r.Txn.AuthCode, RRN: r.Txn.RRN, Time: r.Txn.Time, Amount: r.Txn.Amount,
		ICLines: ic, Duplicate: r.Duplicate, Test: r.Test,
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
