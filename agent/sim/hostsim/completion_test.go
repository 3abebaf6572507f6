package hostsim_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/posagent/posagent/agent/acquirer"
	"github.com/posagent/posagent/agent/card/emv"
	"github.com/posagent/posagent/agent/sim/cardsim"
	"github.com/posagent/posagent/agent/sim/hostsim"
	"github.com/posagent/posagent/provisioning"
)

// chipCard is a cardsim card read up to its ARQC, as the terminal leaves it
// while the sale is online.
type chipCard struct {
	t   *testing.T
	sim *cardsim.Card
	ic  []byte // field 55 of the request
	// gac2 is the card's answer to the second GENERATE AC (format 1,
	// status word cut), once complete ran.
	gac2 []byte
}

func readChip(t *testing.T, path string, amount int64) *chipCard {
	t.Helper()
	sim, err := cardsim.Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := emv.Read(context.Background(), sim.AsCard("slot0"), emv.DefaultTerminal(), emv.Transaction{Amount: amount})
	if err != nil {
		t.Fatal(err)
	}
	ic, _ := hex.DecodeString(res.ICData)
	return &chipCard{t: t, sim: sim, ic: ic}
}

func (c *chipCard) send(cmd []byte) uint16 {
	r, _ := c.sim.Process(cmd)
	if len(r) < 2 {
		c.t.Fatalf("no answer to % X", cmd[:4])
	}
	return uint16(r[len(r)-2])<<8 | uint16(r[len(r)-1])
}

// complete plays the terminal's completion with the host's field 55: 71
// scripts, EXTERNAL AUTHENTICATE (or 91 in the CDOL2 data), the second
// GENERATE AC asking for a TC when rc approves, 72 scripts. It returns the
// CID and the status words of EXTERNAL AUTHENTICATE and of the scripts.
func (c *chipCard) complete(f55 []byte, rc string) (cid byte, ea uint16, scripts []uint16) {
	c.t.Helper()
	objs, err := emv.DecodeTLV(f55)
	if err != nil {
		c.t.Fatal(err)
	}
	d91, ok := emv.Find(objs, 0x91)
	if !ok {
		c.t.Fatal("no 91 in the answer")
	}
	ss, err := cardsim.ParseIssuerScripts(f55)
	if err != nil {
		c.t.Fatal(err)
	}
	run := func(tmpl byte) {
		for _, s := range ss {
			if s.Template == tmpl {
				for _, cmd := range s.Commands {
					scripts = append(scripts, c.send(cmd))
				}
			}
		}
	}
	run(0x71)
	data := []byte(rc)
	if c.sim.Profile().Applications[0].IssuerAuth == cardsim.IssuerAuthCDOL2 {
		data = append(data, d91.Value...)
	} else {
		ea = c.send(append([]byte{0x00, 0x82, 0x00, 0x00, byte(len(d91.Value))}, d91.Value...))
	}
	data = append(data, make([]byte, 9)...) // 95, 9F37
	p1 := byte(0x00)
	if rc == "00" {
		p1 = 0x40
	}
	r, _ := c.sim.Process(append([]byte{0x80, 0xAE, p1, 0x00, byte(len(data))}, data...))
	if len(r) < 5 || r[len(r)-2] != 0x90 {
		c.t.Fatalf("second GENERATE AC: % X", r)
	}
	c.gac2 = r[:len(r)-2]
	run(0x72)
	return r[2], ea, scripts
}

func (e *env) chipSale(c *chipCard, amount string) *hostsimAnswer {
	e.t.Helper()
	m := e.rawSale(e.nextSTAN(), profilePAN)
	e.set(m, 4, amount)
	e.set(m, 22, "051")
	e.setBytes(m, 55, c.ic)
	resp := e.raw(m)
	return &hostsimAnswer{rc: acquirer.Get(resp, 39), f55: acquirer.GetBytes(resp, 55)}
}

type hostsimAnswer struct {
	rc  string
	f55 []byte
}

func cardsDir() string { return filepath.Join("..", "..", "..", "testdata", "cards") }

// TestChipAnswerCompletes: the host's 91 verifies on the card that made the
// ARQC (EXTERNAL AUTHENTICATE, and 91 in the CDOL2 data), approvals end in
// a TC and declines in an AAC; a corrupted ARPC fails on the card.
func TestChipAnswerCompletes(t *testing.T) {
	cards, err := hostsim.LoadCards(cardsDir())
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, func(c *hostsim.Config) { c.Cards = cards }, nil)
	e.signOn()
	debit := filepath.Join(cardsDir(), "debit.yaml")
	inCDOL2 := filepath.Join(cardsDir(), "completion", "issuer-auth-cdol2.yaml")
	for _, tt := range []struct {
		name, card, amount string
		fault              hostsim.Action
		rc                 string
		ea                 uint16
		cid                byte
	}{
		{"approved", debit, "000000000100", "", "00", 0x9000, 0x40},
		{"declined, ARQC good", debit, "000000000151", "", "51", 0x9000, 0x00},
		{"bad ARPC", debit, "000000000100", hostsim.BadARPC, "00", 0x6300, 0x00},
		{"approved, 91 in CDOL2", inCDOL2, "000000000100", "", "00", 0, 0x40},
		{"bad ARPC, 91 in CDOL2", inCDOL2, "000000000100", hostsim.BadARPC, "00", 0, 0x00},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e.t = t
			amount, _ := strconv.ParseInt(tt.amount, 10, 64)
			c := readChip(t, tt.card, amount)
			if tt.fault != "" {
				e.srv.Inject(hostsim.KindSale, hostsim.Fault{Action: tt.fault})
			}
			if tt.card == inCDOL2 {
				// The credit account: field 2 of the raw sale is the debit PAN.
				m := e.rawSale(e.nextSTAN(), c.sim.Profile().PAN)
				e.set(m, 4, tt.amount)
				e.set(m, 22, "051")
				e.setBytes(m, 55, c.ic)
				resp := e.raw(m)
				checkCompletion(t, c, &hostsimAnswer{acquirer.Get(resp, 39), acquirer.GetBytes(resp, 55)}, tt.rc, tt.ea, tt.cid)
				return
			}
			checkCompletion(t, c, e.chipSale(c, tt.amount), tt.rc, tt.ea, tt.cid)
		})
	}
	e.t = t
	// A cryptogram that does not verify gets no ARPC: there is nothing to
	// answer it with.
	c := readChip(t, debit, 100)
	c.ic[bytes.Index(c.ic, []byte{0x9F, 0x26, 0x08})+3] ^= 1
	if a := e.chipSale(c, "000000000100"); a.rc != "05" || a.f55 != nil {
		t.Errorf("bad ARQC: rc %s, 55 % X", a.rc, a.f55)
	}
}

func checkCompletion(t *testing.T, c *chipCard, a *hostsimAnswer, rc string, ea uint16, cid byte) {
	t.Helper()
	if a.rc != rc || a.f55 == nil || a.f55[0] != 0x91 || a.f55[1] != 10 {
		t.Fatalf("answer rc %s, 55 % X", a.rc, a.f55)
	}
	if !bytes.Equal(a.f55[10:12], []byte(rc)) {
		t.Errorf("ARC in 91 % X, want %s", a.f55[10:12], rc)
	}
	gotCID, gotEA, _ := c.complete(a.f55, rc)
	if gotCID != cid || gotEA != ea {
		t.Errorf("CID %02X EXTERNAL AUTHENTICATE %04X, want %02X %04X", gotCID, gotEA, cid, ea)
	}
	if c.sim.Steps("generate_ac") != 1 || c.sim.Steps("generate_ac2") != 1 {
		t.Errorf("GENERATE ACs %d + %d", c.sim.Steps("generate_ac"), c.sim.Steps("generate_ac2"))
	}
}

// TestChipAnswerScripts: scripts from the configuration (71 before, 72
// after the second GENERATE AC) are MACed for the card, and the
// bad-script-mac fault's are refused by it.
func TestChipAnswerScripts(t *testing.T) {
	cards, err := hostsim.LoadCards(cardsDir())
	if err != nil {
		t.Fatal(err)
	}
	debit := filepath.Join(cardsDir(), "debit.yaml")
	t.Run("configured", func(t *testing.T) {
		e := newEnv(t, func(c *hostsim.Config) {
			c.Cards = cards
			c.Scripts = []hostsim.ScriptCommand{
				{Template: 0x71, Header: [4]byte{0x84, 0x1E, 0, 0}}, // APPLICATION BLOCK
				{Template: 0x72, Header: [4]byte{0x04, 0xDA, 0x9F, 0x79}, Data: []byte{0, 0, 0, 0, 0x10, 0}},
			}
		}, nil)
		e.signOn()
		c := readChip(t, debit, 100)
		a := e.chipSale(c, "000000000100")
		ss, err := cardsim.ParseIssuerScripts(a.f55)
		if err != nil || len(ss) != 2 || ss[0].Template != 0x71 || ss[1].Template != 0x72 {
			t.Fatalf("scripts %+v %v", ss, err)
		}
		cid, ea, sws := c.complete(a.f55, a.rc)
		if cid != 0x00 || ea != 0x9000 || fmt.Sprint(sws) != "[36864 36864]" {
			t.Errorf("CID %02X EA %04X scripts %04X: a blocked card approves nothing", cid, ea, sws)
		}
		if !c.sim.Blocked(c.sim.Profile().Applications[0].AID) {
			t.Error("APPLICATION BLOCK did not block")
		}
	})
	for _, tt := range []struct {
		act hostsim.Action
		sw  uint16
	}{{hostsim.SendScripts, 0x9000}, {hostsim.BadScriptMAC, 0x6988}} {
		t.Run(string(tt.act), func(t *testing.T) {
			e := newEnv(t, func(c *hostsim.Config) { c.Cards = cards }, nil)
			e.signOn()
			c := readChip(t, debit, 100)
			e.srv.Inject(hostsim.KindSale, hostsim.Fault{Action: tt.act})
			a := e.chipSale(c, "000000000100")
			cid, _, sws := c.complete(a.f55, a.rc)
			if cid != 0x40 || len(sws) != 1 || sws[0] != tt.sw {
				t.Errorf("CID %02X scripts %04X", cid, sws)
			}
			// The fault was for one answer: the next has 91 alone.
			c = readChip(t, debit, 100)
			if a := e.chipSale(c, "000000000100"); len(a.f55) != 12 {
				t.Errorf("next answer's 55 % X", a.f55)
			}
		})
	}
}

// TestClientTakesField55: the terminal's client accepts an approved chip
// sale whose answer now carries field 55 (it ignores it today).
func TestClientTakesField55(t *testing.T) {
	cards, err := hostsim.LoadCards(cardsDir())
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, func(c *hostsim.Config) {
		c.Cards = cards
		c.Scripts = hostsim.DefaultScripts
	}, nil)
	e.signOn()
	sim, _ := cardsim.Open(filepath.Join(cardsDir(), "debit.yaml"), nil)
	res, err := emv.Read(context.Background(), sim.AsCard("slot0"), emv.DefaultTerminal(), emv.Transaction{Amount: 100})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := e.c.Sale(context.Background(), provisioning.SaleRequest{Terminal: terminal, STAN: e.nextSTAN(), Batch: e.batch, Amount: 100, Card: res.Card()})
	if err != nil || resp.RC != "00" {
		t.Fatalf("%+v %v", resp, err)
	}
}
