package inproc

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/posagent/posagent/agent/acquirer"
	"github.com/posagent/posagent/agent/sim/ledger"
	"github.com/posagent/posagent/provisioning"
	"github.com/posagent/posagent/provisioning/pan"
)

type clock struct{}

func (clock) Now() time.Time { return time.Date(2026, 11, 27, 9, 30, 0, 0, time.UTC) }

var term = provisioning.Terminal{TID: "10000001", MID: "898310048990001", Serial: "S1"}

func debitCard(t *testing.T) provisioning.Card {
	t.Helper()
	c, err := NewCard("debit")
	if err != nil {
		t.Fatal(err)
	}
	card, err := c.ReadCard(context.Background(), provisioning.CardRequest{Purpose: "test sale"})
	if err != nil {
		t.Fatal(err)
	}
	return card
}

// The ledger survives a reopen, and its summary follows sales, voids and
// reversals (a resent reversal changes nothing; reversing a void charges the
// sale again).
func TestHostLedger(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "ledger.jsonl")
	h, err := OpenHost(path, clock{})
	if err != nil {
		t.Fatal(err)
	}
	card := debitCard(t)
	sale := func(stan int) provisioning.TxnRecord {
		resp, err := h.Sale(ctx, provisioning.SaleRequest{Terminal: term, STAN: stan, Batch: "000001", Amount: 1, Card: card})
		if err != nil || resp.RC != "00" || len(resp.RRN) != 12 {
			t.Fatalf("sale %d: %v %+v", stan, err, resp)
		}
		return provisioning.TxnRecord{STAN: stan, Batch: "000001", Amount: 1, RC: "00", RRN: resp.RRN, AuthCode: resp.AuthCode}
	}
	reverse := func(kind string, stan, orig int, want string) {
		resp, err := h.Reverse(ctx, provisioning.ReversalRequest{Terminal: term, Orig: provisioning.InFlight{Kind: kind, STAN: stan, OrigSTAN: orig}, Reason: "98"})
		if err != nil || resp.RC != want {
			t.Fatalf("reverse %s %d: %v rc=%s, want %s", kind, stan, err, resp.RC, want)
		}
	}
	s1 := sale(1)
	reverse("sale", 1, 0, "00")
	reverse("sale", 1, 0, "00") // resent: no second effect
	s2 := sale(2)
	if resp, _ := h.Void(ctx, provisioning.VoidRequest{Terminal: term, STAN: 3, Batch: "000001", Card: card, Orig: s2}); resp.RC != "00" {
		t.Fatalf("void rc = %s", resp.RC)
	}
	reverse("void", 3, 2, "00") // the void is undone: sale 2 is charged again
	if resp, _ := h.Void(ctx, provisioning.VoidRequest{Terminal: term, STAN: 4, Batch: "000001", Card: card, Orig: s2}); resp.RC != "00" {
		t.Fatalf("second void rc = %s", resp.RC)
	}
	if resp, _ := h.Void(ctx, provisioning.VoidRequest{Terminal: term, STAN: 5, Batch: "000001", Card: card, Orig: s1}); resp.RC != "12" {
		t.Errorf("void of a reversed sale rc = %s, want 12", resp.RC)
	}
	reverse("sale", 99, 0, "25") // never booked
	h.Close()

	led, err := ledger.Read(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := Summarize(led)
	if sum.Sales[1] != "reversed" || sum.Sales[2] != "voided" || sum.Outstanding() != 0 {
		t.Errorf("summary = %+v", sum)
	}
	if sum.Reversals["sale/000001"] != 2 || sum.Reversals["void/000003"] != 1 {
		t.Errorf("reversals = %v", sum.Reversals)
	}
	// Refused messages are booked too: the void of the reversed sale, the
	// reversal of a sale never booked.
	if m := sum.Messages; m[ledger.KindSale] != 2 || m[ledger.KindVoid] != 3 || m[ledger.KindReversal] != 4 || len(m) != 3 {
		t.Errorf("messages = %v", m)
	}
	raw, _ := os.ReadFile(path)
	if strings.Contains(string(raw), card.PAN.Reveal()) || !strings.Contains(string(raw), card.PAN.Masked()) {
		t.Error("the ledger must hold the masked card number only")
	}
}

// A host killed mid-write leaves a torn last line: it was never answered, so
// the reopened host leaves it out and books on after it.
func TestLedgerTornLastLine(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "ledger.jsonl")
	card := debitCard(t)
	sale := func(h *Host, stan int) {
		t.Helper()
		if _, err := h.Sale(ctx, provisioning.SaleRequest{Terminal: term, STAN: stan, Batch: "000001", Amount: 1, Card: card}); err != nil {
			t.Fatal(err)
		}
	}
	h, err := OpenHost(path, clock{})
	if err != nil {
		t.Fatal(err)
	}
	sale(h, 1)
	h.Close()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(`{"seq":2,"time":"2026-11-27T09:30:00Z","event":"appr`)
	f.Close()
	if led, err := ledger.Read(path); err != nil || len(led) != 1 {
		t.Fatalf("ledger.Read = %v %+v", err, led)
	}

	h, err = OpenHost(path, clock{})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	sale(h, 2)
	led, err := ledger.Read(path)
	if err != nil || len(led) != 2 || led[1].Seq != 2 || led[1].STAN != 2 || Summarize(led).Outstanding() != 2 {
		t.Fatalf("after the restart ledger.Read = %v %+v", err, led)
	}
}

func TestHostDown(t *testing.T) {
	h, err := OpenHost(filepath.Join(t.TempDir(), "l"), clock{})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	h.Down = true
	if err := h.Echo(context.Background(), term); err == nil {
		t.Error("echo to a down host succeeded")
	}
}

func TestCardQueue(t *testing.T) {
	if _, err := NewCard("no-such"); err == nil || !strings.Contains(err.Error(), "no-such") {
		t.Fatalf("NewCard(no-such) = %v", err)
	}
	c, err := NewCard("foreign", "debit")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var got []string
	for _, purpose := range []string{"bind settlement card", "bind settlement card", "test sale", "bind settlement card"} {
		card, err := c.ReadCard(ctx, provisioning.CardRequest{Purpose: purpose})
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, card.AID)
	}
	want := []string{"A0000000031010", "A000000333010101", "A000000333010101", "A000000333010101"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("AIDs read = %v, want %v", got, want)
	}
	bad, _ := NewCard("bad-luhn")
	card, err := bad.ReadCard(ctx, provisioning.CardRequest{Purpose: "bind settlement card"})
	if err != nil || card.PAN.LuhnValid() {
		t.Errorf("bad-luhn card: %v, luhn valid %v", err, card.PAN.LuhnValid())
	}
}

// Every profile but debit and the two that fail on the chip breaks a
// binding rule for the demo merchant; those three pass. The chip ones are
// the debit card as the binding reads it (their difference shows only in
// a sale: TestCompleteVerdicts, TestCardRemovedMidSale).
func TestProfilesAgainstBindingRules(t *testing.T) {
	tmk, err := acquirer.ParseKey(DemoTMK)
	if err != nil {
		t.Fatal(err)
	}
	check, err := acquirer.AccountCheck(tmk, term.TID, pan.MustParse(DemoPAN))
	if err != nil {
		t.Fatal(err)
	}
	m := provisioning.Merchant{MID: term.MID, Name: "x", LegalPerson: "ZHANG SAN", AccountCheck: check, CardType: provisioning.Debit}
	want := map[string]string{"debit": "", "credit": provisioning.RejectCardType, "foreign": provisioning.RejectNotUnionPay,
		"expired": provisioning.RejectExpired, "name-mismatch": provisioning.RejectNameMismatch,
		"other-account": provisioning.RejectOtherAccount, "bad-luhn": provisioning.RejectBadLuhn,
		"debit-16": provisioning.RejectOtherAccount, "decline-after-approval": "", "removed-mid-sale": ""}
	if len(want) != len(Profiles) {
		t.Fatalf("profiles %v not all covered", ProfileNames())
	}
	for name, code := range want {
		c, _ := NewCard(name)
		card, err := c.ReadCard(context.Background(), provisioning.CardRequest{Purpose: "bind settlement card"})
		if err != nil {
			t.Fatal(err)
		}
		if p := Profiles[name]; p.DeclineAfterApproval || p.RemovedMidSale {
			d := Profiles["debit"]
			if p.PAN != d.PAN || p.Seq != d.Seq || p.Name != d.Name || p.Expiry != d.Expiry || p.AID != d.AID || p.Label != d.Label {
				t.Errorf("%s is not the debit card as a read sees it: %+v", name, p)
			}
		}
		got := ""
		if err := (provisioning.BindingRules{Accounts: Accounts(term.TID)}).Check(card, m, clock{}.Now()); err != nil {
			got = err.(*provisioning.Rejection).Code
		}
		if got != code {
			t.Errorf("%s: rejection %q, want %q", name, got, code)
		}
	}
}

func TestPrinterPaperOutAndSlips(t *testing.T) {
	var out bytes.Buffer
	dir := t.TempDir()
	p := &Printer{Out: &out, Dir: dir, Width: 32}
	r := provisioning.Receipt{
		Merchant: provisioning.Merchant{Name: "上海示例便利店"}, Terminal: term,
		Txn:  provisioning.TxnRecord{STAN: 2, Batch: "000001", Amount: 1, RRN: "331009000002", AuthCode: "015838", Time: clock{}.Now(), Masked: "622202*********0128", AID: "A000000333010101", Expiry: "3012"},
		Kind: "sale", Test: true,
	}
	p.SetPaperOut(true)
	if err := p.PrintReceipt(context.Background(), r); err != ErrPaperOut {
		t.Fatalf("print without paper = %v", err)
	}
	p.SetPaperOut(false)
	r.Duplicate = true
	if err := p.PrintReceipt(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	if p.Printed() != 2 {
		t.Errorf("printed %d copies, want 2", p.Printed())
	}
	for _, which := range []string{"merchant", "cardholder"} {
		b, err := os.ReadFile(filepath.Join(dir, "sale-000002-"+which+".txt"))
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"622202*********0128 /I", "RMB 0.01", "DUPLICATED", "TEST"} {
			if !strings.Contains(string(b), want) {
				t.Errorf("%s copy lacks %q:\n%s", which, want, b)
			}
		}
	}
	if !strings.Contains(out.String(), "slip| ") {
		t.Error("nothing printed to Out")
	}
}

// signalWriter is a Pauses.Out that tells the test when a line was written.
type signalWriter struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	wrote chan struct{} // closed at the first Write
	once  sync.Once
}

func (w *signalWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	defer w.once.Do(func() { close(w.wrote) })
	return w.buf.Write(p)
}

func (w *signalWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// waitedCtx tells the test when Point starts waiting for it to end.
type waitedCtx struct {
	context.Context
	waiting chan struct{} // closed at the first Done call
	once    sync.Once
}

func (c *waitedCtx) Done() <-chan struct{} {
	c.once.Do(func() { close(c.waiting) })
	return c.Context.Done()
}

func TestPausePoint(t *testing.T) {
	const wait = 10 * time.Second // only ever the failing branch
	out := &signalWriter{wrote: make(chan struct{})}
	p := &Pauses{At: "host.sale", Out: out}
	p.Point(context.Background(), "host.void") // not the point: returns at once
	if out.String() != "" {
		t.Errorf("another point wrote %q", out.String())
	}
	base, cancel := context.WithCancel(context.Background())
	defer cancel()
	ctx := &waitedCtx{Context: base, waiting: make(chan struct{})}
	done := make(chan struct{})
	go func() { p.Point(ctx, "host.sale"); close(done) }()
	// Point says PAUSED, then waits for ctx: once it has done both, it can
	// only return when ctx ends.
	for _, ev := range []struct {
		what string
		ch   <-chan struct{}
	}{{"wrote PAUSED", out.wrote}, {"waited for ctx", ctx.waiting}} {
		select {
		case <-ev.ch:
		case <-done:
			t.Fatalf("Point returned without ctx ending, before it %s", ev.what)
		case <-time.After(wait):
			t.Fatalf("Point never %s", ev.what)
		}
	}
	select {
	case <-done:
		t.Fatal("Point returned without ctx ending")
	default:
	}
	if out.String() != "PAUSED at host.sale\n" {
		t.Errorf("out = %q", out.String())
	}
	cancel()
	select {
	case <-done:
	case <-time.After(wait):
		t.Fatal("Point did not return when ctx ended")
	}
	var nilPauses *Pauses
	nilPauses.Point(context.Background(), "host.sale") // nil means off
}
