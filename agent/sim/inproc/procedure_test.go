package inproc

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/posagent/posagent/agent/acquirer"
	"github.com/posagent/posagent/agent/sim/ledger"
	"github.com/posagent/posagent/provisioning"
	"github.com/posagent/posagent/provisioning/pan"
	"github.com/posagent/posagent/provisioning/provisioningtest"
)

// The CA keys are real: RSA moduli of the stated length with an odd
// composite, exponent 3, and the EMV checksum; the same on every run.
func TestDemoCAPKs(t *testing.T) {
	keys := DemoCAPKs()
	if len(keys) != len(demoKeySizes) {
		t.Fatalf("%d keys", len(keys))
	}
	for i, k := range keys {
		if err := k.Verify(); err != nil {
			t.Errorf("key %s: %v", k.ID(), err)
		}
		n := new(big.Int).SetBytes(k.Modulus)
		if n.BitLen() != demoKeySizes[i].bits || n.Bit(0) != 1 || n.ProbablyPrime(10) {
			t.Errorf("key %s: modulus of %d bits, odd %v, prime %v", k.ID(), n.BitLen(), n.Bit(0) == 1, n.ProbablyPrime(10))
		}
		for which := 1; which <= 2; which++ {
			if p := seededPrime(k.Index, which, demoKeySizes[i].bits/2); new(big.Int).Mod(p, big.NewInt(3)).Int64() != 2 {
				t.Errorf("key %s: a prime is not 2 mod 3: exponent 3 would not invert", k.ID())
			}
		}
	}
	again := DemoCAPKs()
	if !bytes.Equal(again[2].Modulus, keys[2].Modulus) {
		t.Error("the keys change between calls")
	}
}

type rig struct {
	dir       string
	state     *provisioningtest.Store
	downloads *provisioningtest.Store
	card      *Card
	printer   *Printer
	reports   []provisioning.Status
}

func newRig(t *testing.T) *rig {
	t.Helper()
	card, err := NewCard("debit")
	if err != nil {
		t.Fatal(err)
	}
	return &rig{dir: t.TempDir(), state: &provisioningtest.Store{}, downloads: &provisioningtest.Store{}, card: card,
		printer: &Printer{Out: io.Discard, Width: 32}}
}

func (r *rig) Report(_ context.Context, s provisioning.Status) { r.reports = append(r.reports, s) }

type enterKeys struct{}

func (enterKeys) Show(context.Context, provisioning.Screen) error { return nil }
func (enterKeys) Ask(_ context.Context, _ provisioning.Screen, opts ...provisioning.Option) (string, error) {
	return opts[0].ID, nil // confirm, retry
}

// host opens the rig's host on its ledger, as an agent start does.
func (r *rig) host(t *testing.T, pauses *Pauses) *Host {
	t.Helper()
	h, err := OpenHost(filepath.Join(r.dir, "ledger.jsonl"), clock{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	h.Pauses, r.card.Pauses, r.printer.Pauses = pauses, pauses, pauses
	return h
}

func (r *rig) flow(h *Host, pauses *Pauses) *provisioning.Flow {
	return &provisioning.Flow{
		Terminal: term, Amount: 1, Version: "test", Rules: provisioning.BindingRules{Accounts: Accounts(term.TID)},
		Params: Params{Merchant: provisioning.Merchant{MID: term.MID, Name: "上海示例便利店", LegalPerson: "ZHANG SAN",
			AccountCheck: demoCheck, CardType: provisioning.Debit}, Pauses: pauses},
		Card: r.card, Host: h, Printer: r.printer, UI: enterKeys{}, Reporter: r, Store: r.state,
		Downloads: provisioning.DownloadFile{Store: r.downloads}, Clock: clock{}, Log: slog.New(slog.DiscardHandler),
		OnEnter: func(ctx context.Context, s provisioning.Step) { pauses.Point(ctx, "enter:"+string(s)) },
	}
}

// demoCheck is the demo card's account check under DemoTMK for term.
var demoCheck = func() string {
	tmk, err := acquirer.ParseKey(DemoTMK)
	if err != nil {
		panic(err)
	}
	c, err := acquirer.AccountCheck(tmk, term.TID, pan.MustParse(DemoPAN))
	if err != nil {
		panic(err)
	}
	return c
}()

func (r *rig) ledger(t *testing.T) []ledger.Entry {
	t.Helper()
	led, err := ledger.Read(filepath.Join(r.dir, "ledger.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	return led
}

func kinds(led []ledger.Entry) []string {
	var out []string
	for _, e := range led {
		out = append(out, e.Kind)
	}
	return out
}

// checkInstall is what every install on this host ends with: one sale,
// voided, the batch settled and the next one open, the lists active.
func checkInstall(t *testing.T, r *rig, cp provisioning.Checkpoint) {
	t.Helper()
	led := r.ledger(t)
	sum := Summarize(led)
	if sum.Outstanding() != 0 || sum.Count("voided") != 1 {
		t.Errorf("ledger: %v", sum.Sales)
	}
	var settled []ledger.Entry
	for _, e := range led {
		if e.Event == ledger.EventSettled {
			settled = append(settled, e)
		}
	}
	// Gross, as public hosts count: the sale a debit, its void a credit.
	want := ledger.Totals{DebitCount: 1, DebitAmount: 1, CreditCount: 1, CreditAmount: 1}
	if len(settled) != 1 || settled[0].Batch != "000001" || settled[0].Settlement == nil || settled[0].Settlement.Host != want ||
		settled[0].Settlement.Terminal != want {
		t.Errorf("settlements %+v", settled)
	}
	if cp.Step != provisioning.StepLive || cp.Business == nil || cp.Business.Batch != "000002" {
		t.Errorf("checkpoint at %s, business %+v", cp.Step, cp.Business)
	}
	d, err := provisioning.DownloadFile{Store: r.downloads}.LoadDownloads()
	if err != nil || len(d.CAPKs) != len(DemoCAPKs()) || len(d.Apps) != 2 || d.StagedCAPK != nil || d.StagedApps != nil {
		t.Errorf("downloads %v: %d keys, %d apps", err, len(d.CAPKs), len(d.Apps))
	}
}

func TestInstallOnTheInProcessHost(t *testing.T) {
	r := newRig(t)
	h := r.host(t, nil)
	cp, err := r.flow(h, nil).Run(context.Background())
	if err != nil {
		t.Fatalf("%v at %s", err, cp.Step)
	}
	checkInstall(t, r, cp)
	got := kinds(r.ledger(t))
	want := []string{"sign-on", "capk-list", "capk-list", "capk", "capk", "capk", "capk-end", "app-list", "app", "app", "app-end",
		"term-params", "status", "sale", "void", "tc-upload", "settlement", "batch-end", "sign-off", "sign-on"}
	if !slices.Equal(got, want) {
		t.Errorf("ledger kinds %v, want %v", got, want)
	}
	last := r.reports[len(r.reports)-1]
	if last.Clock != provisioning.ClockAcquirer {
		t.Errorf("the live report's clock is %s: the in-process host's time is trusted", last.Clock)
	}
	if cp.TermParams == nil || cp.TermParams.MerchantName != DefaultTerminalParams.MerchantName {
		t.Errorf("terminal parameters %+v", cp.TermParams)
	}
}

// An unbalanced settlement uploads the sale's and the void's records; the
// ledger still holds one sale.
func TestUnbalancedSettlementOnTheInProcessHost(t *testing.T) {
	r := newRig(t)
	h := r.host(t, nil)
	h.Unbalance = 1
	cp, err := r.flow(h, nil).Run(context.Background())
	if err != nil {
		t.Fatalf("%v at %s", err, cp.Step)
	}
	checkInstall(t, r, cp)
	var uploads []string
	for _, e := range r.ledger(t) {
		if e.Kind == ledger.KindBatchRecord {
			uploads = append(uploads, fmt.Sprintf("%s/%06d", e.Item, e.OrigSTAN))
		}
	}
	want := []string{fmt.Sprintf("sale/%06d", cp.Sale.STAN), fmt.Sprintf("void/%06d", cp.Void.STAN)}
	if !slices.Equal(uploads, want) || !cp.Settlement.UploadEnded || cp.Settlement.Balanced {
		t.Errorf("uploads %v (want %v), settlement %+v", uploads, want, cp.Settlement)
	}
	if n := Summarize(r.ledger(t)).Messages[ledger.KindSale]; n != 1 {
		t.Errorf("%d sales booked", n)
	}
}

// A demand in the sale's answer is carried out before the void.
func TestDemandBeforeTheVoidOnTheInProcessHost(t *testing.T) {
	r := newRig(t)
	h := r.host(t, nil)
	h.DemandNext(ledger.KindSale, provisioning.DemandCAPK)
	h.DemandNext(ledger.KindSale, provisioning.DemandSignOn) // never asked: one sale
	cp, err := r.flow(h, nil).Run(context.Background())
	if err != nil {
		t.Fatalf("%v at %s", err, cp.Step)
	}
	got := kinds(r.ledger(t))
	i := slices.Index(got, "sale")
	if rest := got[i+1:]; len(rest) < 6 || rest[0] != "capk-list" || slices.Index(rest, "capk-end") > slices.Index(rest, "void") {
		t.Errorf("after the sale: %v", rest)
	}
	checkInstall(t, r, cp)
}

// stopAt runs the flow until it pauses at point, then stops it there as a
// power cut would (the context ends: nothing more reaches the host).
func stopAt(t *testing.T, r *rig, point string) {
	t.Helper()
	var out syncBuffer
	pauses := &Pauses{At: point, Out: &out}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	h := r.host(t, pauses)
	done := make(chan error, 1)
	go func() {
		_, err := r.flow(h, pauses).Run(ctx)
		done <- err
	}()
	deadline := time.After(20 * time.Second)
	for !strings.Contains(out.String(), "PAUSED at "+point) {
		select {
		case err := <-done:
			t.Fatalf("the flow ended (%v) before pausing at %s", err, point)
		case <-deadline:
			t.Fatalf("never paused at %s", point)
		case <-time.After(time.Millisecond):
		}
	}
	cancel()
	<-done
	h.Close()
}

// syncBuffer is a bytes.Buffer for one writer and one reader.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Stopped at every pause point of the procedure table in turn, on the same
// stores and ledger, the install ends live with one sale voided, the batch
// settled once, and the lists whole and verified.
func TestStopInsideEveryStep(t *testing.T) {
	r := newRig(t)
	for _, p := range Points() {
		stopAt(t, r, p)
		if _, err := provisioning.Decode(r.state.Bytes()); err != nil && r.state.Bytes() != nil {
			t.Fatalf("after %s: %v", p, err)
		}
	}
	h := r.host(t, nil)
	cp, err := r.flow(h, nil).Run(context.Background())
	if err != nil {
		t.Fatalf("%v at %s", err, cp.Step)
	}
	checkInstall(t, r, cp)
}

// The in-process host names its institution codes as a real host's field
// 44 does: the install's slips, sale and void, print them, and the void's
// copies name the sale they cancel.
func TestSlipsOnTheInProcessHost(t *testing.T) {
	r := newRig(t)
	r.printer.Dir = filepath.Join(r.dir, "slips")
	h := r.host(t, nil)
	cp, err := r.flow(h, nil).Run(context.Background())
	if err != nil || cp.Sale == nil || cp.Void == nil {
		t.Fatalf("%v at %s", err, cp.Step)
	}
	for _, name := range []string{
		fmt.Sprintf("sale-%06d-merchant", cp.Sale.STAN), fmt.Sprintf("sale-%06d-cardholder", cp.Sale.STAN),
		fmt.Sprintf("void-%06d-merchant", cp.Void.STAN), fmt.Sprintf("void-%06d-cardholder", cp.Void.STAN),
	} {
		b, err := os.ReadFile(filepath.Join(r.printer.Dir, name+".txt"))
		if err != nil {
			t.Fatal(err)
		}
		want := []string{"发卡行 ISSUER:          " + DefaultIssuer + "\n", "收单行 ACQUIRER:        " + DefaultAcquirer + "\n"}
		if strings.HasPrefix(name, "void") {
			want = append(want, "撤销 VOID\n", fmt.Sprintf("原凭证号 ORIG TRACE:      %06d\n", cp.Sale.STAN),
				"原参考号 ORIG REF:  "+cp.Sale.RRN+"\n")
		}
		for _, w := range want {
			if !strings.Contains(string(b), w) {
				t.Errorf("%s lacks %q:\n%s", name, w, b)
			}
		}
	}
	if n := r.printer.Printed(); n != 4 {
		t.Errorf("%d copies printed, want 4", n)
	}
}
