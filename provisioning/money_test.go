package provisioning_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/posagent/posagent/provisioning"
)

// The money rule on the flow's fakes: which answers to a sale let the flow
// forget it, and which leave it to be reversed.

func answer(rc string, in provisioning.Integrity) func(provisioning.HostResponse, error) (provisioning.HostResponse, error) {
	once := false
	return func(r provisioning.HostResponse, err error) (provisioning.HostResponse, error) {
		if once || err != nil {
			return r, err
		}
		once = true
		r.RC, r.Integrity = rc, in
		return r, nil
	}
}

func TestMoneyRuleOnSaleAnswers(t *testing.T) {
	const (
		none      = provisioning.IntegrityNone
		forgeable = provisioning.IntegrityForgeable
		authentic = provisioning.IntegrityAuthentic
	)
	for _, tc := range []struct {
		name      string
		rc        string
		integrity provisioning.Integrity
		// reversal is the reason the approved sale is reversed with before
		// the retry; "" = the answer was believed.
		reversal string
		// code is the failure the installer sees; "" = none (an approval).
		code string
	}{
		{"approved", "00", authentic, "", ""},
		{"approved with defect A4", "A4", authentic, "", ""},
		{"approved with defect A2", "A2", forgeable, "", ""},
		{"partial approval 10", "10", authentic, "", ""},
		{"unMACed decline", "05", none, "A0", "E_MAC"},
		{"unMACed approval", "00", none, "A0", "E_MAC"},
		{"decline under a forgeable MAC", "05", forgeable, "06", "E_DECLINED"},
		{"unknown outcome 96", "96", authentic, "06", "E_HOST_ANSWER"},
		{"duplicate 94", "94", authentic, "06", "E_HOST_ANSWER"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig()
			r.host.saleAnswer = answer(tc.rc, tc.integrity)
			r.ui.answers = []string{"confirm", "retry"}
			cp, err := r.flow().Run(context.Background())
			if err != nil || cp.Step != provisioning.StepLive {
				t.Fatalf("%v at %s", err, cp.Step)
			}
			var reasons []string
			for _, rv := range r.host.reversals {
				reasons = append(reasons, rv.Reason)
			}
			switch {
			case tc.reversal == "" && len(reasons) != 0:
				t.Fatalf("a believed answer was reversed: %v", reasons)
			case tc.reversal != "" && (len(reasons) != 1 || reasons[0] != tc.reversal):
				t.Fatalf("reversals %v, want one with reason %s", reasons, tc.reversal)
			}
			// Every sale the host approved ends voided or reversed: never
			// one charged next to the retried one.
			if r.host.count("approved") != 0 || r.host.count("voided") != 1 {
				t.Fatalf("host sales %v", r.host.sales)
			}
			failed := ""
			for _, s := range r.reporter.statuses {
				if s.State == provisioning.StateFailed {
					failed = s.Error.Code
				}
			}
			if failed != tc.code {
				t.Fatalf("failure %q, want %q", failed, tc.code)
			}
		})
	}
}

// A final decline the host authenticated is believed: nothing to reverse.
func TestAuthenticDeclineIsFinal(t *testing.T) {
	r := newRig()
	r.host.saleRC = "51"
	r.ui.answers = []string{"confirm", "abort"}
	cp, err := r.flow().Run(context.Background())
	if !errors.Is(err, provisioning.ErrAborted) || cp.Failure.Code != "E_DECLINED" || cp.InFlight != nil || len(r.host.reversals) != 0 {
		t.Fatalf("%v %+v in flight %+v, %d reversals", err, cp.Failure, cp.InFlight, len(r.host.reversals))
	}
}

// The answer was for another message (the Host says ErrMismatch): the sale
// is reversed with reason 96.
func TestMismatchedAnswerReversed(t *testing.T) {
	r := newRig()
	first := true
	r.host.saleAnswer = func(resp provisioning.HostResponse, err error) (provisioning.HostResponse, error) {
		if first {
			first = false
			return provisioning.HostResponse{}, fmt.Errorf("fake link: %w", provisioning.ErrMismatch)
		}
		return resp, err
	}
	r.ui.answers = []string{"confirm", "retry"}
	cp, err := r.flow().Run(context.Background())
	if err != nil || cp.Step != provisioning.StepLive || len(r.host.reversals) != 1 || r.host.reversals[0].Reason != "96" {
		t.Fatalf("%v at %s, reversals %+v", err, cp.Step, r.host.reversals)
	}
}

// A sale that never left the terminal needs no reversal; a reversal that
// never left does not use up a try.
func TestNotSentCostsNothing(t *testing.T) {
	r := newRig()
	r.host.loseSale = true
	refusals := 5
	r.host.reversalAnswer = func(resp provisioning.HostResponse, err error) (provisioning.HostResponse, error) {
		if refusals > 0 {
			refusals--
			return provisioning.HostResponse{}, fmt.Errorf("link down: %w", provisioning.ErrNotSent)
		}
		return resp, err
	}
	r.ui.answers = []string{"confirm", "retry", "retry", "retry", "retry", "retry", "retry"}
	cp, err := r.flow().Run(context.Background())
	if err != nil || cp.Step != provisioning.StepLive {
		t.Fatalf("%v at %s (failure %+v)", err, cp.Step, cp.Failure)
	}
	if r.host.count("reversed") != 1 || len(cp.Unreversed) != 0 {
		t.Fatalf("host %v, unreversed %+v", r.host.sales, cp.Unreversed)
	}

	r = newRig()
	downs := 1
	r.host.saleAnswer = func(resp provisioning.HostResponse, err error) (provisioning.HostResponse, error) {
		if downs > 0 {
			downs--
			return provisioning.HostResponse{}, fmt.Errorf("link down: %w", provisioning.ErrNotSent)
		}
		return resp, err
	}
	r.ui.answers = []string{"confirm", "retry"}
	cp, err = r.flow().Run(context.Background())
	if err != nil || cp.Step != provisioning.StepLive || len(r.host.reversals) != 0 {
		t.Fatalf("%v at %s, %d reversals", err, cp.Step, len(r.host.reversals))
	}
}

// An answer that failed its MAC means the keys may be out of step with the
// host's: the flow signs on again before the reversal it MACs.
func TestStaleKeysSignOnAgain(t *testing.T) {
	r := newRig()
	r.host.badMACSale = true
	r.ui.answers = []string{"confirm", "retry"}
	cp, err := r.flow().Run(context.Background())
	if err != nil || cp.Step != provisioning.StepLive {
		t.Fatalf("%v at %s", err, cp.Step)
	}
	// The third sign-on is the one for business, after settlement.
	if r.host.signOns != 3 || cp.KeysStale {
		t.Fatalf("%d sign-ons, keys stale %v; want the sign-on again before the reversal", r.host.signOns, cp.KeysStale)
	}
	var order []string
	for _, m := range r.host.sent {
		if m.kind == "sign-on" || m.kind == "sale" || m.kind == "void" {
			order = append(order, m.kind)
		}
	}
	if fmt.Sprint(order) != "[sign-on sale sign-on sale void sign-on]" {
		t.Fatalf("host saw %v", order)
	}
}

// A reversal answered 25 without a verified MAC is sent again; with one, it
// is final.
func TestReversalAnswerMustBeMACed(t *testing.T) {
	r := newRig()
	r.host.loseSale = true
	forged := 1
	r.host.reversalAnswer = func(resp provisioning.HostResponse, err error) (provisioning.HostResponse, error) {
		if forged > 0 {
			forged--
			return provisioning.HostResponse{RC: "25"}, nil // unMACed: anyone's
		}
		return resp, err
	}
	r.ui.answers = []string{"confirm", "retry", "retry"}
	cp, err := r.flow().Run(context.Background())
	if err != nil || cp.Step != provisioning.StepLive {
		t.Fatalf("%v at %s", err, cp.Step)
	}
	if len(r.host.reversals) != 2 || r.host.count("reversed") != 1 {
		t.Fatalf("%d reversals, host %v", len(r.host.reversals), r.host.sales)
	}
}

// Under a MAC anyone can forge on an open link, a 25 to a reversal is not
// believed (it would clear a charge the host may hold); a 00 is, and over
// an authentic link a 25 is too.
func TestForgeable25ToReversalIsSentAgain(t *testing.T) {
	for _, tc := range []struct {
		name      string
		integrity provisioning.Integrity
		sends     int
	}{{"forgeable", provisioning.IntegrityForgeable, 2}, {"authentic", provisioning.IntegrityAuthentic, 1}} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig()
			r.host.loseSale = true
			forged := 1
			r.host.reversalAnswer = func(resp provisioning.HostResponse, err error) (provisioning.HostResponse, error) {
				if forged > 0 {
					forged--
					return provisioning.HostResponse{RC: "25", Integrity: tc.integrity}, nil
				}
				return resp, err
			}
			r.ui.answers = []string{"confirm", "retry", "retry"}
			_, _ = r.flow().Run(context.Background())
			if len(r.host.reversals) < tc.sends {
				t.Fatalf("%d reversals, want at least %d", len(r.host.reversals), tc.sends)
			}
			if tc.sends == 2 && r.host.count("reversed") != 1 {
				t.Fatalf("host %v: the charged sale was left after a forgeable 25", r.host.sales)
			}
			if tc.sends == 1 && len(r.host.reversals) != 1 {
				t.Fatalf("%d reversals after an authentic 25", len(r.host.reversals))
			}
		})
	}
}

// While a message is in flight every report names it; once settled, none.
func TestUnresolvedInEveryReport(t *testing.T) {
	r := newRig()
	r.host.loseSale = true
	r.ui.answers = []string{"confirm", "retry"}
	if _, err := r.flow().Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	saw := false
	for _, s := range r.reporter.statuses {
		if s.Step == provisioning.StepTestSale && s.State == provisioning.StateFailed {
			saw = true
			if len(s.Unresolved) != 1 || s.Unresolved[0].State != "reversing" || s.Unresolved[0].Masked != "622202*********0128" {
				t.Fatalf("failure report's unresolved %+v", s.Unresolved)
			}
		}
	}
	if last := r.reporter.statuses[len(r.reporter.statuses)-1]; !saw || len(last.Unresolved) != 0 {
		t.Fatalf("saw failure %v; live report's unresolved %+v", saw, last.Unresolved)
	}
}

// The void answered 94 (the host says the sale is voided already) or 25
// (no such sale): voiding again would get the same answer for ever. The
// flow reverses the sale itself (matched by STAN) and sells again; the
// void's image is dropped, not reversed, which would charge the card again.
func TestVoidTheHostCannotMatch(t *testing.T) {
	for _, rc := range []string{"94", "25"} {
		t.Run(rc, func(t *testing.T) {
			r := newRig()
			r.host.voidAnswer = answer(rc, provisioning.IntegrityAuthentic)
			r.ui.answers = []string{"confirm", "retry"}
			cp, err := r.flow().Run(context.Background())
			if err != nil || cp.Step != provisioning.StepLive {
				t.Fatalf("%v at %s (failure %+v)", err, cp.Step, cp.Failure)
			}
			if len(cp.Undone) != 1 || len(r.host.reversals) != 1 || r.host.reversals[0].Orig.Kind != "sale" {
				t.Fatalf("undone %+v, reversals %+v", cp.Undone, r.host.reversals)
			}
			// The fake host booked the first void before its answer was
			// rewritten: that sale stays voided (its reversal found nothing
			// to undo), and the second sale is voided too.
			if r.host.count("voided") != 2 || r.host.count("approved") != 0 || r.host.count("reversed") != 0 {
				t.Fatalf("host sales %v", r.host.sales)
			}
			failed := false
			for _, s := range r.reporter.statuses {
				failed = failed || s.Error != nil && s.Error.Code == "E_VOID_UNMATCHED" && s.Error.Step == provisioning.StepTestSale
			}
			if !failed {
				t.Fatal("no E_VOID_UNMATCHED failure at the test sale")
			}
		})
	}
}

func TestIdentityFrozen(t *testing.T) {
	other := provisioning.Terminal{TID: "10000002", MID: testMID, Serial: "PA-TEST-1"}
	t.Run("adopted before anything went online", func(t *testing.T) {
		r := newRig()
		ctx, cancel := r.cutAt(provisioning.StepParameters)
		defer cancel()
		_, _ = r.flow().Run(ctx)
		r.reporter.onReport = nil
		f := r.flow()
		f.Terminal = other
		cp, err := f.Run(context.Background())
		if err != nil || cp.Step != provisioning.StepLive || cp.Terminal.TID != other.TID {
			t.Fatalf("%v at %s as %+v", err, cp.Step, cp.Terminal)
		}
	})
	t.Run("refused once online, and lifted when put back", func(t *testing.T) {
		r := newRig()
		r.host.loseSale = true
		r.ui.answers = []string{"confirm"}
		_, _ = r.flow().Run(context.Background())
		reversals := len(r.host.reversals)
		f := r.flow()
		f.Terminal = other
		r.ui.answers = []string{"retry"}
		cp, err := f.Run(context.Background())
		if !errors.Is(err, provisioning.ErrAborted) || cp.Failure == nil || cp.Failure.Code != "E_IDENTITY_CHANGED" ||
			len(r.host.reversals) != reversals {
			t.Fatalf("%v, failure %+v, %d reversals", err, cp.Failure, len(r.host.reversals))
		}
		// Reset refused: the sale is in flight.
		r.ui.answers = []string{"clear", "abort"}
		f = r.flow()
		f.Terminal = other
		if cp, err = f.Run(context.Background()); !errors.Is(err, provisioning.ErrAborted) || cp.InFlight == nil {
			t.Fatalf("reset with a sale in flight: %v, in flight %+v", err, cp.InFlight)
		}
		r.ui.answers = []string{"retry"}
		cp, err = r.flow().Run(context.Background())
		if err != nil || cp.Step != provisioning.StepLive || r.host.count("reversed") != 1 {
			t.Fatalf("identity restored: %v at %s, host %v", err, cp.Step, r.host.sales)
		}
	})
	t.Run("reset when nothing is charged", func(t *testing.T) {
		r := newRig()
		ctx, cancel := r.cutAt(provisioning.StepBindCard)
		defer cancel()
		_, _ = r.flow().Run(ctx)
		r.reporter.onReport = nil
		f := r.flow()
		f.Terminal = other
		r.ui.answers = []string{"clear"}
		cp, err := f.Run(context.Background())
		if !errors.Is(err, provisioning.ErrReset) || cp.Step != provisioning.StepSelftest || cp.Terminal.TID != other.TID || cp.Merchant != nil {
			t.Fatalf("%v at %s as %+v", err, cp.Step, cp.Terminal)
		}
		last := r.reporter.statuses[len(r.reporter.statuses)-1]
		if last.State != provisioning.StateReset || last.TID != testTID {
			t.Fatalf("last report %s for %s, want reset of %s", last.State, last.TID, testTID)
		}
		r.ui.answers = []string{"confirm"}
		cp, err = f.Run(context.Background())
		if err != nil || cp.Step != provisioning.StepLive || cp.Terminal.TID != other.TID {
			t.Fatalf("after the reset: %v at %s", err, cp.Step)
		}
	})
}

// cutStore is the disk through a power cut: once cut says so of a saved
// checkpoint, nothing saved after it reaches the disk (and power, a
// context, is gone).
type cutStore struct {
	provisioning.Store
	cut    func(provisioning.Checkpoint) bool
	power  context.CancelFunc
	isDown bool
}

func (s *cutStore) Save(b []byte) error {
	if s.isDown {
		return nil // lost with the power
	}
	if err := s.Store.Save(b); err != nil {
		return err
	}
	if cp, err := provisioning.Decode(b); err == nil && s.cut(cp) {
		s.isDown = true
		s.power()
	}
	return nil
}

// A power cut inside each of the test sale's and the void's sub-states,
// then a restart: the route decides where to go on, and the host and the
// paper show one sale, one void, one sale slip and one void slip every time,
// a slip marked duplicate exactly when an attempt at it may have printed.
func TestResumeInsideTheTestSale(t *testing.T) {
	for _, tc := range []struct {
		name string
		cut  func(provisioning.Checkpoint) bool
		// resumed is the step the restart runs first.
		resumed provisioning.Step
		// dup is the kind of the slip that must come out marked duplicate.
		dup string
	}{
		{"reversal image saved, nothing sent", func(cp provisioning.Checkpoint) bool { return cp.InFlight != nil && cp.Sale == nil },
			provisioning.StepReverse, ""},
		{"sale on record", func(cp provisioning.Checkpoint) bool { return cp.Sale != nil && cp.Slip == nil },
			provisioning.StepPrintSlip, ""},
		{"slip attempted", func(cp provisioning.Checkpoint) bool {
			return cp.Slip != nil && cp.Slip.Attempts == 1 && !cp.Slip.Printed
		},
			provisioning.StepPrintSlip, "sale"},
		{"slip printed", func(cp provisioning.Checkpoint) bool {
			return cp.Slip != nil && cp.Slip.Printed && cp.Step == provisioning.StepPrintSlip
		},
			provisioning.StepVoid, ""},
		{"void on record", func(cp provisioning.Checkpoint) bool { return cp.Void != nil && cp.Step == provisioning.StepVoid },
			provisioning.StepPrintVoidSlip, ""},
		{"void slip attempted", func(cp provisioning.Checkpoint) bool {
			return cp.VoidSlip != nil && cp.VoidSlip.Attempts == 1 && !cp.VoidSlip.Printed
		},
			provisioning.StepPrintVoidSlip, "void"},
		{"void slip printed", func(cp provisioning.Checkpoint) bool {
			return cp.VoidSlip != nil && cp.VoidSlip.Printed && cp.Step == provisioning.StepPrintVoidSlip
		},
			provisioning.StepSettle, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig()
			ctx, cancel := context.WithCancel(context.Background())
			f := r.flow()
			disk := &cutStore{Store: r.store, cut: tc.cut, power: cancel}
			f.Store = disk
			// The power goes as the cut is saved: the host and the printer
			// hear nothing more.
			f.Host, f.Printer = cutHost{r.host, ctx}, cutPrinter{r.printer, ctx}
			if _, err := f.Run(ctx); !errors.Is(err, context.Canceled) || !disk.isDown {
				t.Fatalf("first run: %v, cut %v", err, disk.isDown)
			}
			var entered []provisioning.Step
			g := r.flow()
			g.OnEnter = func(_ context.Context, s provisioning.Step) { entered = append(entered, s) }
			cp, err := g.Run(context.Background())
			if err != nil || cp.Step != provisioning.StepLive {
				t.Fatalf("after the restart: %v at %s", err, cp.Step)
			}
			if len(entered) == 0 || entered[0] != tc.resumed {
				t.Fatalf("the restart entered %v first, want %s", entered, tc.resumed)
			}
			if n := len(r.host.fullPANs); n != 1 {
				t.Errorf("%d sales reached the host, want 1", n)
			}
			if r.host.count("voided") != 1 || r.host.count("approved") != 0 {
				t.Errorf("host sales %v, want one voided", r.host.sales)
			}
			for _, kind := range []string{"sale", "void"} {
				slips := r.printer.of(kind)
				if len(slips) != 1 {
					t.Errorf("%d %s slips printed, want 1", len(slips), kind)
					continue
				}
				if slips[0].Duplicate != (kind == tc.dup) {
					t.Errorf("%s slip marked duplicate: %v", kind, slips[0].Duplicate)
				}
			}
			if len(r.printer.receipts) != 2 || r.printer.receipts[1].Kind != "void" {
				t.Errorf("receipts %+v, want the sale's slip then the void's", r.printer.receipts)
			}
		})
	}
}

// cutPrinter prints nothing once the power is gone.
type cutPrinter struct {
	*fakePrinter
	power context.Context
}

func (p cutPrinter) PrintReceipt(ctx context.Context, r provisioning.Receipt) error {
	if p.power.Err() != nil {
		return p.power.Err()
	}
	return p.fakePrinter.PrintReceipt(ctx, r)
}

// cutHost is the host as a powered-down terminal sees it: nothing is sent
// once ctx (the power) is gone.
type cutHost struct {
	*fakeHost
	power context.Context
}

func (h cutHost) Sale(ctx context.Context, r provisioning.SaleRequest) (provisioning.HostResponse, error) {
	if h.power.Err() != nil {
		return provisioning.HostResponse{}, fmt.Errorf("%w: power cut", provisioning.ErrNotSent)
	}
	return h.fakeHost.Sale(ctx, r)
}

func (h cutHost) Void(ctx context.Context, r provisioning.VoidRequest) (provisioning.HostResponse, error) {
	if h.power.Err() != nil {
		return provisioning.HostResponse{}, fmt.Errorf("%w: power cut", provisioning.ErrNotSent)
	}
	return h.fakeHost.Void(ctx, r)
}
