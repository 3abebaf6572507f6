package emv_test

import (
	"context"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/posagent/posagent/agent/card/emv"
	"github.com/posagent/posagent/agent/card/oda"
	"github.com/posagent/posagent/agent/sim/cardsim"
	"github.com/posagent/posagent/agent/sim/hostsim"
	"github.com/posagent/posagent/drivers/cardreader/cardreadertest"
	"github.com/posagent/posagent/provisioning"
)

// testCAPKs are the CA keys hostsim serves in its IC key download
// (agent/sim/testca), as the terminal's download store holds them.
func testCAPKs(t *testing.T) []provisioning.CAPK {
	t.Helper()
	keys, err := hostsim.DefaultCAPKs()
	if err != nil {
		t.Fatal(err)
	}
	var out []provisioning.CAPK
	for _, k := range keys {
		out = append(out, k.Terminal())
	}
	return out
}

// testRevoked is the test CA's revocation list (agent/sim/testca/revoked.yaml).
func testRevoked(t *testing.T) []oda.Revocation {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "sim", "testca", "revoked.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	r, err := oda.ParseRevocations(b)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestODAOutcomes reads each ODA card of testdata/cards/oda (certificates
// made by cardsim from the test CA, independently of the verifier) for a
// sale and checks TVR byte 1 and TSI byte 1 after the first GENERATE AC:
// each outcome sets its own bits (EMV Book 3 §10.3, Annex C5/C6).
func TestODAOutcomes(t *testing.T) {
	capks, revoked := testCAPKs(t), testRevoked(t)
	for _, tc := range []struct {
		profile      string
		tvr1, tsiODA byte // TVR byte 1; TSI byte 1's "ODA performed" bit
		internalAuth int  // INTERNAL AUTHENTICATE commands the card saw
	}{
		{"debit", 0x80, 0, 0},                      // no ODA method claimed: not performed
		{"oda/sda", 0x02, 0x80, 0},                 // SDA selected, passed
		{"oda/dda", 0x00, 0x80, 1},                 // DDA passed: byte 1 all clear
		{"oda/cda", 0x00, 0x80, 0},                 // CDA passed: signed inside GENERATE AC
		{"oda/bad-icc-cert", 0x08, 0x80, 0},        // ICC key not recovered: DDA failed
		{"oda/expired-issuer-cert", 0x08, 0x80, 0}, // issuer certificate expired
		{"oda/wrong-capk-index", 0x08, 0x80, 0},    // no CA key for its index
		{"oda/revoked-issuer-cert", 0x08, 0x80, 0}, // issuer certificate revoked
		{"oda/dda-bad-signature", 0x08, 0x80, 1},   // signed dynamic data does not verify
	} {
		t.Run(tc.profile, func(t *testing.T) {
			sim := loadCard(t, tc.profile, nil)
			r := cardreadertest.NewReader("slot0")
			r.Insert("slot0", sim.AsCard("slot0"))
			term := fixedTerminal().WithCAPKs(capks)
			term.Revoked = revoked
			src := &emv.Source{Reader: r, Terminal: term}
			p, err := src.Pay(context.Background(), provisioning.CardRequest{Purpose: "sale", Amount: saleAmount})
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			ic := p.Card().IC
			tvr, _ := hex.DecodeString(ic.TVR)
			tsi, _ := hex.DecodeString(ic.TSI)
			if len(tvr) != 5 || len(tsi) != 2 || tvr[0] != tc.tvr1 || tsi[0]&0x80 != tc.tsiODA {
				t.Errorf("TVR %s TSI %s: want TVR byte 1 %02X, TSI ODA bit %02X", ic.TVR, ic.TSI, tc.tvr1, tc.tsiODA)
			}
			if n := sim.Steps("internal_authenticate"); n != tc.internalAuth {
				t.Errorf("INTERNAL AUTHENTICATE sent %d times, want %d", n, tc.internalAuth)
			}
		})
	}
	// Without the CA keys (no download yet) the DDA card fails its method.
	sim := loadCard(t, "oda/dda", nil)
	r := cardreadertest.NewReader("slot0")
	r.Insert("slot0", sim.AsCard("slot0"))
	p, err := (&emv.Source{Reader: r, Terminal: fixedTerminal()}).Pay(context.Background(), provisioning.CardRequest{Purpose: "sale", Amount: saleAmount})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if tvr := p.Card().IC.TVR; tvr[:2] != "08" {
		t.Errorf("DDA card without CA keys: TVR %s, want DDA failed", tvr)
	}
	// The revoked card's certificates are sound: without the revocation
	// list its DDA passes, so the list is what failed it above.
	sim = loadCard(t, "oda/revoked-issuer-cert", nil)
	r = cardreadertest.NewReader("slot0")
	r.Insert("slot0", sim.AsCard("slot0"))
	p2, err := (&emv.Source{Reader: r, Terminal: fixedTerminal().WithCAPKs(capks)}).Pay(context.Background(), provisioning.CardRequest{Purpose: "sale", Amount: saleAmount})
	if err != nil {
		t.Fatal(err)
	}
	defer p2.Close()
	if tvr := p2.Card().IC.TVR; tvr[:2] != "00" {
		t.Errorf("revoked card without the revocation list: TVR %s, want DDA passed", tvr)
	}
}

// TestReadODAOutcome: a tool's Read reports the ODA outcome, TVR and TSI
// as the phases left them; CDA's verdict includes the GENERATE AC's
// signature.
func TestReadODAOutcome(t *testing.T) {
	otherKey := func(p *cardsim.Profile) { p.ODA.SignKey = "../../pki/other-icc.key.pem" }
	for _, tc := range []struct {
		profile   string
		edit      func(*cardsim.Profile)
		oda, tvr1 string
	}{
		{"debit", nil, "not performed", "80"},
		{"oda/sda", nil, "SDA passed", "02"},
		{"oda/dda", nil, "DDA passed", "00"},
		{"oda/bad-icc-cert", nil, "DDA failed", "08"},
		{"oda/cda", nil, "CDA passed", "00"},
	} {
		sim := loadCard(t, tc.profile, tc.edit)
		res, err := emv.Read(context.Background(), sim.AsCard("sim"), fixedTerminal().WithCAPKs(testCAPKs(t)), emv.Transaction{Type: 0x31})
		if err != nil {
			t.Fatalf("%s: %v", tc.profile, err)
		}
		if res.ODA != tc.oda || len(res.TVR) != 10 || res.TVR[:2] != tc.tvr1 || len(res.TSI) != 4 {
			t.Errorf("%s: ODA %q TVR %s TSI %s, want %q and TVR byte 1 %s", tc.profile, res.ODA, res.TVR, res.TSI, tc.oda, tc.tvr1)
		}
	}
	// A CDA whose ARQC signature fails is declined offline: the read ends
	// with ErrDeclined, its TVR saying CDA failed.
	sim := loadCard(t, "oda/cda", otherKey)
	if _, err := emv.Read(context.Background(), sim.AsCard("sim"), fixedTerminal().WithCAPKs(testCAPKs(t)), emv.Transaction{Type: 0x31}); !errors.Is(err, emv.ErrDeclined) || !strings.Contains(err.Error(), "TVR 04") {
		t.Errorf("CDA failed: %v, want ErrDeclined with TVR 04…", err)
	}
	sim = loadCard(t, "oda/qpboc", nil)
	term := fixedTerminal()
	term.Contactless = true
	res, err := emv.Read(context.Background(), sim.AsCard("sim"), term, emv.Transaction{Amount: 1})
	if err != nil || res.ODA != "not performed (contactless, online cryptogram)" {
		t.Errorf("qPBOC: ODA %q err %v", res.ODA, err)
	}
}
