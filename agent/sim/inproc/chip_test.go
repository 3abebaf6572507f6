package inproc

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/posagent/posagent/agent/card/emv"
	"github.com/posagent/posagent/agent/sim/ledger"
	"github.com/posagent/posagent/provisioning"
)

// field55 decodes a hex TLV set into tag -> value (hex) and the tags in
// order.
func field55(t *testing.T, s string) (map[emv.Tag]string, []emv.Tag) {
	t.Helper()
	objs, err := decodeHex(s)
	if err != nil {
		t.Fatalf("field 55 %q: %v", s, err)
	}
	m := map[emv.Tag]string{}
	var order []emv.Tag
	for _, o := range objs {
		m[o.Tag] = emv.Hex(o.Value)
		order = append(order, o.Tag)
	}
	return m, order
}

func pay(t *testing.T, c *Card, amount int64) provisioning.Payment {
	t.Helper()
	p, err := c.Pay(context.Background(), provisioning.CardRequest{Purpose: provisioning.PurposeTestSale, Amount: amount})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// Pay reads a chip: the online request's field 55 carries the ARQC and
// what it covers, the reversal's the four objects a reversal carries, and
// the IC record says the same; each Pay spends one ATC of that card, and a
// read without a cryptogram none.
func TestPayMakesAnARQC(t *testing.T) {
	c, err := NewCard("debit")
	if err != nil {
		t.Fatal(err)
	}
	c.Clock = clock{}
	if _, err := c.ReadCard(context.Background(), provisioning.CardRequest{Purpose: provisioning.PurposeBind}); err != nil {
		t.Fatal(err)
	}
	p := pay(t, c, 123)
	card := p.Card()
	if card.Entry != provisioning.EntryChip || card.PAN.Reveal() != DemoPAN || card.Seq != "01" || p.PINBlock() != nil {
		t.Errorf("card %+v entry %q, PIN block %v", card, card.Entry, p.PINBlock())
	}
	ic := card.IC
	if ic == nil {
		t.Fatal("no IC record")
	}
	objs, _ := field55(t, card.ICData)
	for tag, want := range map[emv.Tag]string{
		0x9F26: ic.ARQC, 0x9F27: provisioning.CIDARQC, 0x9F36: "0001", 0x9F02: "000000000123", 0x95: ic.TVR,
		0x9F37: ic.UN, 0x82: ic.AIP, 0x9F34: ic.CVM, 0x84: "A000000333010101", 0x9A: "261127", 0x5F2A: "0156",
		// The terminal's own 9F33 and 9F35, as its kernel derives them.
		0x9F33: emv.Hex(emv.Capabilities.TerminalCapabilities()), 0x9F35: emv.Hex([]byte{emv.Capabilities.TerminalType()}),
	} {
		if objs[tag] != want {
			t.Errorf("ICData %v = %q, want %q", tag, objs[tag], want)
		}
	}
	if _, ok := objs[0x8A]; ok {
		t.Error("the online request carries an ARC")
	}
	if len(ic.ARQC) != 16 || len(ic.UN) != 8 || ic.ATC != "0001" || ic.CSN != "01" || ic.TVR != "8000008000" || ic.TSI != "6800" ||
		ic.AIP != "1C00" || ic.Cryptogram != "" || ic.CID != "" || ic.TC != "" {
		t.Errorf("IC record after the first AC: %+v", ic)
	}
	rev, order := field55(t, card.ICReversal)
	if !slices.Equal(order, []emv.Tag{0x95, 0x9F1E, 0x9F10, 0x9F36}) || rev[0x9F36] != "0001" || rev[0x95] != ic.TVR {
		t.Errorf("reversal field 55 %s: tags %v", card.ICReversal, order)
	}
	if ic.Reversal != card.ICReversal {
		t.Errorf("IC record's reversal %q, card's %q", ic.Reversal, card.ICReversal)
	}
	if _, _, err := checkARQC(provisioning.SaleRequest{Amount: 123, Card: card}); err != nil {
		t.Errorf("the issuer's check of the ARQC: %v", err)
	}
	if _, _, err := checkARQC(provisioning.SaleRequest{Amount: 124, Card: card}); err == nil {
		t.Error("an ARQC of 1.23 passes for 1.24")
	}

	// Another sale on the same card: the next ATC, another ARQC.
	second := pay(t, c, 123).Card().IC
	if second.ATC != "0002" || second.ARQC == ic.ARQC || second.UN == ic.UN {
		t.Errorf("second sale's IC %+v after %+v", second, ic)
	}
	read, err := c.ReadCard(context.Background(), provisioning.CardRequest{Purpose: provisioning.PurposeVoid})
	if err != nil || read.ICData != "" || read.ICReversal != "" || read.IC != nil {
		t.Errorf("read without a cryptogram: %v, %+v", err, read)
	}
	if first, second := c.ACs(); first != 2 || second != 0 {
		t.Errorf("ACs = %d, %d after two Pays and two reads", first, second)
	}
	if c.ATC(DemoPAN) != 2 {
		t.Errorf("ATC = %d after two Pays", c.ATC(DemoPAN))
	}

	// The IC record is the caller's copy.
	p.Card().IC.ARQC = "00"
	if p.Card().IC.ARQC != ic.ARQC {
		t.Error("Card() shares its IC record with the caller")
	}
}

// The ATCs are per card: a sale on one card does not move another's.
func TestATCPerCard(t *testing.T) {
	c, err := NewCard("debit", "credit")
	if err != nil {
		t.Fatal(err)
	}
	bind := provisioning.CardRequest{Purpose: provisioning.PurposeBind}
	if _, err := c.ReadCard(context.Background(), bind); err != nil {
		t.Fatal(err)
	}
	pay(t, c, 1)
	if _, err := c.ReadCard(context.Background(), bind); err != nil { // the credit card now
		t.Fatal(err)
	}
	if atc := pay(t, c, 1).Card().IC.ATC; atc != "0001" {
		t.Errorf("credit card's first sale has ATC %s", atc)
	}
	if c.ATC(DemoPAN) != 1 || c.ATC(Profiles["credit"].PAN) != 1 {
		t.Errorf("ATCs %d and %d, want 1 and 1", c.ATC(DemoPAN), c.ATC(Profiles["credit"].PAN))
	}
}

// chipSale runs one sale of profile through the in-process host as the
// flow does: Pay, the host's answer, Complete.
type chipSale struct {
	card    *Card
	host    *Host
	payment provisioning.Payment
	resp    provisioning.HostResponse
	path    string
}

func newChipSale(t *testing.T, profile string, setup func(*Host)) *chipSale {
	t.Helper()
	c, err := NewCard(profile)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "ledger.jsonl")
	h, err := OpenHost(path, clock{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	if setup != nil {
		setup(h)
	}
	p := pay(t, c, 100)
	resp, err := h.Sale(context.Background(), provisioning.SaleRequest{Terminal: term, STAN: 7, Batch: "000001", Amount: 100, Card: p.Card()})
	if err != nil {
		t.Fatal(err)
	}
	return &chipSale{card: c, host: h, payment: p, resp: resp, path: path}
}

func (s *chipSale) verdict() provisioning.HostVerdict {
	return provisioning.HostVerdict{Online: true, Approved: s.resp.RC == "00", RC: s.resp.RC, IssuerData: s.resp.ICData}
}

// The second GENERATE AC answers what the host and the card decided
// together: a TC for an approval the card accepts, an AAC for anything
// else, each with the IC record the slip, the TC upload and a reversal
// need.
func TestCompleteVerdicts(t *testing.T) {
	for _, tc := range []struct {
		name       string
		profile    string
		setup      func(*Host)
		verdict    func(*chipSale) provisioning.HostVerdict
		approved   bool
		arc        string // 8A as the card saw it, hex
		issuerAuth string
		tvr, tsi   string
		scripts    string
	}{
		{name: "approved", profile: "debit", approved: true, arc: "3030", issuerAuth: "ok", tvr: "8000008000", tsi: "7800"},
		{name: "declined by the issuer", profile: "debit",
			verdict: func(s *chipSale) provisioning.HostVerdict {
				return provisioning.HostVerdict{Online: true, RC: "51"}
			}, arc: "3531", tvr: "8000008000", tsi: "6800"},
		{name: "no answer", profile: "debit",
			verdict: func(s *chipSale) provisioning.HostVerdict { return provisioning.HostVerdict{} },
			arc:     "5A33", tvr: "8000008000", tsi: "6800"},
		{name: "declined by the card after approval", profile: "decline-after-approval", arc: "3030", issuerAuth: "ok",
			tvr: "8000008000", tsi: "7800"},
		{name: "bad ARPC", profile: "debit", setup: func(h *Host) { h.BadARPC = true }, arc: "3030", issuerAuth: "failed",
			tvr: "8000008040", tsi: "7800"},
		{name: "issuer script", profile: "debit", setup: func(h *Host) { h.IssuerScript = true }, approved: true, arc: "3030",
			issuerAuth: "ok", tvr: "8000008000", tsi: "7C00", scripts: "2000000001"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newChipSale(t, tc.profile, tc.setup)
			if s.resp.RC != "00" || len(s.resp.ICData) == 0 {
				t.Fatalf("host answered %s with %x", s.resp.RC, s.resp.ICData)
			}
			v := s.verdict()
			if tc.verdict != nil {
				v = tc.verdict(s)
			}
			first := *s.payment.Card().IC
			got, err := s.payment.Complete(context.Background(), v)
			if err != nil {
				t.Fatal(err)
			}
			if got.Approved != tc.approved || got.IC == nil {
				t.Fatalf("card verdict approved=%v IC %+v, want approved=%v", got.Approved, got.IC, tc.approved)
			}
			ic := got.IC
			wantCID := provisioning.CIDAAC
			if tc.approved {
				wantCID = provisioning.CIDTC
			}
			if ic.CID != wantCID || len(ic.Cryptogram) != 16 || ic.Cryptogram == ic.ARQC || ic.ARQC != first.ARQC || ic.ATC != first.ATC {
				t.Errorf("IC after the second AC: %+v (first %+v)", ic, first)
			}
			if ic.IssuerAuth != tc.issuerAuth || ic.TVR != tc.tvr || ic.TSI != tc.tsi || ic.Scripts != tc.scripts {
				t.Errorf("issuer auth %q TVR %s TSI %s scripts %q, want %q %s %s %q", ic.IssuerAuth, ic.TVR, ic.TSI, ic.Scripts,
					tc.issuerAuth, tc.tvr, tc.tsi, tc.scripts)
			}
			objs, _ := field55(t, ic.TC)
			if objs[0x9F26] != ic.Cryptogram || objs[0x9F27] != ic.CID || objs[0x8A] != tc.arc || objs[0x9F02] != "000000000100" ||
				objs[0x95] != ic.TVR || objs[0x9F36] != ic.ATC {
				t.Errorf("second AC's field 55 %v", objs)
			}
			rev, order := field55(t, ic.Reversal)
			want := []emv.Tag{0x95, 0x9F1E, 0x9F10, 0x9F36}
			if tc.scripts != "" {
				want = append(want, 0xDF31)
			}
			if !slices.Equal(order, want) || rev[0x95] != ic.TVR || rev[0xDF31] != tc.scripts {
				t.Errorf("reversal field 55 tags %v (%s)", order, ic.Reversal)
			}
			// The IAD's card verification results say which cryptogram the
			// second GENERATE AC returned: 60 first ARQC then TC, 20 then AAC.
			wantCVR := "20"
			if tc.approved {
				wantCVR = "60"
			}
			if cvr := rev[0x9F10]; len(cvr) < 10 || cvr[8:10] != wantCVR || objs[0x9F10] != cvr {
				t.Errorf("IAD %s (TC set's %s), want CVR byte 2 %s", cvr, objs[0x9F10], wantCVR)
			}
			// The card's cryptogram is its own: the issuer verifies it.
			c, err := parseChip(ic.TC)
			if err != nil || c.verify(s.payment.Card().PAN) != nil {
				t.Errorf("second cryptogram does not verify: %v", err)
			}
			if first, second := s.card.ACs(); first != 1 || second != 1 {
				t.Errorf("ACs = %d, %d for one sale", first, second)
			}
			if _, err := s.payment.Complete(context.Background(), v); err == nil {
				t.Error("a second Complete succeeded")
			}
			if _, second := s.card.ACs(); second != 1 {
				t.Errorf("a second Complete made a second AC")
			}
			if err := s.payment.Close(); err != nil {
				t.Error(err)
			}
		})
	}
}

// A card pulled out before the second GENERATE AC gives no verdict: the
// flow learns it by ErrCardRemoved, whatever the host said.
func TestCardRemovedMidSale(t *testing.T) {
	s := newChipSale(t, "removed-mid-sale", nil)
	v, err := s.payment.Complete(context.Background(), s.verdict())
	if !errors.Is(err, provisioning.ErrCardRemoved) || v.Approved || v.IC != nil {
		t.Fatalf("Complete = %+v, %v; want ErrCardRemoved", v, err)
	}
	if first, second := s.card.ACs(); first != 1 || second != 0 {
		t.Errorf("ACs = %d, %d", first, second)
	}
	// The debit card with the same number finishes the same sale.
	s = newChipSale(t, "debit", nil)
	if v, err := s.payment.Complete(context.Background(), s.verdict()); err != nil || !v.Approved {
		t.Errorf("debit card: %+v, %v", v, err)
	}
}

// After Close the session is gone: no second GENERATE AC.
func TestCompleteAfterClose(t *testing.T) {
	s := newChipSale(t, "debit", nil)
	if err := s.payment.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.payment.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := s.payment.Complete(context.Background(), s.verdict()); err == nil {
		t.Error("Complete after Close succeeded")
	}
	if _, second := s.card.ACs(); second != 0 {
		t.Error("Complete after Close reached the card")
	}
}

// The chip's two pause points: after the first cryptogram exists (its ATC
// is spent) and inside Complete before the card's verdict.
func TestChipPausePoints(t *testing.T) {
	const wait = 10 * time.Second // only ever the failing branch
	for _, point := range []string{"card.first-ac", "card.second-ac"} {
		t.Run(point, func(t *testing.T) {
			out := &signalWriter{wrote: make(chan struct{})}
			c, err := NewCard("debit")
			if err != nil {
				t.Fatal(err)
			}
			c.Pauses = &Pauses{At: point, Out: out}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			errc := make(chan error, 1)
			go func() {
				p, err := c.Pay(ctx, provisioning.CardRequest{Purpose: provisioning.PurposeTestSale, Amount: 1})
				if err == nil {
					_, err = p.Complete(ctx, provisioning.HostVerdict{Online: true, Approved: true, RC: "00"})
				}
				errc <- err
			}()
			select {
			case <-out.wrote:
			case err := <-errc:
				t.Fatalf("the sale ended (%v) without pausing", err)
			case <-time.After(wait):
				t.Fatal("never paused")
			}
			if out.String() != "PAUSED at "+point+"\n" {
				t.Errorf("out = %q", out.String())
			}
			if c.ATC(DemoPAN) != 1 {
				t.Errorf("paused with ATC %d, want the first spent", c.ATC(DemoPAN))
			}
			cancel()
			select {
			case err := <-errc:
				if !errors.Is(err, context.Canceled) {
					t.Errorf("sale stopped with %v", err)
				}
			case <-time.After(wait):
				t.Fatal("did not return when ctx ended")
			}
			if _, second := c.ACs(); second != 0 {
				t.Errorf("a sale stopped at %s made a second AC", point)
			}
		})
	}
}

// The host declines a chip sale whose ARQC is not the card's for that
// amount, and approves with an ARPC the card accepts.
func TestHostChecksTheARQC(t *testing.T) {
	s := newChipSale(t, "debit", nil)
	objs, err := decodeHex(emv.Hex(s.resp.ICData))
	if err != nil {
		t.Fatal(err)
	}
	if d91, ok := emv.Find(objs, 0x91); !ok || len(d91.Value) != 10 || string(d91.Value[8:]) != "00" {
		t.Errorf("approval's 91 = %x", d91.Value)
	}
	card := s.payment.Card()
	for name, req := range map[string]provisioning.SaleRequest{
		"another amount": {Amount: 200, Card: card},
		"tampered ARQC":  {Amount: 100, Card: tamper(t, card, 0x9F26)},
		"tampered UN":    {Amount: 100, Card: tamper(t, card, 0x9F37)},
	} {
		req.Terminal, req.STAN, req.Batch = term, 8, "000001"
		resp, err := s.host.Sale(context.Background(), req)
		if err != nil || resp.RC != "05" || resp.ICData != nil || resp.AuthCode != "" {
			t.Errorf("%s: %+v, %v; want 05 without issuer data", name, resp, err)
		}
	}
	led, err := ledger.Read(s.path)
	if err != nil {
		t.Fatal(err)
	}
	if len(led) != 4 || led[0].Event != ledger.EventApproved || led[0].ATC != "0001" || led[0].Entry != "chip" ||
		led[1].Event != ledger.EventDeclined || led[1].RC != "05" {
		t.Errorf("ledger %+v", led)
	}
	// A card read without a cryptogram is a sale as before: no IC checks.
	resp, err := s.host.Sale(context.Background(), provisioning.SaleRequest{Terminal: term, STAN: 9, Batch: "000001", Amount: 1, Card: debitCard(t)})
	if err != nil || resp.RC != "00" || resp.ICData != nil {
		t.Errorf("sale without IC data: %+v, %v", resp, err)
	}
}

// tamper flips the first byte of tag's value in the card's field 55.
func tamper(t *testing.T, c provisioning.Card, tag emv.Tag) provisioning.Card {
	t.Helper()
	b, err := hex.DecodeString(c.ICData)
	if err != nil {
		t.Fatal(err)
	}
	objs, err := emv.DecodeTLV(b)
	if err != nil {
		t.Fatal(err)
	}
	var out []byte
	for _, o := range objs {
		v := append([]byte(nil), o.Value...)
		if o.Tag == tag {
			v[0] ^= 0x01
		}
		out = emv.EncodeTLV(out, o.Tag, v)
	}
	c.ICData = emv.Hex(out)
	return c
}

// The host books a TC upload as the sale's only when it is: the TC of
// the approved sale it names, of that sale's amount and ATC. Summarize
// then says which TC each sale's upload carried.
func TestTCUploadIsTheSales(t *testing.T) {
	ctx := context.Background()
	s := newChipSale(t, "debit", nil)
	v, err := s.payment.Complete(ctx, s.verdict())
	if err != nil || !v.Approved {
		t.Fatalf("Complete = %+v, %v", v, err)
	}
	card := s.payment.Card()
	rec := provisioning.TxnRecord{STAN: 7, Batch: "000001", Amount: 100, RC: "00", Masked: card.PAN.Masked(), IC: v.IC}
	upload := func(stan int, txn provisioning.TxnRecord) string {
		t.Helper()
		ack, err := s.host.UploadTC(ctx, provisioning.TCUpload{AdminRequest: provisioning.AdminRequest{Terminal: term, STAN: stan, Batch: "000001"},
			Txn: txn, Card: card.PAN})
		if err != nil {
			t.Fatal(err)
		}
		return ack.RC
	}
	if rc := upload(20, rec); rc != "00" {
		t.Fatalf("the sale's TC answered %s", rc)
	}

	// A second sale on the card: its TC is not the first sale's.
	p2 := pay(t, s.card, 100)
	resp, err := s.host.Sale(ctx, provisioning.SaleRequest{Terminal: term, STAN: 8, Batch: "000001", Amount: 100, Card: p2.Card()})
	if err != nil || resp.RC != "00" {
		t.Fatalf("second sale: %+v, %v", resp, err)
	}
	v2, err := p2.Complete(ctx, provisioning.HostVerdict{Online: true, Approved: true, RC: resp.RC, IssuerData: resp.ICData})
	if err != nil || !v2.Approved {
		t.Fatal(err)
	}
	wrongSale := rec
	wrongSale.IC = v2.IC // sale 8's TC sent for sale 7
	noSale := rec
	noSale.STAN = 99
	otherAmount := rec
	otherAmount.Amount = 101
	aac := rec
	aac.IC = &provisioning.ICData{TC: strings.Replace(v.IC.TC, "9F270140", "9F270100", 1)}
	for name, tc := range map[string]struct {
		txn provisioning.TxnRecord
		rc  string
	}{
		"another sale's TC": {wrongSale, "05"}, "no such sale": {noSale, "25"}, "another amount": {otherAmount, "05"},
		"an AAC": {aac, "30"},
	} {
		if rc := upload(21, tc.txn); rc != tc.rc {
			t.Errorf("%s: answered %s, want %s", name, rc, tc.rc)
		}
	}
	led, err := ledger.Read(s.path)
	if err != nil {
		t.Fatal(err)
	}
	sum := Summarize(led)
	if len(sum.TCs) != 1 || sum.TCs[7] != v.IC.Cryptogram {
		t.Errorf("TCs booked %v, want sale 7's %s", sum.TCs, v.IC.Cryptogram)
	}
	if sum.Messages[ledger.KindTCUpload] != 5 {
		t.Errorf("%d TC uploads booked, want 5", sum.Messages[ledger.KindTCUpload])
	}
	if rc := upload(22, provisioning.TxnRecord{STAN: 7}); rc != "30" {
		t.Errorf("an upload without a TC answered %s", rc)
	}

	// The slip of the sale prints the TC the host took as the sale's.
	dir := t.TempDir()
	prn := &Printer{Out: io.Discard, Dir: dir, Width: 32}
	rec.AID, rec.Label = card.AID, card.Label
	if err := prn.PrintReceipt(ctx, provisioning.Receipt{Terminal: term, Txn: rec, Kind: "sale"}); err != nil {
		t.Fatal(err)
	}
	slip, err := os.ReadFile(filepath.Join(dir, "sale-000007-merchant.txt"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"TC: " + sum.TCs[7], "ATC: 0001", "UNPR NUM: " + v.IC.UN, "CSN: 01", "TSI: 7800"} {
		if !strings.Contains(string(slip), "\n"+want+"\n") {
			t.Errorf("slip lacks %q:\n%s", want, slip)
		}
	}
}

// A reversal undoes a chip sale whatever its reason, and the ledger keeps
// the reason the terminal gave.
func TestReversalReasons(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "ledger.jsonl")
	h, err := OpenHost(path, clock{})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	c, err := NewCard("decline-after-approval")
	if err != nil {
		t.Fatal(err)
	}
	reasons := []string{"98", "96", "06", "A0"}
	for i, reason := range reasons {
		stan := 10 + i
		p := pay(t, c, 1)
		card := p.Card()
		resp, err := h.Sale(ctx, provisioning.SaleRequest{Terminal: term, STAN: stan, Batch: "000001", Amount: 1, Card: card})
		if err != nil || resp.RC != "00" {
			t.Fatalf("sale %d: %+v, %v", stan, resp, err)
		}
		orig := provisioning.InFlight{Kind: "sale", STAN: stan, Batch: "000001", Amount: 1, Reason: reason, Expiry: card.Expiry,
			Seq: card.Seq, AuthCode: resp.AuthCode, IC: card.ICReversal, Entry: card.Entry}
		req := provisioning.ReversalRequest{Terminal: term, Orig: orig, Reason: reason, PAN: card.PAN}
		if i == 1 {
			req.Reason = "" // the original's reason stands
		}
		if resp, err := h.Reverse(ctx, req); err != nil || resp.RC != "00" {
			t.Errorf("reversal %s: %+v, %v", reason, resp, err)
		}
	}
	led, err := ledger.Read(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := Summarize(led)
	for i, reason := range reasons {
		if st := sum.Sales[10+i]; st != "reversed" {
			t.Errorf("sale reversed with %s is %s", reason, st)
		}
	}
	var got []string
	for _, e := range led {
		if e.Event == ledger.EventReversed {
			got = append(got, e.Reason)
			if want := fmt.Sprintf("%04X", e.STAN-9); e.ATC != want {
				t.Errorf("reversal of sale %d booked ATC %q, want its sale's %s", e.STAN, e.ATC, want)
			}
		}
	}
	if !slices.Equal(got, reasons) {
		t.Errorf("reasons booked %v, want %v", got, reasons)
	}
}

// A host that sends no issuer data still gets the card's TC for its
// approval: no issuer authentication, nothing failed.
func TestApprovalWithoutIssuerData(t *testing.T) {
	c, err := NewCard("debit")
	if err != nil {
		t.Fatal(err)
	}
	v, err := pay(t, c, 1).Complete(context.Background(), provisioning.HostVerdict{Online: true, Approved: true, RC: "00"})
	if err != nil || !v.Approved || v.IC.CID != provisioning.CIDTC || v.IC.IssuerAuth != "" || v.IC.TSI != "6800" || v.IC.TVR != "8000008000" {
		t.Errorf("Complete = %+v (IC %+v), %v", v, v.IC, err)
	}
}
