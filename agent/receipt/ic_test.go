package receipt

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/posagent/posagent/agent/testkit/golden"
	"github.com/posagent/posagent/provisioning"
)

// sampleChipIC is the chip's record of sampleReceipt's sale after the
// card's TC: the values a UnionPay debit card on an online-only terminal
// gives (no offline data authentication, floor limit 0, issuer
// authentication done).
func sampleChipIC() *provisioning.ICData {
	return &provisioning.ICData{
		ARQC: "8F3A1C2B4D5E6F70", Cryptogram: "1D2C3B4A59687786", CID: provisioning.CIDTC,
		TVR: "8000008000", TSI: "7800", ATC: "001A", UN: "5A7B9C1D", AIP: "7C00", CSN: "01", CVM: "1E0300",
		TC: "9F26081D2C3B4A59687786", Reversal: "950580000080009F3602001A",
	}
}

// sampleChipReceipt is sampleReceipt's sale as a chip sale completed on
// the card.
func sampleChipReceipt() provisioning.Receipt {
	r := sampleReceipt()
	r.Txn.IC = sampleChipIC()
	return r
}

// TestGoldenChipSale keeps both copies of a chip sale's slip on a 58 mm
// printer and the merchant copy on an 80 mm one (48 columns): the IC block
// follows 备注 REFERENCE.
func TestGoldenChipSale(t *testing.T) {
	copies := Copies(sampleChipReceipt())
	for _, s := range copies {
		golden.Check(t, filepath.Join("testdata", "sale_chip_"+string(s.Copy)+".golden"), Text(s, 32))
	}
	golden.Check(t, filepath.Join("testdata", "sale_chip_merchant_48.golden"), Text(copies[0], 48))
}

// The IC block says what the record says, in the order UnionPay slips
// print it, with the cryptogram named by its kind.
func TestICBlock(t *testing.T) {
	tc := *sampleChipIC()
	arqcOnly := tc
	arqcOnly.Cryptogram, arqcOnly.CID = "", ""
	aac := tc
	aac.CID = provisioning.CIDAAC
	sparse := provisioning.ICData{ARQC: "0102030405060708", ATC: "0003"}
	for _, c := range []struct {
		name       string
		aid, label string
		ic         provisioning.ICData
		want       []string
	}{
		{"TC", "A000000333010101", "PBOC DEBIT", tc, []string{
			"TC: 1D2C3B4A59687786", "TVR: 8000008000", "TSI: 7800", "ATC: 001A", "AID: A000000333010101",
			"APP LABEL: PBOC DEBIT", "UNPR NUM: 5A7B9C1D", "AIP: 7C00", "CSN: 01"}},
		{"no second cryptogram", "A000000333010101", "", arqcOnly, []string{
			"ARQC: 8F3A1C2B4D5E6F70", "TVR: 8000008000", "TSI: 7800", "ATC: 001A", "AID: A000000333010101",
			"UNPR NUM: 5A7B9C1D", "AIP: 7C00", "CSN: 01"}},
		{"AAC", "A000000333010101", "PBOC DEBIT", aac, []string{
			"AAC: 1D2C3B4A59687786", "TVR: 8000008000", "TSI: 7800", "ATC: 001A", "AID: A000000333010101",
			"APP LABEL: PBOC DEBIT", "UNPR NUM: 5A7B9C1D", "AIP: 7C00", "CSN: 01"}},
		{"sparse record", "", "", sparse, []string{"ARQC: 0102030405060708", "ATC: 0003"}},
	} {
		if got := ICBlock(c.aid, c.label, c.ic); !slices.Equal(got, c.want) {
			t.Errorf("%s: ICBlock =\n%q\nwant\n%q", c.name, got, c.want)
		}
	}
}

// icLabels are the IC block's labels but the application's, which slips
// without IC data print too.
var icLabels = []string{"TC:", "ARQC:", "AAC:", "AC:", "TVR:", "TSI:", "ATC:", "UNPR NUM:", "AIP:", "CSN:"}

// A chip sale's slip has the block on both copies, after the card's lines
// and under 备注; the rest of the slip is the slip of the same sale
// without IC data. A swipe's slip and a void's have no IC block, even when
// a void's record carries the sale's IC data by mistake: the void made no
// cryptogram.
func TestICBlockOnWhichSlips(t *testing.T) {
	plain := Copies(sampleReceipt())
	for i, s := range Copies(sampleChipReceipt()) {
		lines := Render(s, 32)
		ref := slices.Index(lines, "备注 REFERENCE:")
		block := ICBlock("A000000333010101", "UnionPay Debit", *sampleChipIC())
		if ref < 0 || !slices.Equal(lines[ref+1:ref+1+len(block)], block) || !strings.HasPrefix(lines[ref+1+len(block)], "---") {
			t.Errorf("%s copy: the IC block is not under 备注:\n%s", s.Copy, strings.Join(lines, "\n"))
		}
		without := slices.Concat(lines[:ref+1], lines[ref+1+len(block):])
		want := Render(plain[i], 32)
		wantRef := slices.Index(want, "备注 REFERENCE:")
		want = slices.Concat(want[:wantRef+1], want[wantRef+3:]) // its AID and label lines
		if !slices.Equal(without, want) {
			t.Errorf("%s copy: outside the IC block the slip differs from the sale's without IC data", s.Copy)
		}
	}

	swipe := sampleReceipt()
	swipe.Txn.Entry, swipe.Txn.AID, swipe.Txn.Label = provisioning.EntrySwipe, "", ""
	void := sampleVoid()
	void.Txn.IC = sampleChipIC()
	for name, r := range map[string]provisioning.Receipt{"swipe": swipe, "void": void} {
		for _, s := range Copies(r) {
			text := Text(s, 32)
			for _, l := range icLabels {
				if strings.Contains(text, "\n"+l) {
					t.Errorf("%s %s copy prints %q:\n%s", name, s.Copy, l, text)
				}
			}
		}
	}
	if text := Text(Copies(void)[0], 32); !strings.Contains(text, "\nAID: A000000333010101\nAPP LABEL: UnionPay Debit\n") {
		t.Errorf("the void's slip lost the card's application lines:\n%s", text)
	}
	if text := Text(Copies(swipe)[0], 32); strings.Contains(text, "AID:") || !strings.Contains(text, "/S\n") {
		t.Errorf("the swipe's slip:\n%s", text)
	}
}

// The IC block fits every paper width without trailing spaces.
func TestICBlockFits(t *testing.T) {
	for _, w := range []int{24, 32, 48} {
		for _, s := range Copies(sampleChipReceipt()) {
			for i, line := range Render(s, w) {
				if Width(line) > w || strings.TrimRight(line, " ") != line {
					t.Errorf("width %d, %s copy, line %d: %q", w, s.Copy, i, line)
				}
			}
			if text := Text(s, w); !strings.Contains(text, "\nTC: 1D2C3B4A59687786\n") {
				t.Errorf("width %d: the TC line is broken:\n%s", w, text)
			}
		}
	}
}
