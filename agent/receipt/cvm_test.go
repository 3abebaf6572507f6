package receipt

import (
	"strings"
	"testing"

	"github.com/posagent/posagent/provisioning"
)

// TestSignatureLineFollowsTheCVM: a chip sale verified by an online PIN
// asks for no signature; one verified by signature, one whose PIN failed,
// and a swipe keep the signature line; the cardholder's copy never has one.
func TestSignatureLineFollowsTheCVM(t *testing.T) {
	for _, tc := range []struct {
		name  string
		ic    *provisioning.ICData
		entry provisioning.Entry
		pin   bool // the merchant copy says the PIN verified the cardholder
	}{
		{"online PIN", &provisioning.ICData{CVM: "020000", Cryptogram: "1122334455667788", CID: "40"}, provisioning.EntryChip, true},
		{"online PIN, apply next", &provisioning.ICData{CVM: "420300", CID: "40"}, provisioning.EntryChip, true},
		{"online PIN failed", &provisioning.ICData{CVM: "020001", CID: "40"}, provisioning.EntryChip, false},
		{"signature", &provisioning.ICData{CVM: "1E0300", CID: "40"}, provisioning.EntryChip, false},
		{"no CVM", &provisioning.ICData{CVM: "3F0000", CID: "40"}, provisioning.EntryChip, false},
		{"swipe", nil, provisioning.EntrySwipe, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := provisioning.Receipt{Kind: "sale", Merchant: provisioning.Merchant{Name: "上海示例便利店"},
				Terminal: provisioning.Terminal{TID: "10000001", MID: "898310048990001"},
				Txn:      provisioning.TxnRecord{STAN: 1, Batch: "000001", Amount: 1, Masked: "622202*********0128", Entry: tc.entry, IC: tc.ic}}
			copies := Copies(r)
			merchant, holder := Text(copies[0], 32), Text(copies[1], 32)
			if got := strings.Contains(merchant, "PIN VERIFIED"); got != tc.pin {
				t.Errorf("merchant copy says PIN verified: %v, want %v\n%s", got, tc.pin, merchant)
			}
			if got := strings.Contains(merchant, "CARDHOLDER SIGNATURE"); got == tc.pin {
				t.Errorf("merchant copy has a signature line: %v, want %v\n%s", got, !tc.pin, merchant)
			}
			if strings.Contains(holder, "CARDHOLDER SIGNATURE") || strings.Contains(holder, "PIN VERIFIED") {
				t.Errorf("cardholder copy:\n%s", holder)
			}
		})
	}
}
