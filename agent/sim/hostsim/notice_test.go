package hostsim_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moov-io/iso8583"

	"github.com/posagent/posagent/agent/acquirer"
	"github.com/posagent/posagent/agent/card/emv"
	"github.com/posagent/posagent/agent/sim/cardsim"
	"github.com/posagent/posagent/agent/sim/hostsim"
	"github.com/posagent/posagent/agent/sim/ledger"
	"github.com/posagent/posagent/provisioning"
	"github.com/posagent/posagent/provisioning/pan"
)

// paid is a chip sale the host approved and the card completed: the card,
// the sale as the flow records it, and its TC set.
type paid struct {
	card  *chipCard
	card0 provisioning.Card
	rec   provisioning.TxnRecord
	resp  provisioning.HostResponse
	tc    []byte
}

// trackChars is the track-2 equivalent (57) as track characters: digits,
// '=' for the separator, the F pad dropped.
func trackChars(b []byte) string {
	return strings.TrimRight(strings.ReplaceAll(strings.ToUpper(hex.EncodeToString(b)), "D", "="), "F")
}

// chipPay reads the debit profile card to its ARQC, sends the sale through
// the terminal's client (field 35 the card's track-2 equivalent) and
// completes the card with the answer's field 55: approved, the card's TC.
func (e *env) chipPay(amount int64) *paid {
	e.t.Helper()
	sim, err := cardsim.Open(filepath.Join(cardsDir(), "debit.yaml"), nil)
	if err != nil {
		e.t.Fatal(err)
	}
	res, err := emv.Read(context.Background(), sim.AsCard("slot0"), emv.DefaultTerminal(), emv.Transaction{Amount: amount})
	if err != nil {
		e.t.Fatal(err)
	}
	card := res.Card()
	card.Track2 = pan.NewTrack(trackChars(res.Track2.Reveal()))
	ic, _ := hex.DecodeString(res.ICData)
	c := &chipCard{t: e.t, sim: sim, ic: ic}
	stan := e.nextSTAN()
	resp, err := e.c.Sale(context.Background(), provisioning.SaleRequest{Terminal: terminal, STAN: stan, Batch: e.batch, Amount: amount, Card: card})
	if err != nil || resp.RC != "00" {
		e.t.Fatalf("chip sale: %+v %v", resp, err)
	}
	if len(resp.ICData) == 0 || resp.ICData[0] != 0x91 {
		e.t.Fatalf("the answer's field 55 did not reach the terminal: % X", resp.ICData)
	}
	if cid, _, _ := c.complete(resp.ICData, resp.RC); cid != 0x40 {
		e.t.Fatalf("the card answered CID %02X, not a TC", cid)
	}
	tc := tcSet(e.t, ic, c.gac2)
	rec := provisioning.TxnRecord{STAN: stan, Batch: e.batch, Entry: provisioning.EntryChip, Amount: amount, RC: resp.RC,
		RRN: resp.RRN, AuthCode: resp.AuthCode, Time: resp.Time, Masked: card.PAN.Masked(), AID: card.AID,
		IC: &provisioning.ICData{CSN: card.Seq, CID: "40", Cryptogram: hex.EncodeToString(c.gac2[5:13]),
			ATC: hex.EncodeToString(c.gac2[3:5]), TC: hex.EncodeToString(tc)}}
	return &paid{card: c, card0: card, rec: rec, resp: resp, tc: tc}
}

// tcSet is the TC upload's field 55 as the public apps make it: the online
// request's objects with the second GENERATE AC's cryptogram, CID, ATC and
// issuer application data in their place (LiaoYang_POS
// BatchSendICCOnLineTrans patches 9F26 and 9F27 of the logged set).
func tcSet(t *testing.T, ic, gac2 []byte) []byte {
	t.Helper()
	if len(gac2) < 13 || gac2[0] != 0x80 {
		t.Fatalf("second GENERATE AC is not format 1: % X", gac2)
	}
	with := map[emv.Tag][]byte{0x9F27: gac2[2:3], 0x9F36: gac2[3:5], 0x9F26: gac2[5:13], 0x9F10: gac2[13:]}
	objs, err := emv.DecodeTLV(ic)
	if err != nil {
		t.Fatal(err)
	}
	var out []byte
	for _, o := range objs {
		v := o.Value
		if w, ok := with[o.Tag]; ok {
			v = w
		}
		out = emv.EncodeTLV(out, o.Tag, v)
	}
	return out
}

// replace returns set with tag's value v.
func replace(t *testing.T, set []byte, tag emv.Tag, v []byte) []byte {
	t.Helper()
	objs, err := emv.DecodeTLV(set)
	if err != nil {
		t.Fatal(err)
	}
	var out []byte
	for _, o := range objs {
		if o.Tag == tag {
			o.Value = v
		}
		out = emv.EncodeTLV(out, o.Tag, o.Value)
	}
	return out
}

func chipEnv(t *testing.T) *env {
	cards, err := hostsim.LoadCards(cardsDir())
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, func(c *hostsim.Config) { c.Cards = cards }, nil)
	e.signOn()
	return e
}

func (e *env) admin() provisioning.AdminRequest {
	return provisioning.AdminRequest{Terminal: terminal, STAN: e.nextSTAN(), Batch: e.batch}
}

// TestChipSaleTrack: a chip sale's field 35 is decrypted under the session
// TDK and must be the card's: the client's sale is approved, a track of
// another card or another expiry is declined 14 and booked so.
func TestChipSaleTrack(t *testing.T) {
	e := chipEnv(t)
	p := e.chipPay(100)
	if en := lastEntry(t, e); en.Event != ledger.EventApproved || en.Entry != "chip" || en.STAN != p.rec.STAN {
		t.Fatalf("ledger %+v", en)
	}
	keys, _ := e.ks.LoadKeys()
	for name, track := range map[string]string{
		"another card":   "6250941234567898=30122011234567890",
		"another expiry": profilePAN + "=29122010000000000",
	} {
		c := readChip(t, filepath.Join(cardsDir(), "debit.yaml"), 100)
		enc, err := acquirer.EncryptTrack(keys.Working.TDK, track)
		if err != nil {
			t.Fatal(err)
		}
		m := e.rawSale(e.nextSTAN(), profilePAN)
		e.set(m, 14, "3012")
		e.set(m, 22, "052")
		e.set(m, 35, enc)
		e.set(m, 53, acquirer.SecurityControl(acquirer.DoubleDES, true))
		e.setBytes(m, 55, c.ic)
		if rc := acquirer.Get(e.raw(m), 39); rc != "14" {
			t.Errorf("%s: %s", name, rc)
		}
		if en := lastEntry(t, e); en.Event != ledger.EventDeclined || en.RC != "14" || en.Entry != "chip" {
			t.Errorf("%s: ledger %+v", name, en)
		}
	}
}

// TestTCUpload: the TC the card gave goes up before settlement (0320/203)
// and the host takes it as the one the card made for the sale it approved
// (9F27 a TC, 9F36 the ARQC's ATC), once however often it is sent; a TC for
// a sale the host never approved is 25, an AAC 30, a TC of another
// transaction of the card 25, a second TC for the sale 94. The balanced
// settlement that follows counts it among the batch's records.
func TestTCUpload(t *testing.T) {
	e := chipEnv(t)
	p := e.chipPay(100)
	up := func(txn provisioning.TxnRecord) string {
		t.Helper()
		ack, err := e.c.UploadTC(context.Background(), provisioning.TCUpload{AdminRequest: e.admin(), Txn: txn, Card: p.card0.PAN})
		if err != nil {
			t.Fatal(err)
		}
		return ack.RC
	}
	for i := range 2 {
		if rc := up(p.rec); rc != "00" {
			t.Fatalf("TC upload %d: %s", i, rc)
		}
	}
	got := e.srv.TCUploads(tid)
	if len(got) != 1 {
		t.Fatalf("%d TCs taken, want 1", len(got))
	}
	r := got[0]
	if !bytes.Equal(r.Data, p.tc) || !bytes.Equal(r.TC, p.card.gac2[5:13]) || r.CID != 0x40 || r.STAN != p.rec.STAN ||
		r.Batch != e.batch || r.Amount != 100 || r.Code != "203" {
		t.Errorf("taken %+v\nsettlement uploaded % X", r, p.tc)
	}
	if want := p.card.gac2[3:5]; r.ATC != uint16(want[0])<<8|uint16(want[1]) {
		t.Errorf("ATC %04X, the card's % X", r.ATC, want)
	}
	var booked []ledger.Entry
	for _, en := range e.ledger.Entries() {
		if en.Kind == ledger.KindTCUpload {
			booked = append(booked, en)
		}
	}
	if len(booked) != 1 || booked[0].Event != ledger.EventAnswered || booked[0].OrigSTAN != p.rec.STAN || booked[0].Code != "203" ||
		!strings.HasSuffix(strings.ToUpper(booked[0].Item), strings.ToUpper(hex.EncodeToString(r.TC))) {
		t.Errorf("ledger %+v", booked)
	}

	never := p.rec
	never.STAN = 999
	aac := p.rec
	aac.IC = &provisioning.ICData{CSN: "01", TC: hex.EncodeToString(replace(t, p.tc, 0x9F27, []byte{0x00}))}
	otherATC := p.rec
	otherATC.IC = &provisioning.ICData{CSN: "01", TC: hex.EncodeToString(replace(t, p.tc, 0x9F36, []byte{0x7F, 0xFF}))}
	second := p.rec
	second.IC = &provisioning.ICData{CSN: "01", TC: hex.EncodeToString(replace(t, p.tc, 0x9F26, make([]byte, 8)))}
	for name, tc := range map[string]struct {
		txn provisioning.TxnRecord
		rc  string
	}{"never approved": {never, "25"}, "an AAC": {aac, "30"}, "another ATC": {otherATC, "25"}, "a second TC": {second, "94"}} {
		if rc := up(tc.txn); rc != tc.rc {
			t.Errorf("%s: %s, want %s", name, rc, tc.rc)
		}
	}
	if n := len(e.srv.TCUploads(tid)); n != 1 {
		t.Errorf("%d TCs taken after the refused ones", n)
	}

	set, err := e.c.Settle(context.Background(), provisioning.SettleRequest{AdminRequest: e.admin(),
		Domestic: provisioning.Totals{DebitCount: 1, DebitAmount: 100}})
	if err != nil || !set.DomesticBalanced {
		t.Fatalf("settle %+v %v", set, err)
	}
	if ack, err := e.c.EndBatchUpload(context.Background(), provisioning.BatchEnd{AdminRequest: e.admin(), Balanced: true, Count: 1}); err != nil || ack.RC != "00" {
		t.Fatalf("207: %+v %v", ack, err)
	}
	if en := lastEntry(t, e); en.Event != ledger.EventBatchClosed || en.Settlement.Received != 1 || en.Settlement.Unmatched != 0 {
		t.Errorf("closed %+v", en.Settlement)
	}
}

// TestICBatchUploadUnbalanced: after an unbalanced settlement the chip
// sale goes up in the IC format with 205 and its TC set; the host takes the
// TC, and a record whose 55 is no TC of the sale counts as unmatched.
func TestICBatchUploadUnbalanced(t *testing.T) {
	e := chipEnv(t)
	p := e.chipPay(100)
	set, err := e.c.Settle(context.Background(), provisioning.SettleRequest{AdminRequest: e.admin(),
		Domestic: provisioning.Totals{DebitCount: 2, DebitAmount: 200}})
	if err != nil || set.DomesticBalanced {
		t.Fatalf("settle %+v %v", set, err)
	}
	aac := p.rec
	aac.IC = &provisioning.ICData{CSN: "01", TC: hex.EncodeToString(replace(t, p.tc, 0x9F27, []byte{0x00}))}
	for _, txn := range []provisioning.TxnRecord{p.rec, aac} {
		ack, err := e.c.UploadBatch(context.Background(), provisioning.BatchUpload{AdminRequest: e.admin(), Kind: "sale", Txn: txn, Card: p.card0.PAN})
		if err != nil || ack.RC != "00" {
			t.Fatalf("batch upload: %+v %v", ack, err)
		}
	}
	if ack, err := e.c.EndBatchUpload(context.Background(), provisioning.BatchEnd{AdminRequest: e.admin(), Count: 2}); err != nil || ack.RC != "00" {
		t.Fatalf("202: %+v %v", ack, err)
	}
	if en := lastEntry(t, e); en.Event != ledger.EventBatchClosed || en.Settlement.Balanced || en.Settlement.Received != 2 || en.Settlement.Unmatched != 1 {
		t.Errorf("closed %+v", en.Settlement)
	}
	got := e.srv.TCUploads(tid)
	if len(got) != 1 || got[0].Code != "205" || !bytes.Equal(got[0].Data, p.tc) {
		t.Errorf("taken %+v", got)
	}
}

// TestScriptResults: a sale whose answer carried a script ends with the
// card's results notified (0620/951, MACed); the host records DF31 for the
// sale of field 61. A notice for a sale it never approved is 25, one
// without a MAC A0.
func TestScriptResults(t *testing.T) {
	e := chipEnv(t)
	e.srv.Inject(hostsim.KindSale, hostsim.Fault{Action: hostsim.SendScripts})
	p := e.chipPay(100)
	// The 72 script of DefaultScripts ran (one command, 9000): result 2,
	// and the script identifier the host gave it.
	ss, err := cardsim.ParseIssuerScripts(p.resp.ICData)
	if err != nil || len(ss) != 1 {
		t.Fatalf("scripts %+v %v", ss, err)
	}
	df31 := append([]byte{0x20}, ss[0].ID...)
	p.rec.IC.Scripts = hex.EncodeToString(df31)
	notify := func(txn provisioning.TxnRecord) string {
		t.Helper()
		ack, err := e.c.NotifyScripts(context.Background(), provisioning.ScriptNotice{AdminRequest: e.admin(), Txn: txn, Card: p.card0.PAN})
		if err != nil {
			t.Fatal(err)
		}
		return ack.RC
	}
	if rc := notify(p.rec); rc != "00" {
		t.Fatalf("notice: %s", rc)
	}
	got := e.srv.ScriptResults(tid)
	if len(got) != 1 || !bytes.Equal(got[0].Results, df31) || got[0].STAN != p.rec.STAN || got[0].NoticeSTAN != e.stan {
		t.Fatalf("recorded %+v, want DF31 % X for STAN %d", got, df31, p.rec.STAN)
	}
	if en := lastEntry(t, e); en.Kind != ledger.KindScriptResult || en.OrigSTAN != p.rec.STAN || en.Code != "951" {
		t.Errorf("ledger %+v", en)
	}
	never := p.rec
	never.STAN = 999
	if rc := notify(never); rc != "25" {
		t.Errorf("notice for a sale never approved: %s", rc)
	}
	// Without a MAC: built as the client would, packed without field 64.
	m := acquirer.NewMessage("0620")
	for id, v := range map[int]string{3: "000000", 4: "000000000100", 11: "000099", 22: "052", 41: tid, 42: mid, 49: "156",
		60: "00" + e.batch + "95150", 61: p.rec.Batch + fmt.Sprintf("%06d", p.rec.STAN)} {
		e.set(m, id, v)
	}
	e.setBytes(m, 55, emv.EncodeTLV(emv.EncodeTLV(nil, 0x9F36, p.card.gac2[3:5]), 0xDF31, df31))
	if rc := acquirer.Get(rawUnMACed(t, e, m), 39); rc != "A0" {
		t.Errorf("notice without a MAC: %s", rc)
	}
	if n := len(e.srv.ScriptResults(tid)); n != 1 {
		t.Errorf("%d notices recorded", n)
	}
}

// rawUnMACed sends m without field 64 and returns the answer.
func rawUnMACed(t *testing.T, e *env, m *iso8583.Message) *iso8583.Message {
	t.Helper()
	body, err := acquirer.Pack(m)
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := acquirer.WriteFrame(c, acquirer.Frame{TPDU: acquirer.DefaultTPDU, Header: acquirer.DefaultHeader, Message: body}); err != nil {
		t.Fatal(err)
	}
	f, err := acquirer.ReadFrame(c, 0)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := acquirer.Unpack(f.Message)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// TestICReversalAfterApproval: the card declined (AAC) what the host
// approved; the IC reversal (39 = 06, with 14, 23, 38 and 55) undoes the
// sale on the ledger, and the batch then settles with nothing charged.
func TestICReversalAfterApproval(t *testing.T) {
	e := chipEnv(t)
	sim, err := cardsim.Open(filepath.Join(cardsDir(), "debit.yaml"), nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := emv.Read(context.Background(), sim.AsCard("slot0"), emv.DefaultTerminal(), emv.Transaction{Amount: 100})
	if err != nil {
		t.Fatal(err)
	}
	card := res.Card()
	card.Track2 = pan.NewTrack(trackChars(res.Track2.Reveal()))
	stan := e.nextSTAN()
	resp, err := e.c.Sale(context.Background(), provisioning.SaleRequest{Terminal: terminal, STAN: stan, Batch: e.batch, Amount: 100, Card: card})
	if err != nil || resp.RC != "00" {
		t.Fatalf("%+v %v", resp, err)
	}
	// The card's answer to the host's approval: an AAC (the second
	// GENERATE AC asked for one, as a card that refuses does).
	ic, _ := hex.DecodeString(res.ICData)
	c := &chipCard{t: t, sim: sim, ic: ic}
	if cid, _, _ := c.complete(resp.ICData, "05"); cid != 0x00 {
		t.Fatalf("CID %02X", cid)
	}
	objs, _ := emv.DecodeTLV(ic)
	var rev []byte
	for _, tag := range []emv.Tag{0x95, 0x9F10, 0x9F36} {
		if o, ok := emv.Find(objs, tag); ok {
			rev = emv.EncodeTLV(rev, tag, o.Value)
		}
	}
	inf := provisioning.InFlight{Kind: "sale", STAN: stan, Batch: e.batch, Amount: 100, Reason: "06", Expiry: card.Expiry, Seq: card.Seq,
		AuthCode: resp.AuthCode, IC: hex.EncodeToString(rev), Entry: provisioning.EntryChip}
	rr, err := e.c.Reverse(context.Background(), provisioning.ReversalRequest{Terminal: terminal, Orig: inf, Reason: "06", PAN: card.PAN})
	if err != nil || rr.RC != "00" {
		t.Fatalf("reversal: %+v %v", rr, err)
	}
	if en := lastEntry(t, e); en.Event != ledger.EventReversed || en.STAN != stan || en.Kind != ledger.KindSale {
		t.Fatalf("ledger %+v", en)
	}
	if _, reversed := checkLedger(t, e.path); reversed != 1 {
		t.Errorf("%d sales reversed", reversed)
	}
	// A reversed sale has no TC to take (the card's cryptogram here is
	// the AAC, sent as a terminal that mixed its records up would).
	if ack, err := e.c.UploadTC(context.Background(), provisioning.TCUpload{AdminRequest: e.admin(), Card: card.PAN,
		Txn: provisioning.TxnRecord{STAN: stan, Batch: e.batch, Entry: provisioning.EntryChip, Amount: 100,
			IC: &provisioning.ICData{TC: hex.EncodeToString(tcSet(t, ic, c.gac2))}}}); err != nil || ack.RC != "25" {
		t.Errorf("TC upload of the reversed sale: %+v %v", ack, err)
	}
	// Nothing is charged: the host's totals are zero, and a terminal that
	// says so balances.
	set, err := e.c.Settle(context.Background(), provisioning.SettleRequest{AdminRequest: e.admin()})
	if err != nil || !set.DomesticBalanced {
		t.Errorf("settle after the reversal: %+v %v", set, err)
	}
}
