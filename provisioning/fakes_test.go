package provisioning_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/posagent/posagent/provisioning"
	"github.com/posagent/posagent/provisioning/pan"
	"github.com/posagent/posagent/provisioning/provisioningtest"
)

// In-process fakes of the flow's ports; the agent's simulated devices and the
// crash test exercise the real process.

const (
	goodPAN  = "6222021234567890128"
	testTID  = "10000001"
	testMID  = "898310048990001"
	testSalt = "00112233445566778899aabbccddeeff"
)

var testNow = time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)

type fixedClock struct{ t time.Time }

func (c fixedClock) Now() time.Time { return c.t }

type fakeCard struct {
	cards []provisioning.Card // bind reads take the next; other reads the last
	i     int
	err   error
	reads int
	// byPurpose, when it names the read's purpose, is the card read.
	byPurpose map[string]provisioning.Card
	// reqs are the requests read, in order.
	reqs []provisioning.CardRequest
	// chip, when set, makes Pay a chip session (completion_test.go).
	chip *fakeChip
}

func (c *fakeCard) ReadCard(ctx context.Context, r provisioning.CardRequest) (provisioning.Card, error) {
	purpose := r.Purpose
	c.reads++
	c.reqs = append(c.reqs, r)
	if c.err != nil {
		return provisioning.Card{}, c.err
	}
	if bc, ok := c.byPurpose[purpose]; ok {
		return bc, nil
	}
	if purpose == "bind settlement card" && c.i < len(c.cards)-1 && c.reads > 1 {
		c.i++
	}
	return c.cards[c.i], nil
}

func (c *fakeCard) Pay(ctx context.Context, r provisioning.CardRequest) (provisioning.Payment, error) {
	card, err := c.ReadCard(ctx, r)
	if err != nil {
		return nil, err
	}
	if c.chip != nil {
		return c.chip.pay(card), nil
	}
	return provisioning.NoChip(card, nil), nil
}

func card(mut func(*provisioning.Card)) provisioning.Card {
	c := provisioning.Card{PAN: pan.MustParse(goodPAN), Seq: "01", Name: "ZHANG/SAN", Expiry: "3012",
		AID: "A000000333010101", Label: "PBOC DEBIT"}
	if mut != nil {
		mut(&c)
	}
	return c
}

// fakeHost books like an acquirer and can lose the answer to the next sale.
type fakeHost struct {
	mu         sync.Mutex
	sales      map[int]string // STAN -> approved / voided / reversed
	signOns    int
	reversals  []provisioning.ReversalRequest
	loseSale   bool // book the next sale, then fail as if the answer was lost
	badMACSale bool // book the next sale, then fail as if its answer's MAC did not verify
	down       bool
	saleRC     string
	fullPANs   []string                // what reached the host (it needs the full PAN)
	pins       []provisioning.PINBlock // each sale's PIN block as the host got it
	lastVoidOf int
	// sent is every STAN and batch the host was given, sign-on included, in
	// order: STANs must never repeat within the batch.
	sent []sentMsg
	// refuseReversals answers every reversal with no answer at all.
	refuseReversals bool
	// forgeable puts the host's answers behind a MAC that can be forged.
	forgeable bool
	// saleAnswer, voidAnswer and reversalAnswer, when set, rewrite what
	// reaches the flow after the host booked the message (an attacker on
	// the link, or a host's odd answer): given the host's own answer and
	// error, they return what the flow sees.
	saleAnswer, voidAnswer, reversalAnswer func(provisioning.HostResponse, error) (provisioning.HostResponse, error)
	// issuer and acquirer are field 44 of approved sales and voids, as the
	// acquirer client parses it; empty is a host that sends none.
	issuer, acquirer string

	// The acquirer's procedure (fakeprocedure_test.go).
	proc procedureState
}

type sentMsg struct {
	kind  string
	stan  int
	batch string
}

func newHost() *fakeHost {
	return &fakeHost{sales: map[int]string{}, proc: procedureState{batch: "000001", capks: testCAPKs(), apps: testApps(), pageSize: 2,
		params: provisioning.TerminalParams{MerchantName: "银联测试商户", HostTimeout: 30 * time.Second, MaxReversals: 3}}}
}

var errNoAnswer = errors.New("fake host: read timeout")

func (h *fakeHost) Echo(ctx context.Context, t provisioning.Terminal) error {
	if h.down {
		return fmt.Errorf("fake host: connection refused: %w", provisioning.ErrNotSent)
	}
	return nil
}

func (h *fakeHost) SignOn(ctx context.Context, r provisioning.SignOnRequest) (provisioning.SignOnResult, error) {
	if err := ctx.Err(); err != nil {
		return provisioning.SignOnResult{}, err // the exchange never started
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.signOns++
	h.sent = append(h.sent, sentMsg{"sign-on", r.STAN, r.Batch})
	h.proc.signOnBatches = append(h.proc.signOnBatches, r.Batch)
	if err := h.cutHere("sign-on"); err != nil {
		return provisioning.SignOnResult{}, err
	}
	batch := h.proc.batch
	if h.proc.oldSignOns > 0 && batch != "000001" {
		h.proc.oldSignOns--
		batch = fmt.Sprintf("%06d", atoiBatch(batch)-1)
	}
	return provisioning.SignOnResult{RC: "00", Batch: batch, KeysOK: true, HostTime: h.proc.hostTime(), Demand: h.demand("sign-on"),
		Integrity: h.proc.signOnIntegrity}, nil
}

func (h *fakeHost) Sale(ctx context.Context, r provisioning.SaleRequest) (provisioning.HostResponse, error) {
	resp, err := h.sale(r)
	if d, ok := ctx.Deadline(); ok {
		h.mu.Lock()
		h.proc.saleDeadline = time.Until(d)
		h.mu.Unlock()
	}
	if h.saleAnswer != nil {
		return h.saleAnswer(resp, err)
	}
	return resp, err
}

func (h *fakeHost) sale(r provisioning.SaleRequest) (provisioning.HostResponse, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.proc.saleDeadline = 0
	h.fullPANs = append(h.fullPANs, r.Card.PAN.Reveal())
	h.pins = append(h.pins, r.PINBlock)
	h.sent = append(h.sent, sentMsg{"sale", r.STAN, r.Batch})
	if h.saleRC != "" && h.saleRC != "00" {
		return provisioning.HostResponse{RC: h.saleRC, Integrity: h.integrity()}, nil
	}
	h.sales[r.STAN] = "approved"
	if h.loseSale {
		h.loseSale = false
		return provisioning.HostResponse{}, errNoAnswer
	}
	if h.badMACSale {
		h.badMACSale = false
		return provisioning.HostResponse{}, fmt.Errorf("fake host: field 64: %w", provisioning.ErrResponseMAC)
	}
	return provisioning.HostResponse{RC: "00", RRN: fmt.Sprintf("3310%08d", r.STAN), AuthCode: "123456", Time: h.proc.answerTime(), Integrity: h.integrity(),
		Issuer: h.issuer, Acquirer: h.acquirer, Demand: h.demand("sale")}, nil
}

// integrity is what the fake's answers are worth: authentic unless a test
// puts the host behind a forgeable MAC.
func (h *fakeHost) integrity() provisioning.Integrity {
	if h.forgeable {
		return provisioning.IntegrityForgeable
	}
	return provisioning.IntegrityAuthentic
}

func (h *fakeHost) Void(ctx context.Context, r provisioning.VoidRequest) (provisioning.HostResponse, error) {
	resp, err := h.voidIt(r)
	if h.voidAnswer != nil {
		return h.voidAnswer(resp, err)
	}
	return resp, err
}

func (h *fakeHost) voidIt(r provisioning.VoidRequest) (provisioning.HostResponse, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.sent = append(h.sent, sentMsg{"void", r.STAN, r.Batch})
	if h.sales[r.Orig.STAN] != "approved" {
		return provisioning.HostResponse{RC: "12", Integrity: h.integrity()}, nil
	}
	h.sales[r.Orig.STAN] = "voided"
	h.lastVoidOf = r.Orig.STAN
	return provisioning.HostResponse{RC: "00", RRN: fmt.Sprintf("3310%08d", r.STAN), AuthCode: r.Orig.AuthCode, Time: h.proc.answerTime(), Integrity: h.integrity(),
		Issuer: h.issuer, Acquirer: h.acquirer, Demand: h.demand("void")}, nil
}

func (h *fakeHost) Reverse(ctx context.Context, r provisioning.ReversalRequest) (provisioning.HostResponse, error) {
	resp, err := h.reverse(r)
	if h.reversalAnswer != nil {
		return h.reversalAnswer(resp, err)
	}
	return resp, err
}

func (h *fakeHost) reverse(r provisioning.ReversalRequest) (provisioning.HostResponse, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.reversals = append(h.reversals, r)
	if h.refuseReversals {
		return provisioning.HostResponse{}, errNoAnswer
	}
	switch {
	case r.Orig.Kind == "sale" && h.sales[r.Orig.STAN] == "approved":
		h.sales[r.Orig.STAN] = "reversed"
		return provisioning.HostResponse{RC: "00", Integrity: h.integrity()}, nil
	case r.Orig.Kind == "void" && h.sales[r.Orig.OrigSTAN] == "voided":
		h.sales[r.Orig.OrigSTAN] = "approved"
		return provisioning.HostResponse{RC: "00", Integrity: h.integrity()}, nil
	}
	return provisioning.HostResponse{RC: "25", Integrity: h.integrity()}, nil
}

func (h *fakeHost) count(state string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, s := range h.sales {
		if s == state {
			n++
		}
	}
	return n
}

type fakePrinter struct {
	receipts []provisioning.Receipt
	// fail fails the next print of a receipt of kind failKind (of any kind
	// when failKind is empty), printing nothing.
	fail     error
	failKind string
	// after, when set, runs once a receipt is printed; its error is the
	// print's (a power cut after the paper came out).
	after func(provisioning.Receipt) error
}

func (p *fakePrinter) PrintReceipt(ctx context.Context, r provisioning.Receipt) error {
	if p.fail != nil && (p.failKind == "" || p.failKind == r.Kind) {
		err := p.fail
		p.fail = nil
		return err
	}
	p.receipts = append(p.receipts, r)
	if p.after != nil {
		return p.after(r)
	}
	return nil
}

// of is the receipts of kind printed, in order.
func (p *fakePrinter) of(kind string) []provisioning.Receipt {
	var out []provisioning.Receipt
	for _, r := range p.receipts {
		if r.Kind == kind {
			out = append(out, r)
		}
	}
	return out
}

// fakeUI answers Ask from a script of option IDs and keeps a transcript.
type fakeUI struct {
	answers    []string
	transcript []string
}

var errNoAnswerScripted = errors.New("fake ui: no scripted answer left")

func (u *fakeUI) Show(ctx context.Context, s provisioning.Screen) error {
	u.transcript = append(u.transcript, s.Title+"\n"+strings.Join(s.Lines, "\n"))
	return nil
}

func (u *fakeUI) Ask(ctx context.Context, s provisioning.Screen, opts ...provisioning.Option) (string, error) {
	u.Show(ctx, s)
	if len(u.answers) == 0 {
		return "", errNoAnswerScripted
	}
	a := u.answers[0]
	u.answers = u.answers[1:]
	return a, nil
}

func (u *fakeUI) screens() string { return strings.Join(u.transcript, "\n---\n") }

type fakeReporter struct {
	mu       sync.Mutex
	statuses []provisioning.Status
	onReport func(provisioning.Status)
}

func (r *fakeReporter) Report(ctx context.Context, s provisioning.Status) {
	r.mu.Lock()
	r.statuses = append(r.statuses, s)
	hook := r.onReport
	r.mu.Unlock()
	if hook != nil {
		hook(s)
	}
}

type rig struct {
	store *provisioningtest.Store
	// downloads is the download record's store: like store, it outlives
	// each flow the rig builds, as the agent's file does a restart.
	downloads *provisioningtest.Store
	card      *fakeCard
	host      *fakeHost
	printer   *fakePrinter
	ui        *fakeUI
	reporter  *fakeReporter
}

func newRig(cards ...provisioning.Card) *rig {
	if len(cards) == 0 {
		cards = []provisioning.Card{card(nil)}
	}
	return &rig{store: &provisioningtest.Store{}, downloads: &provisioningtest.Store{}, card: &fakeCard{cards: cards}, host: newHost(), printer: &fakePrinter{},
		ui: &fakeUI{answers: []string{"confirm"}}, reporter: &fakeReporter{}}
}

// testAccounts checks account check values under the tests' key.
var testAccounts = provisioning.KeyedAccounts{Key: []byte(testSalt)}

func merchant() provisioning.Merchant {
	check, err := provisioning.AccountCheckValue(testAccounts.Key, pan.MustParse(goodPAN))
	if err != nil {
		panic(err)
	}
	return provisioning.Merchant{MID: testMID, Name: "上海示例便利店", LegalPerson: "ZHANG SAN",
		AccountCheck: check, CardType: provisioning.Debit}
}

type staticParams struct{ m provisioning.Merchant }

func (p staticParams) Parameters(ctx context.Context, t provisioning.Terminal) (provisioning.Merchant, error) {
	return p.m, nil
}

func (r *rig) flow() *provisioning.Flow {
	return &provisioning.Flow{
		Terminal: provisioning.Terminal{TID: testTID, MID: testMID, Serial: "PA-TEST-1"},
		Rules:    provisioning.BindingRules{Accounts: testAccounts},
		Amount:   1,
		Params:   staticParams{merchant()},
		Card:     r.card, Host: r.host, Printer: r.printer, UI: r.ui, Reporter: r.reporter, Store: r.store,
		Downloads: provisioning.DownloadFile{Store: r.downloads},
		Clock:     fixedClock{testNow},
	}
}

func mustPAN(s string) pan.PAN { return pan.MustParse(s) }

// cutAt is a context cancelled, a power cut, as soon as the flow reports
// step running; the test sets r.reporter.onReport to nil before the next
// boot.
func (r *rig) cutAt(step provisioning.Step) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.Background())
	r.reporter.onReport = func(s provisioning.Status) {
		if s.Step == step && s.State == provisioning.StateRunning {
			cancel()
		}
	}
	return ctx, cancel
}
