package emv_test

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"sync"
	"testing"

	"github.com/posagent/posagent/agent/card/emv"
	"github.com/posagent/posagent/agent/sim/cardsim"
	"github.com/posagent/posagent/drivers/cardreader"
	"github.com/posagent/posagent/drivers/cardreader/cardreadertest"
	"github.com/posagent/posagent/provisioning"
)

// The CDA tests run testdata/cards/oda/cda.yaml in process: cardsim signs
// its GENERATE AC answers with its own code (agent/sim/cardsim/oda.go)
// under certificates chained to hostsim's CA keys.

// tamper is a card connection that changes the answers of one GENERATE AC
// (the n-th, counting from 1) before the kernel sees them.
type tamper struct {
	cardreader.Card
	mu   sync.Mutex
	n    int // which GENERATE AC to change; 0 none
	seen int
	edit func(resp []byte)
}

func (t *tamper) Transmit(ctx context.Context, cmd []byte) ([]byte, error) {
	resp, err := t.Card.Transmit(ctx, cmd)
	if err != nil || len(cmd) < 2 || cmd[0] != 0x80 || cmd[1] != 0xAE {
		return resp, err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.seen++
	if t.seen == t.n && len(resp) > 2 {
		resp = append([]byte(nil), resp...)
		t.edit(resp[:len(resp)-2])
	}
	return resp, nil
}

// cdaSale pays saleAmount with the CDA card (edited by edit) through conn
// and the terminal holding hostsim's CA keys.
func cdaSale(t *testing.T, edit func(*cardsim.Profile), wrap func(cardreader.Card) cardreader.Card) (*cardsim.Card, *emv.Payment) {
	t.Helper()
	sim := loadCard(t, "oda/cda", edit)
	var card cardreader.Card = sim.AsCard("slot0")
	if wrap != nil {
		card = wrap(card)
	}
	r := cardreadertest.NewReader("slot0")
	r.Insert("slot0", card)
	src := &emv.Source{Reader: r, Terminal: fixedTerminal().WithCAPKs(testCAPKs(t))}
	p, err := src.Pay(context.Background(), provisioning.CardRequest{Purpose: "sale", Amount: saleAmount})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return sim, p.(*emv.Payment)
}

// acP1s are the P1 bytes of the first and second GENERATE AC the card saw.
func acP1s(sim *cardsim.Card) (first, second []byte) {
	for _, e := range sim.Trace() {
		switch e.Step {
		case "generate_ac":
			first = append(first, e.Header[2])
		case "generate_ac2":
			second = append(second, e.Header[2])
		}
	}
	return first, second
}

// hostApproval is hostsim's approval of the sale as the card's issuer
// would give it: 91 over the ARQC of field 55.
func hostApproval(t *testing.T, sim *cardsim.Card, p *emv.Payment) provisioning.HostVerdict {
	t.Helper()
	ic := tlvMap(t, p.Card().ICData)
	key, _ := hex.DecodeString(sim.Profile().Key)
	auth, err := cardsim.IssuerAuthData(key, binary.BigEndian.Uint16(ic[0x9F36]), ic[0x9F26], []byte("00"))
	if err != nil {
		t.Fatal(err)
	}
	return provisioning.HostVerdict{Online: true, Approved: true, RC: "00", IssuerData: answer(auth)}
}

func TestCDASale(t *testing.T) {
	sim, p := cdaSale(t, nil, nil)
	c := p.Card()
	tvr, _ := hex.DecodeString(c.IC.TVR)
	tsi, _ := hex.DecodeString(c.IC.TSI)
	if tvr[0] != 0x00 || tsi[0]&0x80 == 0 {
		t.Errorf("TVR %s TSI %s: want TVR byte 1 clear (CDA selected, passed) and TSI ODA performed", c.IC.TVR, c.IC.TSI)
	}
	if n := sim.Steps("internal_authenticate"); n != 0 {
		t.Errorf("%d INTERNAL AUTHENTICATE for a CDA card, want none", n)
	}
	first, _ := acP1s(sim)
	if len(first) != 1 || first[0] != 0x90 {
		t.Fatalf("first GENERATE AC P1 %X, want 90 (ARQC, CDA signature requested)", first)
	}
	// The card sends no 9F26 in the clear: the one in field 55 came out of
	// the signature, and the issuer's check of it is cardsim's own.
	if err := cardsim.VerifyField55(mustHex(sim.Profile().Key), sim.Profile().Applications[0].CDOL1, c.ICData); err != nil {
		t.Errorf("field 55 ARQC: %v", err)
	}
	if c.IC.ARQC == "" || c.IC.ARQC != emv.Hex(tlvMap(t, c.ICData)[0x9F26]) {
		t.Errorf("IC.ARQC %q is not field 55's cryptogram", c.IC.ARQC)
	}

	v, err := p.Complete(context.Background(), hostApproval(t, sim, p))
	if err != nil {
		t.Fatal(err)
	}
	_, second := acP1s(sim)
	if len(second) != 1 || second[0] != 0x50 {
		t.Errorf("second GENERATE AC P1 %X, want 50 (TC, CDA signature requested)", second)
	}
	if !v.Approved || v.IC.CID != "40" || len(v.IC.Cryptogram) != 16 {
		t.Errorf("verdict approved=%v CID %s cryptogram %q: want an approved, signed TC", v.Approved, v.IC.CID, v.IC.Cryptogram)
	}
	if tvr := v.IC.TVR; tvr[:2] != "00" {
		t.Errorf("after the second GENERATE AC TVR %s, want byte 1 clear", tvr)
	}
}

// TestCDAFirstACFails: the card signs its ARQC with another key, so the
// signature does not verify: the terminal declines offline — the card is
// asked for an AAC (second GENERATE AC, P1 00, 8A Z1) and Pay fails with
// ErrDeclined, before anything could go to a host.
func TestCDAFirstACFails(t *testing.T) {
	sim := loadCard(t, "oda/cda", func(pr *cardsim.Profile) { pr.ODA.SignKey = "../../pki/other-icc.key.pem" })
	r := cardreadertest.NewReader("slot0")
	r.Insert("slot0", sim.AsCard("slot0"))
	src := &emv.Source{Reader: r, Terminal: fixedTerminal().WithCAPKs(testCAPKs(t))}
	p, err := src.Pay(context.Background(), provisioning.CardRequest{Purpose: "sale", Amount: saleAmount})
	if !errors.Is(err, emv.ErrDeclined) || p != nil {
		t.Fatalf("Pay: %v, want ErrDeclined and no payment", err)
	}
	first, second := acP1s(sim)
	if len(first) != 1 || first[0] != 0x90 || len(second) != 1 || second[0] != 0x00 {
		t.Errorf("GENERATE AC P1s %X then %X, want 90 then 00", first, second)
	}
}

// TestCDASecondACFails: the TC's signed answer is changed on the way (a
// byte of its issuer application data, which the transaction data hash
// covers): the terminal must not accept the TC and treats it as an AAC.
func TestCDASecondACFails(t *testing.T) {
	sim, p := cdaSale(t, nil, func(c cardreader.Card) cardreader.Card {
		return &tamper{Card: c, n: 2, edit: func(resp []byte) { resp[len(resp)-1] ^= 0x01 }}
	})
	if tvr := p.Card().IC.TVR; tvr[:2] != "00" {
		t.Fatalf("first GENERATE AC untouched, yet TVR %s", tvr)
	}
	v, err := p.Complete(context.Background(), hostApproval(t, sim, p))
	if err != nil {
		t.Fatal(err)
	}
	_, second := acP1s(sim)
	if len(second) != 1 || second[0] != 0x50 {
		t.Fatalf("second GENERATE AC P1 %X, want 50", second)
	}
	if v.Approved || v.IC.CID != "00" {
		t.Errorf("verdict approved=%v CID %s: a TC whose CDA failed must count as an AAC", v.Approved, v.IC.CID)
	}
	if v.IC.TVR[:2] != "04" {
		t.Errorf("TVR %s: want byte 1 04 (CDA failed)", v.IC.TVR)
	}
}

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}
