package emv_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/posagent/posagent/agent/card/emv"
	"github.com/posagent/posagent/agent/sim/cardsim"
	"github.com/posagent/posagent/drivers/cardreader"
	"github.com/posagent/posagent/drivers/cardreader/cardreadertest"
	"github.com/posagent/posagent/provisioning"
)

// The completion tests run the kernel against the in-process card
// simulator, whose issuer side (ARPC, script MACs) is written from EMV
// independently of the kernel, and check what the card saw with its trace.

const saleAmount = 12345

// slot is the card connection the Source gets: it counts Close calls and
// can pull the card out (every later command is ErrCardRemoved).
type slot struct {
	cardreader.Card
	mu     sync.Mutex
	closes int
	pulled bool
}

func (s *slot) Transmit(ctx context.Context, cmd []byte) ([]byte, error) {
	s.mu.Lock()
	pulled := s.pulled
	s.mu.Unlock()
	if pulled {
		return nil, fmt.Errorf("slot: %w", cardreader.ErrCardRemoved)
	}
	return s.Card.Transmit(ctx, cmd)
}

func (s *slot) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closes++
	return nil
}

func (s *slot) pull() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pulled = true
}

// fakePad is a PIN pad that hands out a fixed block.
type fakePad struct {
	mu    sync.Mutex
	asked []provisioning.PINRequest
	block provisioning.PINBlock
	err   error
}

func (f *fakePad) OnlinePIN(_ context.Context, r provisioning.PINRequest) (provisioning.PINBlock, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.asked = append(f.asked, r)
	return f.block, f.err
}

var testBlock = provisioning.PINBlock{0x04, 0x12, 0x34, 0xFF, 0xED, 0xCB, 0xA9, 0x87}

// sale is one Pay on a simulated card.
type sale struct {
	t    *testing.T
	sim  *cardsim.Card
	slot *slot
	p    *emv.Payment
	ic   map[emv.Tag][]byte // field 55 of the request
	atc  uint16
	arqc []byte
}

func pay(t *testing.T, profile string, pad provisioning.PINPad, edit func(*cardsim.Profile)) *sale {
	t.Helper()
	sim := loadCard(t, profile, edit)
	sl := &slot{Card: sim.AsCard("slot0")}
	r := cardreadertest.NewReader("slot0")
	r.Insert("slot0", sl)
	src := &emv.Source{Reader: r, Terminal: fixedTerminal(), PINPad: pad}
	p, err := src.Pay(context.Background(), provisioning.CardRequest{Purpose: "sale", Amount: saleAmount})
	if err != nil {
		t.Fatal(err)
	}
	s := &sale{t: t, sim: sim, slot: sl, p: p.(*emv.Payment)}
	t.Cleanup(func() { s.p.Close() })
	c := p.Card()
	s.ic = tlvMap(t, c.ICData)
	s.arqc = s.ic[0x9F26]
	s.atc = binary.BigEndian.Uint16(s.ic[0x9F36])
	return s
}

func tlvMap(t *testing.T, h string) map[emv.Tag][]byte {
	t.Helper()
	b, err := hex.DecodeString(h)
	if err != nil {
		t.Fatal(err)
	}
	objs, err := emv.DecodeTLV(b)
	if err != nil {
		t.Fatal(err)
	}
	m := map[emv.Tag][]byte{}
	for _, o := range objs {
		if _, dup := m[o.Tag]; dup {
			t.Fatalf("%v twice in %s", o.Tag, h)
		}
		m[o.Tag] = o.Value
	}
	return m
}

func tags(t *testing.T, h string) string {
	t.Helper()
	b, _ := hex.DecodeString(h)
	objs, err := emv.DecodeTLV(b)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, o := range objs {
		out = append(out, o.Tag.String())
	}
	return strings.Join(out, " ")
}

func (s *sale) key() []byte {
	k, _ := hex.DecodeString(s.sim.Profile().Key)
	return k
}

// auth is the host's 91 for arc.
func (s *sale) auth(arc string) []byte {
	d, err := cardsim.IssuerAuthData(s.key(), s.atc, s.arqc, []byte(arc))
	if err != nil {
		s.t.Fatal(err)
	}
	return d
}

// command is a script command with a valid MAC.
func (s *sale) command(header string, data []byte) []byte {
	h, _ := hex.DecodeString(header)
	mk, _ := hex.DecodeString(s.sim.Profile().MACKey)
	c, err := cardsim.ScriptCommand(mk, s.atc, s.arqc, h, data)
	if err != nil {
		s.t.Fatal(err)
	}
	return c
}

func answer(auth []byte, scripts ...cardsim.Script) []byte {
	var b []byte
	if auth != nil {
		b = emv.EncodeTLV(b, 0x91, auth)
	}
	for _, sc := range scripts {
		b = append(b, cardsim.EncodeScript(sc)...)
	}
	return b
}

// secondAC is the P1 of the second GENERATE AC the card received; the test
// fails unless there was exactly one, after exactly one first.
func (s *sale) secondAC() byte {
	s.t.Helper()
	if a, b := s.sim.Steps("generate_ac"), s.sim.Steps("generate_ac2"); a != 1 || b != 1 {
		s.t.Fatalf("%d first and %d second GENERATE AC, want one each", a, b)
	}
	for _, e := range s.sim.Trace() {
		if e.Step == "generate_ac2" {
			return e.Header[2]
		}
	}
	s.t.Fatal("no second GENERATE AC in the trace")
	return 0
}

// checkCryptogram recomputes the second AC over the CDOL2 data the card
// must have received (8A, [91,] TVR, UN, as the default CDOL2s list them),
// so a wrong 8A, 91 or TVR in the kernel's CDOL2 data fails it.
func (s *sale) checkCryptogram(ic *provisioning.ICData, arc string, auth []byte) {
	s.t.Helper()
	tvr, _ := hex.DecodeString(ic.TVR)
	tvr[4] &^= 0x10 // set by 72 scripts, after the card computed it
	data := []byte(arc)
	if s.sim.Profile().Applications[0].IssuerAuth == cardsim.IssuerAuthCDOL2 {
		if auth == nil {
			auth = make([]byte, 10)
		}
		data = append(data, auth...)
	}
	data = append(append(data, tvr...), s.ic[0x9F37]...)
	want, _ := cardsim.ARQC(s.key(), s.atc, data)
	if ic.Cryptogram != emv.Hex(want) {
		s.t.Errorf("second AC %s, want %X over %X", ic.Cryptogram, want, data)
	}
}

func TestReadDataSendsNoGenerateAC(t *testing.T) {
	sim := loadCard(t, "debit", nil)
	res, err := emv.ReadData(context.Background(), sim.AsCard("sim"), fixedTerminal(), emv.Transaction{Type: 0x31})
	if err != nil {
		t.Fatal(err)
	}
	if n := sim.Steps("generate_ac"); n != 0 || res.ICData != "" || res.PAN.Masked() != "622202*********0128" {
		t.Fatalf("%d GENERATE AC, ICData %q, PAN %v", n, res.ICData, res.PAN)
	}
	// Read, for its tools and tests, still asks for the ARQC.
	if _, err := emv.Read(context.Background(), sim.AsCard("sim"), fixedTerminal(), emv.Transaction{Type: 0x31}); err != nil || sim.Steps("generate_ac") != 1 {
		t.Fatalf("Read: %v, %d GENERATE AC", err, sim.Steps("generate_ac"))
	}
}

// TestPayCard: what Pay hands the flow for the online request.
func TestPayCard(t *testing.T) {
	s := pay(t, "debit", nil, nil)
	c := s.p.Card()
	if c.Entry != provisioning.EntryChip || c.PAN.Masked() != "622202*********0128" || c.Seq != "01" {
		t.Fatalf("%+v", c)
	}
	if tr := c.Track2.Reveal(); !strings.HasPrefix(tr, "6222021234567890128=3012220") || strings.ContainsAny(tr, "DF") {
		t.Errorf("track 2 for field 35: %d characters, wrong form", len(tr))
	}
	if got := tags(t, c.ICReversal); got != "95 9F1E 9F10 9F36" {
		t.Errorf("reversal objects %s", got)
	}
	// The debit card's list is online PIN, else signature, else no CVM:
	// without a PIN pad, the signature.
	if c.IC == nil || c.IC.ARQC != emv.Hex(s.arqc) || c.IC.CVM != "1E0300" || c.IC.TVR != "8000108000" ||
		c.IC.TSI != "6800" || c.IC.AIP != "1C00" || c.IC.CSN != "01" || c.IC.UN != "11223344" || c.IC.ATC != "0011" {
		t.Errorf("IC %+v", c.IC)
	}
	if emv.Hex(s.ic[0x9F34]) != c.IC.CVM || emv.Hex(s.ic[0x95]) != c.IC.TVR {
		t.Errorf("field 55 9F34 %X TVR %X, the record says %s %s", s.ic[0x9F34], s.ic[0x95], c.IC.CVM, c.IC.TVR)
	}
	// The TVR went into the ARQC: the host's check passes on field 55.
	if err := cardsim.VerifyField55(s.key(), "", c.ICData); err != nil {
		t.Error(err)
	}
	if s.p.PINBlock() != nil {
		t.Error("a PIN block without a PIN")
	}
	if strings.Contains(fmt.Sprintf("%v %+v", c, c), "6222021234567890128") {
		t.Error("full PAN printed")
	}
}

func TestCompleteApprovedTC(t *testing.T) {
	s := pay(t, "debit", nil, nil)
	auth := s.auth("00")
	v, err := s.p.Complete(context.Background(), provisioning.HostVerdict{Online: true, Approved: true, RC: "00", IssuerData: answer(auth)})
	if err != nil {
		t.Fatal(err)
	}
	if p1 := s.secondAC(); p1 != 0x40 || !v.Approved || v.IC.CID != provisioning.CIDTC || v.IC.IssuerAuth != "ok" {
		t.Fatalf("P1 %02X, %+v %+v", p1, v, v.IC)
	}
	if s.sim.Steps("external_authenticate") != 1 {
		t.Errorf("%d EXTERNAL AUTHENTICATE", s.sim.Steps("external_authenticate"))
	}
	var order []string
	for _, e := range s.sim.Trace() {
		if e.Step == "generate_ac" || e.Step == "external_authenticate" || e.Step == "generate_ac2" {
			order = append(order, e.Step)
		}
	}
	if strings.Join(order, " ") != "generate_ac external_authenticate generate_ac2" {
		t.Errorf("order %v", order)
	}
	if v.IC.TSI != "7800" || v.IC.TVR != "8000108000" || v.IC.ARQC != emv.Hex(s.arqc) || v.IC.ATC != "0011" ||
		v.IC.CVM != "1E0300" || v.IC.Scripts != "" || v.IC.Cryptogram == v.IC.ARQC {
		t.Errorf("IC %+v", v.IC)
	}
	s.checkCryptogram(v.IC, "00", nil)
	tc := tlvMap(t, v.IC.TC)
	if emv.Hex(tc[0x9F26]) != v.IC.Cryptogram || emv.Hex(tc[0x9F27]) != "40" || emv.Hex(tc[0x95]) != v.IC.TVR ||
		!bytes.Equal(tc[0x9F37], s.ic[0x9F37]) || len(tc) != len(s.ic) {
		t.Errorf("TC upload 55 %s", v.IC.TC)
	}
	if got := tags(t, v.IC.Reversal); got != "95 9F1E 9F10 9F36" {
		t.Errorf("reversal objects %s", got)
	}
	// The request's card stays as it was sent.
	if c := s.p.Card(); c.IC.Cryptogram != "" || c.IC.TSI != "6800" || c.ICData == v.IC.TC {
		t.Errorf("Card() changed after Complete: %+v", c.IC)
	}
}

func TestCompleteOutcomes(t *testing.T) {
	for _, tc := range []struct {
		name     string
		profile  string
		verdict  func(s *sale) provisioning.HostVerdict
		arc      string
		p1       byte
		approved bool
		tvr5     byte
		tsi      string
		auth     string
		extAuth  int
	}{
		{name: "card declines after approval", profile: "completion/decline-after-approval",
			verdict: func(s *sale) provisioning.HostVerdict {
				return provisioning.HostVerdict{Online: true, Approved: true, RC: "00", IssuerData: answer(s.auth("00"))}
			}, arc: "00", p1: 0x40, tsi: "7800", auth: "ok", extAuth: 1},
		{name: "corrupted ARPC", profile: "debit",
			verdict: func(s *sale) provisioning.HostVerdict {
				a := s.auth("00")
				a[0] ^= 0x01
				return provisioning.HostVerdict{Online: true, Approved: true, RC: "00", IssuerData: answer(a)}
			}, arc: "00", p1: 0x40, tvr5: 0x40, tsi: "7800", auth: "failed", extAuth: 1},
		{name: "91 in CDOL2", profile: "completion/issuer-auth-cdol2",
			verdict: func(s *sale) provisioning.HostVerdict {
				return provisioning.HostVerdict{Online: true, Approved: true, RC: "00", IssuerData: answer(s.auth("00"))}
			}, arc: "00", p1: 0x40, approved: true, tsi: "6800"},
		{name: "CDOL2 card without 91 declines", profile: "completion/issuer-auth-cdol2",
			verdict: func(*sale) provisioning.HostVerdict {
				return provisioning.HostVerdict{Online: true, Approved: true, RC: "00"}
			}, arc: "00", p1: 0x40, tsi: "6800"},
		{name: "host declined", profile: "debit",
			verdict: func(s *sale) provisioning.HostVerdict {
				return provisioning.HostVerdict{Online: true, RC: "05", IssuerData: answer(s.auth("05"))}
			}, arc: "05", p1: 0x00, tsi: "7800", auth: "ok", extAuth: 1},
		{name: "no answer", profile: "debit",
			verdict: func(s *sale) provisioning.HostVerdict {
				// Whatever came is not an answer that counts: no issuer
				// authentication, 8A Z3.
				return provisioning.HostVerdict{RC: "00", IssuerData: answer(s.auth("00"))}
			}, arc: "Z3", p1: 0x00, tsi: "6800"},
		{name: "no answer, CDOL2 card", profile: "completion/issuer-auth-cdol2",
			verdict: func(s *sale) provisioning.HostVerdict {
				return provisioning.HostVerdict{Approved: true, RC: "00", IssuerData: answer(s.auth("00"))}
			}, arc: "Z3", p1: 0x00, tsi: "6800"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := pay(t, tc.profile, nil, nil)
			v, err := s.p.Complete(context.Background(), tc.verdict(s))
			if err != nil {
				t.Fatal(err)
			}
			if p1 := s.secondAC(); p1 != tc.p1 {
				t.Errorf("second GENERATE AC P1 %02X, want %02X", p1, tc.p1)
			}
			wantCID := provisioning.CIDAAC
			if tc.approved {
				wantCID = provisioning.CIDTC
			}
			if v.Approved != tc.approved || v.IC.CID != wantCID {
				t.Errorf("approved %v CID %s, want %v", v.Approved, v.IC.CID, tc.approved)
			}
			tvr, _ := hex.DecodeString(v.IC.TVR)
			if tvr[4] != tc.tvr5 || v.IC.TSI != tc.tsi || v.IC.IssuerAuth != tc.auth {
				t.Errorf("TVR %s TSI %s issuer auth %q, want byte 5 %02X, %s, %q", v.IC.TVR, v.IC.TSI, v.IC.IssuerAuth, tc.tvr5, tc.tsi, tc.auth)
			}
			if n := s.sim.Steps("external_authenticate"); n != tc.extAuth {
				t.Errorf("%d EXTERNAL AUTHENTICATE, want %d", n, tc.extAuth)
			}
			var auth []byte
			if tc.arc != "Z3" && tc.extAuth == 0 {
				if a, ok := tlvMap(t, emv.Hex(tc.verdict(s).IssuerData))[0x91]; ok {
					auth = a
				}
			}
			s.checkCryptogram(v.IC, tc.arc, auth)
		})
	}
}

// TestCompleteScripts: 71 before and 72 after the second GENERATE AC, a
// refused command ending its script, DF31 as the card counted.
func TestCompleteScripts(t *testing.T) {
	s := pay(t, "debit", nil, nil)
	good71 := s.command("04DA9F4F", []byte{0x01, 0x02})
	bad := s.command("04DA9F50", []byte{0x03})
	bad[len(bad)-1] ^= 0xFF // a wrong MAC: the card refuses it (6988)
	skipped := s.command("04DA9F51", []byte{0x04})
	good72 := s.command("04DA9F52", []byte{0x05})
	v, err := s.p.Complete(context.Background(), provisioning.HostVerdict{Online: true, Approved: true, RC: "00",
		IssuerData: answer(s.auth("00"),
			cardsim.Script{Template: 0x71, ID: []byte{0xA1, 0xA2, 0xA3, 0xA4}, Commands: [][]byte{good71}},
			cardsim.Script{Template: 0x72, ID: []byte{0xB1, 0xB2, 0xB3, 0xB4}, Commands: [][]byte{good72, bad, skipped}},
			cardsim.Script{Template: 0x72, Commands: [][]byte{good72}},
		)})
	if err != nil {
		t.Fatal(err)
	}
	if s.secondAC() != 0x40 || !v.Approved {
		t.Fatalf("%+v", v.IC)
	}
	if want := "20A1A2A3A4" + "12B1B2B3B4" + "2000000000"; v.IC.Scripts != want {
		t.Errorf("DF31 %s, want %s", v.IC.Scripts, want)
	}
	// DF31 against the card's own count: every command reported sent
	// (successful scripts' commands and the failing one) reached the card.
	ok, refused := s.sim.ScriptResults()
	if ok != 3 || refused != 1 || s.sim.Steps("script") != 4 {
		t.Errorf("card executed %d, refused %d, saw %d script commands", ok, refused, s.sim.Steps("script"))
	}
	var after bool
	for _, e := range s.sim.Trace() {
		after = after || e.Step == "generate_ac2"
		if e.Step == "script" && e.Header[2] == 0x9F && e.Header[3] == 0x4F && after {
			t.Error("the 71 script ran after the second GENERATE AC")
		}
	}
	tvr, _ := hex.DecodeString(v.IC.TVR)
	if tvr[4] != 0x10 || v.IC.TSI != "7C00" {
		t.Errorf("TVR %s TSI %s: want script failed after final GENERATE AC and scripts performed", v.IC.TVR, v.IC.TSI)
	}
	rev := tlvMap(t, v.IC.Reversal)
	if got := tags(t, v.IC.Reversal); got != "95 9F1E 9F10 9F36 DF31" || emv.Hex(rev[0xDF31]) != v.IC.Scripts {
		t.Errorf("reversal %s", v.IC.Reversal)
	}
	s.checkCryptogram(v.IC, "00", nil)
}

func TestCompleteScriptFailsBeforeSecondAC(t *testing.T) {
	s := pay(t, "debit", nil, nil)
	bad := s.command("04DA9F4F", []byte{0x01})
	bad[5] ^= 0x01
	var cmds [][]byte
	for range 15 {
		cmds = append(cmds, s.command("04DA9F4F", []byte{0x01}))
	}
	v, err := s.p.Complete(context.Background(), provisioning.HostVerdict{Online: true, Approved: true, RC: "00",
		IssuerData: answer(s.auth("00"),
			cardsim.Script{Template: 0x71, Commands: [][]byte{bad, cmds[0]}},
			cardsim.Script{Template: 0x71, ID: []byte{1, 2, 3, 4}, Commands: append(cmds, bad)},
		)})
	if err != nil {
		t.Fatal(err)
	}
	s.secondAC()
	// The 16th command failing: sequence numbers stop at F (15 and above).
	if want := "1100000000" + "1F01020304"; v.IC.Scripts != want {
		t.Errorf("DF31 %s, want %s", v.IC.Scripts, want)
	}
	tvr, _ := hex.DecodeString(v.IC.TVR)
	if tvr[4] != 0x20 {
		t.Errorf("TVR %s: want script failed before final GENERATE AC", v.IC.TVR)
	}
	if ok, refused := s.sim.ScriptResults(); ok != 15 || refused != 2 {
		t.Errorf("card executed %d, refused %d", ok, refused)
	}
	s.checkCryptogram(v.IC, "00", nil)
}

// Issuer data that does not parse is no issuer data: no EXTERNAL
// AUTHENTICATE, no scripts, the card completes on 8A alone.
func TestCompleteMalformedIssuerData(t *testing.T) {
	s := pay(t, "debit", nil, nil)
	bad := append(answer(s.auth("00")), 0x72, 0x05, 0x86, 0x03, 0x84, 0x1E, 0x00) // a 3-byte command
	v, err := s.p.Complete(context.Background(), provisioning.HostVerdict{Online: true, Approved: true, RC: "00", IssuerData: bad})
	if err != nil {
		t.Fatal(err)
	}
	if !errors.Is(s.p.IssuerDataError(), emv.ErrIssuerData) || s.sim.Steps("external_authenticate") != 0 || s.sim.Steps("script") != 0 {
		t.Fatalf("issuer data error %v, %d EXTERNAL AUTHENTICATE", s.p.IssuerDataError(), s.sim.Steps("external_authenticate"))
	}
	if s.secondAC() != 0x40 || !v.Approved || v.IC.IssuerAuth != "" || v.IC.TSI != "6800" {
		t.Errorf("%+v %+v", v, v.IC)
	}
}

func TestPayOnlinePIN(t *testing.T) {
	pad := &fakePad{block: append(provisioning.PINBlock(nil), testBlock...)}
	s := pay(t, "completion/online-pin", pad, nil)
	c := s.p.Card()
	if len(pad.asked) != 1 || pad.asked[0].Amount != saleAmount || pad.asked[0].PAN.Reveal() != "6222021234567890128" {
		t.Fatalf("PIN pad asked %d times: %+v", len(pad.asked), pad.asked)
	}
	if !bytes.Equal(s.p.PINBlock(), testBlock) {
		t.Error("PIN block not handed over")
	}
	if c.IC.CVM != "020000" || c.IC.TVR != "8000048000" || c.IC.TSI != "6800" ||
		emv.Hex(s.ic[0x9F34]) != "020000" || emv.Hex(s.ic[0x95]) != "8000048000" {
		t.Errorf("IC %+v, field 55 9F34 %X 95 %X", c.IC, s.ic[0x9F34], s.ic[0x95])
	}
	if err := cardsim.VerifyField55(s.key(), "", c.ICData); err != nil {
		t.Error(err)
	}
	v, err := s.p.Complete(context.Background(), provisioning.HostVerdict{Online: true, Approved: true, RC: "00", IssuerData: answer(s.auth("00"))})
	if err != nil || !v.Approved || v.IC.CVM != "020000" || len(pad.asked) != 1 {
		t.Fatalf("%v %+v, PIN pad asked %d times", err, v.IC, len(pad.asked))
	}
	s.checkCryptogram(v.IC, "00", nil)
	// The block lives no longer than the card session.
	block := s.p.PINBlock()
	s.p.Close()
	if !bytes.Equal(block, make([]byte, len(block))) || s.p.PINBlock() != nil {
		t.Error("the PIN block outlives the payment's Close")
	}
}

func TestPayPINFailures(t *testing.T) {
	for _, tc := range []struct {
		name string
		pad  provisioning.PINPad
		tvr  string
	}{
		{"no PIN pad", nil, "8000908000"},
		{"PIN bypassed", &fakePad{err: provisioning.ErrPINBypassed}, "8000888000"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := pay(t, "completion/online-pin", tc.pad, nil)
			c := s.p.Card()
			// The only rule failed: cardholder verification failed, and the
			// terminal still goes online for the issuer to decide.
			if c.IC.CVM != "020001" || c.IC.TVR != tc.tvr || s.p.PINBlock() != nil || emv.Hex(s.ic[0x95]) != tc.tvr {
				t.Errorf("IC %+v", c.IC)
			}
			if err := cardsim.VerifyField55(s.key(), "", c.ICData); err != nil {
				t.Error(err)
			}
		})
	}
}

// A card pulled out between the first and the second GENERATE AC: the
// error names both the flow's sentinel and the transport's.
func TestCompleteCardRemoved(t *testing.T) {
	for _, profile := range []string{"debit", "completion/issuer-auth-cdol2"} {
		s := pay(t, profile, nil, nil)
		s.slot.pull()
		v, err := s.p.Complete(context.Background(), provisioning.HostVerdict{Online: true, Approved: true, RC: "00", IssuerData: answer(s.auth("00"))})
		if !errors.Is(err, provisioning.ErrCardRemoved) || !errors.Is(err, cardreader.ErrCardRemoved) || v.Approved {
			t.Fatalf("%s: %v %+v", profile, err, v)
		}
		if v.IC == nil || v.IC.ARQC != emv.Hex(s.arqc) || v.IC.Reversal == "" || s.sim.Steps("generate_ac2") != 0 {
			t.Errorf("%s: record %+v", profile, v.IC)
		}
	}
	// A card that refuses the second GENERATE AC did not finish either.
	s := pay(t, "debit", nil, func(p *cardsim.Profile) {
		p.Faults = []cardsim.Fault{{At: "generate_ac2", Kind: "status", SW: "6985"}}
	})
	if _, err := s.p.Complete(context.Background(), provisioning.HostVerdict{Online: true, Approved: true, RC: "00"}); !errors.Is(err, emv.ErrCardStatus) || errors.Is(err, provisioning.ErrCardRemoved) {
		t.Errorf("6985 to the second GENERATE AC: %v", err)
	}
}

func TestCompleteOnceCloseOnce(t *testing.T) {
	s := pay(t, "debit", nil, nil)
	if _, err := s.p.Complete(context.Background(), provisioning.HostVerdict{Online: true, Approved: true, RC: "00"}); err != nil {
		t.Fatal(err)
	}
	n := s.sim.Commands()
	if _, err := s.p.Complete(context.Background(), provisioning.HostVerdict{Online: true, Approved: true, RC: "00"}); !errors.Is(err, emv.ErrCompleted) {
		t.Errorf("second Complete: %v", err)
	}
	if s.sim.Commands() != n {
		t.Error("the second Complete sent a command")
	}
	if s.slot.closes != 0 {
		t.Error("Complete closed the card")
	}
	s.p.Close()
	s.p.Close()
	if s.slot.closes != 1 {
		t.Errorf("card closed %d times", s.slot.closes)
	}

	// Close without Complete: no second GENERATE AC; Complete after it
	// sends nothing.
	s = pay(t, "debit", nil, nil)
	n = s.sim.Commands()
	if err := s.p.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.p.Complete(context.Background(), provisioning.HostVerdict{Online: true, Approved: true, RC: "00"}); !errors.Is(err, emv.ErrCompleted) {
		t.Errorf("Complete after Close: %v", err)
	}
	if s.sim.Commands() != n || s.sim.Steps("generate_ac2") != 0 || s.slot.closes != 1 {
		t.Errorf("%d commands after Close, %d closes", s.sim.Commands()-n, s.slot.closes)
	}
}

// Pay on a card that declines offline (AAC to the first GENERATE AC) is
// ErrDeclined, and the Source closes the card it connected.
func TestPayDeclinedOffline(t *testing.T) {
	sim := loadCard(t, "debit", nil)
	sl := &slot{Card: &aacCard{Card: sim.AsCard("slot0")}}
	r := cardreadertest.NewReader("slot0")
	r.Insert("slot0", sl)
	src := &emv.Source{Reader: r, Terminal: fixedTerminal()}
	if _, err := src.Pay(context.Background(), provisioning.CardRequest{Purpose: "sale", Amount: 1}); !errors.Is(err, emv.ErrDeclined) {
		t.Fatalf("%v", err)
	}
	if sl.closes != 1 {
		t.Errorf("card closed %d times", sl.closes)
	}
}

// aacCard turns the first GENERATE AC into a request for an AAC, which the
// simulator then answers with one.
type aacCard struct{ cardreader.Card }

func (a *aacCard) Transmit(ctx context.Context, cmd []byte) ([]byte, error) {
	if len(cmd) > 2 && cmd[0] == 0x80 && cmd[1] == 0xAE {
		cmd = append([]byte(nil), cmd...)
		cmd[2] = 0x00
	}
	return a.Card.Transmit(ctx, cmd)
}
