package provisioning_test

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/posagent/posagent/provisioning"
)

func steps(statuses []provisioning.Status, state string) []provisioning.Step {
	var out []provisioning.Step
	for _, s := range statuses {
		if s.State == state {
			out = append(out, s.Step)
		}
	}
	return out
}

func TestHappyPathEndsLive(t *testing.T) {
	r := newRig()
	cp, err := r.flow().Run(context.Background())
	if err != nil {
		t.Fatalf("Run = %v", err)
	}
	if cp.Step != provisioning.StepLive {
		t.Fatalf("ended at %s", cp.Step)
	}
	done := steps(r.reporter.statuses, provisioning.StateDone)
	want := provisioning.Steps[:len(provisioning.Steps)-1]
	if len(done) != len(want) {
		t.Fatalf("done steps = %v, want %v", done, want)
	}
	for i := range want {
		if done[i] != want[i] {
			t.Fatalf("done steps = %v, want %v", done, want)
		}
	}
	last := r.reporter.statuses[len(r.reporter.statuses)-1]
	if last.State != provisioning.StateLive || last.Step != provisioning.StepLive {
		t.Errorf("last report = %s/%s", last.Step, last.State)
	}
	if r.host.count("voided") != 1 || r.host.count("approved") != 0 {
		t.Errorf("host sales = %v, want one voided", r.host.sales)
	}
	sales, voids := r.printer.of("sale"), r.printer.of("void")
	if len(r.printer.receipts) != 2 || len(sales) != 1 || sales[0].Duplicate || len(voids) != 1 || voids[0].Duplicate {
		t.Fatalf("receipts = %+v, want the sale's and then the void's, originals", r.printer.receipts)
	}
	if got := sales[0].Txn.Masked; got != "622202*********0128" || sales[0].Txn.AID != "A000000333010101" {
		t.Errorf("slip card = %q", got)
	}
	if cp.Sale.RRN == "" || cp.Sale.AuthCode == "" || cp.Void == nil {
		t.Fatalf("checkpoint lacks sale/void results: %+v", cp)
	}
	// The void's slip is the void's record: its own STAN and RRN, the
	// sale's as the original, the paying card masked.
	if v := voids[0].Txn; !reflect.DeepEqual(v, *cp.Void) || v.STAN == cp.Sale.STAN || v.RRN == cp.Sale.RRN ||
		v.OrigSTAN != cp.Sale.STAN || v.OrigRRN != cp.Sale.RRN || v.Masked != "622202*********0128" || v.Amount != cp.Sale.Amount {
		t.Errorf("void slip txn = %+v, sale %+v", v, *cp.Sale)
	}
	if cp.VoidSlip == nil || !cp.VoidSlip.Printed || cp.VoidSlip.Attempts != 1 {
		t.Errorf("void slip record = %+v", cp.VoidSlip)
	}
	if strings.Contains(string(r.store.Data), goodPAN) {
		t.Errorf("checkpoint holds the full PAN:\n%s", r.store.Data)
	}
	// Run again: a live terminal stays live and repeats no side effect.
	if _, err := r.flow().Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(r.host.fullPANs) != 1 || len(r.printer.receipts) != 2 {
		t.Errorf("second run of a live terminal sold %d times, printed %d", len(r.host.fullPANs), len(r.printer.receipts))
	}
}

// Each binding rejection stops the flow with its own code, on the installer's
// screen and in the report to monitoring.
func TestBindingRejectionsReachScreenAndReport(t *testing.T) {
	cases := []struct {
		name string
		mut  func(*provisioning.Card)
		code string
	}{
		{"non-UnionPay", func(c *provisioning.Card) { c.AID = "A0000000031010" }, provisioning.RejectNotUnionPay},
		{"expired", func(c *provisioning.Card) { c.Expiry = "2312" }, provisioning.RejectExpired},
		{"name mismatch", func(c *provisioning.Card) { c.Name = "LI/SI" }, provisioning.RejectNameMismatch},
		{"other account", func(c *provisioning.Card) { c.PAN = mustPAN("6222029876543210128") }, provisioning.RejectOtherAccount},
		{"wrong card type", func(c *provisioning.Card) { c.AID = "A000000333010102" }, provisioning.RejectCardType},
		{"bad Luhn", func(c *provisioning.Card) { c.PAN = mustPAN("6222021234567890127") }, provisioning.RejectBadLuhn},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(card(tc.mut))
			r.ui.answers = []string{"abort"}
			cp, err := r.flow().Run(context.Background())
			if !errors.Is(err, provisioning.ErrAborted) {
				t.Fatalf("Run = %v, want ErrAborted", err)
			}
			if cp.Step != provisioning.StepNeedsAttention || cp.Failure == nil || cp.Failure.Code != tc.code {
				t.Fatalf("checkpoint = %s %+v, want needs-attention %s", cp.Step, cp.Failure, tc.code)
			}
			msg := cp.Failure.Message
			if msg == "" {
				t.Fatal("empty message")
			}
			if !strings.Contains(r.ui.screens(), msg) || !strings.Contains(r.ui.screens(), tc.code) {
				t.Errorf("screen lacks %s %q:\n%s", tc.code, msg, r.ui.screens())
			}
			var reported bool
			for _, s := range r.reporter.statuses {
				if s.State == provisioning.StateFailed && s.Error != nil && s.Error.Code == tc.code && s.Error.Message == msg && s.Step == provisioning.StepBindCard {
					reported = true
				}
			}
			if !reported {
				t.Errorf("no failed report with %s", tc.code)
			}
			if cp.Card != nil || len(r.host.fullPANs) != 0 {
				t.Error("a rejected card was bound or sold")
			}
		})
	}
}

func TestRetryWithAnotherCard(t *testing.T) {
	r := newRig(card(func(c *provisioning.Card) { c.AID = "A0000000031010" }), card(nil))
	r.ui.answers = []string{"retry", "confirm"}
	cp, err := r.flow().Run(context.Background())
	if err != nil || cp.Step != provisioning.StepLive {
		t.Fatalf("Run = %v at %s", err, cp.Step)
	}
	if cp.Card.Masked != "622202*********0128" {
		t.Errorf("bound %q", cp.Card.Masked)
	}
}

func TestInstallerCancelsCard(t *testing.T) {
	r := newRig()
	r.ui.answers = []string{"cancel", "abort"}
	cp, err := r.flow().Run(context.Background())
	if !errors.Is(err, provisioning.ErrAborted) || cp.Failure.Code != "E_NOT_CONFIRMED" {
		t.Fatalf("Run = %v, failure %+v", err, cp.Failure)
	}
}

// A sale whose answer is lost is reversed before anything else goes online,
// and the retried step sells once more: the host ends with nothing charged.
func TestLostSaleAnswerIsReversed(t *testing.T) {
	r := newRig()
	r.host.loseSale = true
	r.ui.answers = []string{"confirm", "retry"}
	cp, err := r.flow().Run(context.Background())
	if err != nil || cp.Step != provisioning.StepLive {
		t.Fatalf("Run = %v at %s", err, cp.Step)
	}
	if len(r.host.reversals) != 1 || r.host.reversals[0].Orig.Kind != "sale" || r.host.reversals[0].Reason != "98" {
		t.Fatalf("reversals = %+v", r.host.reversals)
	}
	if r.host.count("reversed") != 1 || r.host.count("voided") != 1 || r.host.count("approved") != 0 {
		t.Errorf("host sales = %v", r.host.sales)
	}
	if cp.InFlight != nil {
		t.Errorf("in-flight left: %+v", cp.InFlight)
	}
}

// A sale answer whose MAC fails is reversed with reason A0, not 98.
func TestBadResponseMACReversesWithA0(t *testing.T) {
	r := newRig()
	r.host.badMACSale = true
	r.ui.answers = []string{"confirm", "abort"}
	cp, err := r.flow().Run(context.Background())
	if !errors.Is(err, provisioning.ErrAborted) || cp.Failure.Code != "E_MAC" || cp.InFlight == nil || cp.InFlight.Reason != "A0" {
		t.Fatalf("Run = %v, failure %+v, in flight %+v", err, cp.Failure, cp.InFlight)
	}
	r.ui.answers = []string{"retry"}
	cp, err = r.flow().Run(context.Background())
	if err != nil || cp.Step != provisioning.StepLive {
		t.Fatalf("after retry: %v at %s", err, cp.Step)
	}
	if len(r.host.reversals) != 1 || r.host.reversals[0].Reason != "A0" {
		t.Errorf("reversals = %+v, want one with reason A0", r.host.reversals)
	}
	if r.host.count("reversed") != 1 || r.host.count("voided") != 1 || r.host.count("approved") != 0 {
		t.Errorf("host sales = %v", r.host.sales)
	}
}

func TestDeclinedSale(t *testing.T) {
	r := newRig()
	r.host.saleRC = "51"
	r.ui.answers = []string{"confirm", "abort"}
	cp, err := r.flow().Run(context.Background())
	if !errors.Is(err, provisioning.ErrAborted) || cp.Failure.Code != "E_DECLINED" || !strings.Contains(cp.Failure.Message, "51") {
		t.Fatalf("Run = %v, failure %+v", err, cp.Failure)
	}
	if cp.InFlight != nil {
		t.Error("a declined sale left a reversal pending")
	}
}

func TestPrinterFailureReprintsAsDuplicate(t *testing.T) {
	r := newRig()
	r.printer.fail = paperEnd{}
	r.ui.answers = []string{"confirm", "retry"}
	cp, err := r.flow().Run(context.Background())
	if err != nil || cp.Step != provisioning.StepLive {
		t.Fatalf("Run = %v at %s", err, cp.Step)
	}
	if len(r.host.fullPANs) != 1 {
		t.Errorf("the printer retry sold again: %d sales", len(r.host.fullPANs))
	}
	if sales, voids := r.printer.of("sale"), r.printer.of("void"); len(sales) != 1 || !sales[0].Duplicate || len(voids) != 1 || voids[0].Duplicate {
		t.Errorf("receipts = %+v, want the sale's marked duplicate, the void's not", r.printer.receipts)
	}
	if !strings.Contains(r.ui.screens(), "E_PAPER_END") || !strings.Contains(r.ui.screens(), "out of paper") {
		t.Errorf("the screen does not say what is wrong with the printer:\n%s", r.ui.screens())
	}
}

// A printer fault on the void's slip reprints that slip, marked duplicate;
// the sale's slip, printed before, is neither printed again nor marked.
func TestVoidSlipPrinterFailureReprintsAsDuplicate(t *testing.T) {
	r := newRig()
	r.printer.fail, r.printer.failKind = paperEnd{}, "void"
	r.ui.answers = []string{"confirm", "retry"}
	cp, err := r.flow().Run(context.Background())
	if err != nil || cp.Step != provisioning.StepLive {
		t.Fatalf("Run = %v at %s", err, cp.Step)
	}
	if r.host.count("voided") != 1 || len(r.host.fullPANs) != 1 {
		t.Errorf("the printer retry went to the host again: %v, %d sales", r.host.sales, len(r.host.fullPANs))
	}
	if sales, voids := r.printer.of("sale"), r.printer.of("void"); len(sales) != 1 || sales[0].Duplicate || len(voids) != 1 || !voids[0].Duplicate {
		t.Errorf("receipts = %+v, want the sale's original and the void's marked duplicate", r.printer.receipts)
	}
	if cp.VoidSlip == nil || cp.VoidSlip.Attempts != 2 || !cp.VoidSlip.Printed || cp.Slip.Attempts != 1 {
		t.Errorf("slip records: sale %+v, void %+v", cp.Slip, cp.VoidSlip)
	}
	if !strings.Contains(r.ui.screens(), "E_PAPER_END") {
		t.Errorf("the screen does not say what is wrong with the printer:\n%s", r.ui.screens())
	}
}

// Field 44 of each answer is kept on its record, so the slip and a reprint
// after a restart print the issuer and acquirer the host named; a host that
// sends none leaves them empty, and the slip leaves the lines out.
func TestSlipsCarryField44(t *testing.T) {
	for _, tc := range []struct{ issuer, acquirer string }{{"01040000", "48020000"}, {"", ""}} {
		r := newRig()
		r.host.issuer, r.host.acquirer = tc.issuer, tc.acquirer
		cp, err := r.flow().Run(context.Background())
		if err != nil || cp.Step != provisioning.StepLive {
			t.Fatalf("Run = %v at %s", err, cp.Step)
		}
		for _, txn := range []*provisioning.TxnRecord{cp.Sale, cp.Void} {
			if txn.Issuer != tc.issuer || txn.Acquirer != tc.acquirer {
				t.Errorf("record %+v, want issuer %q acquirer %q", *txn, tc.issuer, tc.acquirer)
			}
		}
		if len(r.printer.receipts) != 2 {
			t.Fatalf("%d receipts", len(r.printer.receipts))
		}
		for _, rc := range r.printer.receipts {
			if rc.Txn.Issuer != tc.issuer || rc.Txn.Acquirer != tc.acquirer {
				t.Errorf("%s receipt %+v", rc.Kind, rc.Txn)
			}
		}
		if stored, err := provisioning.Decode(r.store.Data); err != nil || !reflect.DeepEqual(*stored.Void, *cp.Void) {
			t.Errorf("stored void %+v (%v), want %+v", stored.Void, err, *cp.Void)
		}
	}
}

// paperEnd is a printer's coded condition, as drivers/printer returns it.
type paperEnd struct{}

func (paperEnd) Error() string       { return "printer: paper end: load paper" }
func (paperEnd) FailureCode() string { return "E_PAPER_END" }

func TestHostDownAtNetwork(t *testing.T) {
	r := newRig()
	r.host.down = true
	r.ui.answers = nil
	cp, err := r.flow().Run(context.Background())
	if err == nil || cp.Failure == nil || cp.Failure.Code != "E_NETWORK" || cp.Failure.Step != provisioning.StepNetwork {
		t.Fatalf("Run = %v, checkpoint %s %+v", err, cp.Step, cp.Failure)
	}
}

// Stopping inside every step and starting again on the same store ends live
// with exactly one sale, voided, and one slip.
func TestResumeFromEveryStep(t *testing.T) {
	for _, stop := range provisioning.Steps {
		t.Run(string(stop), func(t *testing.T) {
			r := newRig()
			ctx, cancel := r.cutAt(stop)
			defer cancel()
			cp, err := r.flow().Run(ctx)
			if !errors.Is(err, context.Canceled) && stop != provisioning.StepLive {
				t.Fatalf("first run = %v at %s", err, cp.Step)
			}
			r.reporter.onReport = nil
			r.ui.answers = []string{"confirm"}
			cp, err = r.flow().Run(context.Background())
			if err != nil || cp.Step != provisioning.StepLive {
				t.Fatalf("resumed run = %v at %s", err, cp.Step)
			}
			if len(r.host.fullPANs) != 1 || r.host.count("voided") != 1 || len(r.printer.of("sale")) != 1 || len(r.printer.of("void")) != 1 {
				t.Errorf("sales %d, voided %d, slips %d sale and %d void; want 1 each", len(r.host.fullPANs), r.host.count("voided"),
					len(r.printer.of("sale")), len(r.printer.of("void")))
			}
			if cp.Boot != 2 {
				t.Errorf("boot = %d, want 2", cp.Boot)
			}
		})
	}
}

func TestCorruptStateIsAnErrorNotANewTerminal(t *testing.T) {
	for name, data := range map[string]string{
		"empty":        "",
		"garbage":      "\x00\x01{",
		"truncated":    `{"schema":1,"step":"test-`,
		"newer schema": `{"schema":99,"step":"void"}`,
		"unknown step": `{"schema":1,"step":"refund"}`,
		"iota step":    `{"schema":1,"step":5}`,
		"no failure":   `{"schema":1,"step":"needs-attention"}`,
	} {
		t.Run(name, func(t *testing.T) {
			r := newRig()
			r.store.Data = []byte(data)
			_, err := r.flow().Run(context.Background())
			if !errors.Is(err, provisioning.ErrCorruptState) {
				t.Fatalf("Run = %v, want ErrCorruptState", err)
			}
			if r.store.Saves != 0 || len(r.reporter.statuses) != 0 || r.host.signOns != 0 {
				t.Error("a corrupt state file was acted on")
			}
		})
	}
}

func TestLoopBreaker(t *testing.T) {
	r := newRig()
	f := r.flow()
	f.MaxAttempts = 3
	// Three boots die inside sign-on; the fourth stops for the installer.
	for i := 0; i < 3; i++ {
		ctx, cancel := r.cutAt(provisioning.StepSignOn)
		defer cancel()
		_, err := f.Run(ctx)
		cancel()
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("boot %d: %v", i, err)
		}
	}
	r.reporter.onReport = nil
	r.ui.answers = []string{"abort"}
	cp, err := f.Run(context.Background())
	if !errors.Is(err, provisioning.ErrAborted) || cp.Failure == nil || cp.Failure.Code != "E_TOO_MANY_ATTEMPTS" || cp.Failure.Step != provisioning.StepSignOn {
		t.Fatalf("Run = %v, failure %+v", err, cp.Failure)
	}
	// The installer's retry starts the count again.
	r.ui.answers = []string{"retry", "confirm"}
	cp, err = f.Run(context.Background())
	if err != nil || cp.Step != provisioning.StepLive {
		t.Fatalf("after retry: %v at %s", err, cp.Step)
	}
}

func TestStoreFailureStopsBeforeTheStep(t *testing.T) {
	r := newRig()
	r.store.Fail = errors.New("disk full")
	_, err := r.flow().Run(context.Background())
	if err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("Run = %v", err)
	}
	if len(r.reporter.statuses) != 0 {
		t.Error("a step ran without its checkpoint")
	}
}

func TestCheckpointRoundTrip(t *testing.T) {
	r := newRig()
	if _, err := r.flow().Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	cp, err := provisioning.Decode(r.store.Data)
	if err != nil {
		t.Fatal(err)
	}
	b, err := cp.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != string(r.store.Data) {
		t.Errorf("re-encoded checkpoint differs:\n%s\n%s", b, r.store.Data)
	}
	if !strings.Contains(string(b), `"step": "live"`) {
		t.Errorf("step not stored as its name:\n%s", b)
	}
}

// TestTicketAmountDrivesTestSale: a merchant record that names a test-sale
// amount (central's ticket) overrides the configured one, for the sale, its
// void and the checkpoint; a record without one keeps Flow.Amount.
func TestTicketAmountDrivesTestSale(t *testing.T) {
	for _, tc := range []struct {
		ticket, want int64
	}{{0, 1}, {250, 250}} {
		r := newRig()
		if tc.ticket != 0 {
			// The installer confirms central's amount, then the card.
			r.ui.answers = []string{"confirm", "confirm"}
		}
		f := r.flow()
		f.MaxTestAmount = 300
		m := merchant()
		m.TestAmount = tc.ticket
		f.Params = staticParams{m}
		cp, err := f.Run(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if tc.ticket != 0 && !strings.Contains(r.ui.screens(), "RMB 2.50") {
			t.Errorf("the installer was not shown central's amount:\n%s", r.ui.screens())
		}
		if cp.Sale == nil || cp.Sale.Amount != tc.want || cp.Void == nil || cp.Void.Amount != tc.want {
			t.Errorf("ticket amount %d: sale %+v void %+v, want amount %d", tc.ticket, cp.Sale, cp.Void, tc.want)
		}
		if got := cp.SaleAmount(1); got != tc.want {
			t.Errorf("SaleAmount = %d, want %d", got, tc.want)
		}
	}
}

// A test-sale amount over the cap stops the parameters step, and one the
// installer does not confirm is not charged.
func TestTicketAmountCappedAndConfirmed(t *testing.T) {
	for _, tc := range []struct {
		name, answer, code string
		amount             int64
	}{
		{"over the cap", "", "E_TEST_AMOUNT", provisioning.DefaultMaxTestAmount + 1},
		{"not confirmed", "cancel", "E_AMOUNT_NOT_CONFIRMED", 50},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig()
			r.ui.answers = []string{tc.answer, "abort"}
			if tc.answer == "" {
				r.ui.answers = []string{"abort"}
			}
			f := r.flow()
			m := merchant()
			m.TestAmount = tc.amount
			f.Params = staticParams{m}
			cp, err := f.Run(context.Background())
			if !errors.Is(err, provisioning.ErrAborted) || cp.Failure == nil || cp.Failure.Code != tc.code {
				t.Fatalf("%v, failure %+v", err, cp.Failure)
			}
			if len(r.host.fullPANs) != 0 || cp.Merchant != nil {
				t.Fatal("a sale went out, or the record was kept")
			}
		})
	}
}

// The slip is the paying card's: number, application, label and expiry come
// from the card the test sale read, not from the bound settlement card.
func TestSlipIsThePayingCards(t *testing.T) {
	pay := card(func(c *provisioning.Card) {
		c.PAN, c.AID, c.Label, c.Expiry = mustPAN("6250941234567898"), "A000000333010102", "PBOC CREDIT", "2911"
	})
	r := newRig(card(nil), pay)
	r.card.byPurpose = map[string]provisioning.Card{provisioning.PurposeTestSale: pay, provisioning.PurposeVoid: pay}
	cp, err := r.flow().Run(context.Background())
	if err != nil || cp.Step != provisioning.StepLive {
		t.Fatalf("%v at %s", err, cp.Step)
	}
	got := r.printer.receipts[0].Txn
	if got.Masked != pay.PAN.Masked() || got.AID != pay.AID || got.Label != pay.Label || got.Expiry != pay.Expiry {
		t.Fatalf("slip's card %+v, want the paying card's", got)
	}
	if cp.Card.Masked == got.Masked {
		t.Fatal("the test does not tell the two cards apart")
	}
	if cp.Void.Masked != pay.PAN.Masked() || cp.Void.AID != pay.AID {
		t.Fatalf("void's card %+v", cp.Void)
	}
}
