package hostsim_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/posagent/posagent/agent/acquirer"
	"github.com/posagent/posagent/agent/sim/hostsim"
	"github.com/posagent/posagent/agent/sim/ledger"
	"github.com/posagent/posagent/provisioning"
	"github.com/posagent/posagent/provisioning/pan"
	"github.com/posagent/posagent/provisioning/provisioningtest"
)

// The install flow itself, on the real client and simulator: the fakes below
// stand in for the card reader, printer, screen, reporting and disk only.

type staticParams struct{ m provisioning.Merchant }

func (p staticParams) Parameters(context.Context, provisioning.Terminal) (provisioning.Merchant, error) {
	return p.m, nil
}

type cardReader struct{ c provisioning.Card }

func (r cardReader) ReadCard(context.Context, provisioning.CardRequest) (provisioning.Card, error) {
	return r.c, nil
}

func (r cardReader) Pay(context.Context, provisioning.CardRequest) (provisioning.Payment, error) {
	return provisioning.NoChip(r.c, nil), nil
}

type printer struct{}

func (printer) PrintReceipt(context.Context, provisioning.Receipt) error { return nil }

type reporter struct{}

func (reporter) Report(context.Context, provisioning.Status) {}

// installer confirms cards and retries failures; at the attentions listed in
// dieAt it returns an error instead, as a terminal losing power there would
// stop the flow.
type installer struct {
	attentions int
	dieAt      map[int]bool
}

func (*installer) Show(context.Context, provisioning.Screen) error { return nil }

func (i *installer) Ask(_ context.Context, _ provisioning.Screen, opts ...provisioning.Option) (string, error) {
	for _, o := range opts {
		if o.ID == "confirm" {
			return "confirm", nil
		}
	}
	i.attentions++
	if i.dieAt[i.attentions] {
		return "", errors.New("power cut")
	}
	return "retry", nil
}

// luhnCard is the test card with a correct check digit, as binding requires.
func luhnCard() provisioning.Card {
	c := card
	for d := 0; d < 10; d++ {
		p := pan.MustParse(fmt.Sprintf("622202123456789012%d", d))
		if p.LuhnValid() {
			c.PAN = p
		}
	}
	c.Name, c.Type = "ZHANG/SAN", provisioning.Debit
	return c
}

func (e *env) flow(t *testing.T, c provisioning.Card, st *provisioningtest.Store, ui *installer) *provisioning.Flow {
	t.Helper()
	f, err := newFlow(c, e.c, st, ui)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// newFlow is the install flow on host h with the fakes of this file.
func newFlow(c provisioning.Card, h provisioning.Host, st provisioning.Store, ui provisioning.Prompter) (*provisioning.Flow, error) {
	accounts := provisioning.KeyedAccounts{Key: []byte("hostsim flow test key")}
	check, err := provisioning.AccountCheckValue(accounts.Key, c.PAN)
	if err != nil {
		return nil, err
	}
	m := provisioning.Merchant{MID: mid, Name: "TEST SHOP", LegalPerson: "ZHANG SAN", AccountCheck: check,
		CardType: provisioning.Debit}
	return &provisioning.Flow{Terminal: terminal, Amount: 1, Params: staticParams{m}, Card: cardReader{c},
		Rules: provisioning.BindingRules{Accounts: accounts},
		Host:  h, Printer: printer{}, UI: ui, Reporter: reporter{}, Store: st, Clock: provisioning.SystemClock{},
		Log: quiet, MaxAttempts: 10}, nil
}

// ledgerTotals runs checkLedger and also matches the flow's own record.
func assertFlowLedger(t *testing.T, e *env, cp provisioning.Checkpoint, wantReversed int) {
	t.Helper()
	if cp.Step != provisioning.StepLive || cp.Sale == nil || cp.Void == nil || cp.InFlight != nil {
		t.Fatalf("checkpoint %+v", cp)
	}
	v, r := checkLedger(t, e.path)
	if v != 1 || r != wantReversed {
		t.Fatalf("ledger: voided %d, reversed %d; want 1 and %d", v, r, wantReversed)
	}
	if len(cp.Reversed) < wantReversed {
		t.Fatalf("flow noted %d reversals, host %d", len(cp.Reversed), wantReversed)
	}
}

func TestFlowAgainstSimulator(t *testing.T) {
	type step struct {
		kind string
		a    hostsim.Action
	}
	cases := []step{{}}
	for _, k := range []string{hostsim.KindSale, hostsim.KindVoid} {
		for _, a := range hostsim.Actions {
			cases = append(cases, step{k, a})
		}
	}
	for _, tc := range cases {
		t.Run(tc.kind+"/"+string(tc.a), func(t *testing.T) {
			e := newEnv(t, nil, shortTimeout)
			if tc.a != "" {
				e.srv.Inject(tc.kind, fault(tc.a))
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cp, err := e.flow(t, luhnCard(), &provisioningtest.Store{}, &installer{}).Run(ctx)
			if err != nil {
				t.Fatal(err)
			}
			want := 0
			if tc.kind == hostsim.KindSale && faultOutcome[tc.a] != nil {
				want = 1 // the unanswered sale; its retry is voided
			}
			assertFlowLedger(t, e, cp, want)
		})
	}
}

// TestFlowRestartWithSaleInFlight: the terminal loses power while a sale the
// host approved is unanswered. The restarted agent (new client on the same
// key store, same checkpoint) reverses it before anything else: one reversal,
// one voided sale.
func TestFlowRestartWithSaleInFlight(t *testing.T) {
	e := newEnv(t, nil, shortTimeout)
	e.srv.Inject(hostsim.KindSale, hostsim.Fault{Action: hostsim.NoAnswer})
	st := &provisioningtest.Store{}
	c := luhnCard()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cp, err := e.flow(t, c, st, &installer{dieAt: map[int]bool{1: true}}).Run(ctx)
	if err == nil || cp.InFlight == nil || cp.InFlight.Kind != "sale" {
		t.Fatalf("first run: %v, %+v", err, cp.InFlight)
	}
	// The host approved the sale the terminal never heard about.
	if es := ledger.Money(e.ledger.Entries()); len(es) != 1 || es[0].Event != ledger.EventApproved || es[0].Kind != ledger.KindSale {
		t.Fatalf("ledger before the restart: %+v", es)
	}
	// The reversal image on disk holds the PAN sealed by the client, never
	// its digits.
	noPAN(t, st.Bytes(), c.PAN.Reveal())
	if len(cp.InFlight.SealedPAN) == 0 {
		t.Fatal("the in-flight record kept no sealed PAN: the reversal cannot carry field 2")
	}
	rec := &recorder{}
	e.ccfg.Dial = rec.dial
	e.restartClient()
	cp, err = e.flow(t, c, st, &installer{}).Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	assertFlowLedger(t, e, cp, 1)
	// The restarted terminal's first message is the 0400, with the sale's PAN.
	reqs := rec.requests(t)
	if len(reqs) == 0 {
		t.Fatal("nothing sent after the restart")
	}
	if mti, _ := reqs[0].GetMTI(); mti != "0400" || acquirer.Get(reqs[0], 2) != c.PAN.Reveal() ||
		acquirer.Get(reqs[0], 11) != fmt.Sprintf("%06d", cp.Reversed[0].STAN) {
		t.Fatalf("first message after the restart: %s, field 2 %s, STAN %s", mti, pan.Mask(acquirer.Get(reqs[0], 2)), acquirer.Get(reqs[0], 11))
	}
	noPAN(t, st.Bytes(), c.PAN.Reveal())
}

// noPAN fails when data holds the PAN's digits, whole or its middle part.
func noPAN(t *testing.T, data []byte, p string) {
	t.Helper()
	for _, needle := range []string{p, p[6 : len(p)-4]} {
		if bytes.Contains(data, []byte(needle)) {
			t.Fatalf("checkpoint holds PAN digits:\n%s", data)
		}
	}
}

// A host that nets a voided sale out, against a terminal that counts gross,
// is unbalanced: the terminal uploads the batch, each record with the
// sale's card number opened from its seal, and ends the upload (202); the
// host matches every record to its own book. The seal is dropped once the
// batch is closed, and no full PAN is ever at rest.
func TestUnbalancedSettlementUploadsTheBatch(t *testing.T) {
	e := newEnv(t, func(c *hostsim.Config) { c.Netting = hostsim.NettingNet }, nil)
	st := &provisioningtest.Store{}
	// A swiped card: a chip sale goes up as its TC, which the terminal does
	// not keep (TestUnbalancedChipBatchIsRefused).
	c := swiped(provisioning.EntrySwipe)
	c.Name, c.Type = "ZHANG/SAN", provisioning.Debit
	ui := &retrier{max: 2}
	f, err := newFlow(c, e.c, st, ui)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cp, err := f.Run(ctx)
	if err != nil || cp.Step != provisioning.StepLive {
		t.Fatalf("%v at %s (failures %v: %q)", err, cp.Step, ui.codes, ui.causes)
	}
	if s := cp.Settlement; s == nil || s.Balanced || s.Uploaded != 2 || !s.UploadEnded {
		t.Fatalf("settlement %+v", cp.Settlement)
	}
	if len(cp.Sale.SealedPAN) != 0 {
		t.Error("the sale's sealed PAN outlived the settled batch")
	}
	noPAN(t, st.Bytes(), c.PAN.Reveal())
	var closed []ledger.Entry
	for _, en := range e.ledger.Entries() {
		if en.Event == ledger.EventBatchClosed {
			closed = append(closed, en)
		}
	}
	if len(closed) != 1 || closed[0].Code != "202" || closed[0].Settlement == nil ||
		closed[0].Settlement.Received != 2 || closed[0].Settlement.Unmatched != 0 || closed[0].Settlement.Uploaded != 2 {
		t.Fatalf("batch closed %+v", closed)
	}
	if s := closed[0].Settlement; s.Balanced || s.Netting != hostsim.NettingNet {
		t.Errorf("settlement %+v, want the net host's unbalanced one", s)
	}
}

// The same unbalanced batch after a chip sale: its upload would be the TC
// with field 55, which the terminal does not keep, so the step stops with
// E_BATCH_UPLOAD before anything is sent, and the batch stays open at the
// host.
func TestUnbalancedChipBatchIsRefused(t *testing.T) {
	e := newEnv(t, func(c *hostsim.Config) { c.Netting = hostsim.NettingNet }, nil)
	ui := &retrier{max: 1}
	cp, err := runFlow(t, e, &provisioningtest.Store{}, ui, nil)
	if err == nil || cp.Failure == nil || cp.Failure.Step != provisioning.StepSettle || cp.Failure.Code != "E_BATCH_UPLOAD" {
		t.Fatalf("%v at %s, failure %+v", err, cp.Step, cp.Failure)
	}
	for _, en := range e.ledger.Entries() {
		if en.Event == ledger.EventBatchClosed {
			t.Fatalf("the host closed the batch: %+v", en)
		}
	}
}
