package provisioning_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/posagent/posagent/provisioning"
	"github.com/posagent/posagent/provisioning/pan"
)

// fakeSealer stands for the acquirer's key: sealed PANs are random tokens,
// opened through a table that lives outside the checkpoint, as the real key
// lives in the key store.
type fakeSealer struct {
	mu     sync.Mutex
	tokens map[string]pan.PAN
	fail   error
}

var _ provisioning.PANSealer = (*fakeSealer)(nil)

func (s *fakeSealer) SealPAN(p pan.PAN, ad []byte) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return nil, s.fail
	}
	tok := make([]byte, 24)
	_, _ = rand.Read(tok)
	if s.tokens == nil {
		s.tokens = map[string]pan.PAN{}
	}
	s.tokens[hex.EncodeToString(tok)+"|"+string(ad)] = p
	return tok, nil
}

func (s *fakeSealer) OpenPAN(b, ad []byte) (pan.PAN, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.tokens[hex.EncodeToString(b)+"|"+string(ad)]
	if !ok {
		return pan.PAN{}, errors.New("fake sealer: unknown token")
	}
	return p, nil
}

// noPANDigits fails when the checkpoint holds the PAN, or any run of its
// middle digits, in any form a JSON encoder could produce.
func noPANDigits(t *testing.T, data []byte) {
	t.Helper()
	for _, needle := range []string{goodPAN, goodPAN[6 : len(goodPAN)-4]} {
		if bytes.Contains(data, []byte(needle)) {
			t.Fatalf("checkpoint holds PAN digits %q:\n%s", needle, data)
		}
	}
}

// TestInFlightPANSealedAcrossRestart: the sale's answer is lost and the
// terminal restarts. The checkpoint written before the sale holds the PAN
// only sealed, and the reversal sent after the restart carries the sale's
// PAN (the acquirer puts it in field 2).
func TestInFlightPANSealedAcrossRestart(t *testing.T) {
	r := newRig()
	sealer := &fakeSealer{}
	r.host.loseSale = true
	r.ui.answers = []string{"confirm"} // then no answer: the terminal is switched off at needs-attention
	f := r.flow()
	f.Sealer = sealer
	cp, err := f.Run(context.Background())
	if !errors.Is(err, errNoAnswerScripted) || cp.InFlight == nil {
		t.Fatalf("first run: %v, in flight %+v", err, cp.InFlight)
	}
	stored := r.store.Bytes()
	noPANDigits(t, stored)
	saved, err := provisioning.Decode(stored)
	if err != nil {
		t.Fatal(err)
	}
	if len(saved.InFlight.SealedPAN) == 0 || saved.InFlight.Masked != "622202*********0128" || saved.InFlight.Attempts != 0 {
		t.Fatalf("stored in-flight record %+v", saved.InFlight)
	}

	// Restart: a new flow on the same store and key.
	r.ui.answers = []string{"retry"}
	f = r.flow()
	f.Sealer = sealer
	cp, err = f.Run(context.Background())
	if err != nil || cp.Step != provisioning.StepLive {
		t.Fatalf("after restart: %v at %s", err, cp.Step)
	}
	if len(r.host.reversals) != 1 || r.host.reversals[0].PAN.Reveal() != goodPAN || r.host.reversals[0].Orig.STAN != saved.InFlight.STAN {
		t.Fatalf("reversals %+v", r.host.reversals)
	}
	noPANDigits(t, r.store.Bytes())
}

// TestHostIsTheSealer: a Host that can seal is used when Flow.Sealer is nil.
func TestHostIsTheSealer(t *testing.T) {
	r := newRig()
	r.host.loseSale = true
	r.ui.answers = []string{"confirm", "retry"}
	h := &sealingHost{fakeHost: r.host}
	f := r.flow()
	f.Host = h
	if cp, err := f.Run(context.Background()); err != nil || cp.Step != provisioning.StepLive {
		t.Fatalf("%v at %s", err, cp.Step)
	}
	if len(r.host.reversals) != 1 || r.host.reversals[0].PAN.Reveal() != goodPAN {
		t.Fatalf("reversals %+v", r.host.reversals)
	}
}

type sealingHost struct {
	*fakeHost
	fakeSealer
}

// Without a sealer the reversal goes without a PAN, and the checkpoint still
// holds none.
func TestNoSealerNoPAN(t *testing.T) {
	r := newRig()
	r.host.loseSale = true
	r.ui.answers = []string{"confirm", "retry"}
	if cp, err := r.flow().Run(context.Background()); err != nil || cp.Step != provisioning.StepLive {
		t.Fatalf("%v at %s", err, cp.Step)
	}
	if len(r.host.reversals) != 1 || !r.host.reversals[0].PAN.IsZero() || len(r.host.reversals[0].Orig.SealedPAN) != 0 {
		t.Fatalf("reversals %+v", r.host.reversals)
	}
	noPANDigits(t, r.store.Bytes())
}

// A sealer that fails stops the sale before it is sent.
func TestSealerFailureSendsNothing(t *testing.T) {
	r := newRig()
	r.ui.answers = []string{"confirm", "abort"}
	f := r.flow()
	f.Sealer = &fakeSealer{fail: errors.New("no key")}
	cp, err := f.Run(context.Background())
	if !errors.Is(err, provisioning.ErrAborted) || cp.Failure == nil || cp.Failure.Code != "E_SEAL" {
		t.Fatalf("%v, failure %+v", err, cp.Failure)
	}
	if len(r.host.fullPANs) != 0 || cp.InFlight != nil {
		t.Fatalf("sent %d sales, in flight %+v", len(r.host.fullPANs), cp.InFlight)
	}
}

// TestReversalLimit: a reversal that never gets an answer is sent
// MaxReversals times (a restart in between included), then given up: the
// step fails with E_REVERSAL_LIMIT, monitoring hears it, the checkpoint
// keeps a masked note for the acquirer and no sealed PAN, and no fourth
// reversal is ever sent.
func TestReversalLimit(t *testing.T) {
	r := newRig()
	r.host.loseSale = true
	r.host.refuseReversals = true
	sealer := &fakeSealer{}
	// confirm the card, then retry after the lost sale and after the first
	// two failed reversals, then stop (the terminal is switched off).
	r.ui.answers = []string{"confirm", "retry", "retry"}
	f := r.flow()
	f.Sealer = sealer
	cp, err := f.Run(context.Background())
	if !errors.Is(err, errNoAnswerScripted) || cp.Failure == nil || cp.Failure.Code != "E_REVERSAL" {
		t.Fatalf("first boot: %v, failure %+v", err, cp.Failure)
	}
	if len(r.host.reversals) != 2 || cp.InFlight == nil || cp.InFlight.Attempts != 2 {
		t.Fatalf("first boot: %d reversals, in flight %+v", len(r.host.reversals), cp.InFlight)
	}
	// Second boot: the third and last try, then the limit.
	r.ui.answers = []string{"retry", "retry"}
	f = r.flow()
	f.Sealer = sealer
	cp, err = f.Run(context.Background())
	if !errors.Is(err, errNoAnswerScripted) || cp.Failure == nil || cp.Failure.Code != "E_REVERSAL_LIMIT" {
		t.Fatalf("second boot: %v, failure %+v", err, cp.Failure)
	}
	if len(r.host.reversals) != 3 {
		t.Fatalf("%d reversals sent, want 3", len(r.host.reversals))
	}
	if cp.InFlight != nil || len(cp.Unreversed) != 1 {
		t.Fatalf("in flight %+v, unreversed %+v", cp.InFlight, cp.Unreversed)
	}
	u := cp.Unreversed[0]
	if u.Kind != "sale" || u.Masked != "622202*********0128" || u.Attempts != 3 || u.Batch != "000001" || u.Amount != 1 {
		t.Fatalf("unreversed note %+v", u)
	}
	if !strings.Contains(cp.Failure.Message, fmt.Sprintf("STAN %06d", u.STAN)) || !strings.Contains(cp.Failure.Message, u.Masked) {
		t.Fatalf("the installer is not told which sale: %q", cp.Failure.Message)
	}
	reported := false
	for _, s := range r.reporter.statuses {
		reported = reported || s.State == provisioning.StateFailed && s.Error != nil && s.Error.Code == "E_REVERSAL_LIMIT"
	}
	if !reported {
		t.Fatal("monitoring never heard E_REVERSAL_LIMIT")
	}
	noPANDigits(t, r.store.Bytes())
	if bytes.Contains(r.store.Bytes(), []byte("sealed_pan")) {
		t.Fatal("the sealed PAN outlived the reversal it was kept for")
	}

	// Giving up is final: the failure offers no retry, and a "retry" (from
	// a stale screen, say) sends nothing.
	if got := cp.Failure.Actions; len(got) != 2 || got[0] != "clear" {
		t.Fatalf("actions %v, want clear and abort", got)
	}
	sales := len(r.host.fullPANs)
	r.host.refuseReversals = false
	r.ui.answers = []string{"retry"}
	f = r.flow()
	f.Sealer = sealer
	cp, err = f.Run(context.Background())
	if !errors.Is(err, provisioning.ErrAborted) || len(r.host.fullPANs) != sales || cp.Step != provisioning.StepNeedsAttention {
		t.Fatalf("retry after the limit: %v at %s, %d sales (was %d)", err, cp.Step, len(r.host.fullPANs), sales)
	}
	// Every report meanwhile names the unsettled sale.
	last := r.reporter.statuses[len(r.reporter.statuses)-1]
	if len(last.Unresolved) != 1 || last.Unresolved[0].STAN != u.STAN || last.Unresolved[0].State != "operator" {
		t.Fatalf("last report's unresolved %+v", last.Unresolved)
	}

	// The acquirer cancelled it by hand and a supervisor clears it: the
	// flow goes on, and the cleared note is kept.
	r.ui.answers = []string{"clear"}
	f = r.flow()
	f.Sealer = sealer
	cp, err = f.Run(context.Background())
	if err != nil || cp.Step != provisioning.StepLive {
		t.Fatalf("after the clear: %v at %s", err, cp.Step)
	}
	if len(r.host.reversals) != 3 || len(cp.Unreversed) != 0 || len(cp.Cleared) != 1 || cp.Cleared[0].STAN != u.STAN {
		t.Fatalf("%d reversals, unreversed %+v, cleared %+v", len(r.host.reversals), cp.Unreversed, cp.Cleared)
	}
}

// TestSTANNeverRepeatsAcrossRestarts stops the terminal inside every step
// (and once with a sale answer lost), restarts it on the same checkpoint, and
// checks that every message the host saw had a new STAN and the batch of the
// sign-on, which the checkpoint kept: the test batch's until it is settled,
// the next one's after.
func TestSTANNeverRepeatsAcrossRestarts(t *testing.T) {
	for _, stop := range provisioning.Steps {
		for _, lose := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/lost-answer=%v", stop, lose), func(t *testing.T) {
				r := newRig()
				r.host.loseSale = lose
				ctx, cancel := r.cutAt(stop)
				defer cancel()
				r.ui.answers = []string{"confirm", "retry"}
				_, _ = r.flow().Run(ctx)
				r.reporter.onReport = nil
				// Boots until live, as the agent restarts: each on the same store.
				for boot := 0; boot < 3; boot++ {
					r.ui.answers = []string{"confirm", "retry"}
					cp, err := r.flow().Run(context.Background())
					if err == nil && cp.Step == provisioning.StepLive {
						break
					}
				}
				cp, err := provisioning.Decode(r.store.Bytes())
				if err != nil || cp.Step != provisioning.StepLive {
					t.Fatalf("never went live: %v at %s", err, cp.Step)
				}
				last := 0
				for _, m := range r.host.sent {
					if m.stan <= last {
						t.Fatalf("STAN %d after %d: %+v", m.stan, last, r.host.sent)
					}
					last = m.stan
					want := cp.Sale.Batch
					if m.kind == "sign-off" {
						want = cp.Business.Batch
					}
					if m.kind != "sign-on" && m.batch != want {
						t.Fatalf("%s in batch %q, want %q", m.kind, m.batch, want)
					}
				}
				if cp.STAN != last {
					t.Fatalf("checkpoint STAN %d, last sent %d", cp.STAN, last)
				}
			})
		}
	}
}

// A PIN block on its way to the host never prints, logs or marshals.
func TestPINBlockRedacts(t *testing.T) {
	b := provisioning.PINBlock{0x04, 0x12, 0x25, 0xEE, 0xEE, 0xEE, 0xEE, 0xEE}
	req := provisioning.SaleRequest{PINBlock: b}
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("sale", "pin", b, "req", req)
	js, _ := json.Marshal(req)
	for name, out := range map[string]string{
		"%v": fmt.Sprintf("%v", b), "%+v": fmt.Sprintf("%+v", req), "%#v": fmt.Sprintf("%#v", b),
		"slog": logged.String(), "json": string(js),
	} {
		if strings.Contains(strings.ToUpper(out), "041225") || strings.Contains(out, "4 18 37") || strings.Contains(out, "[4 18") {
			t.Errorf("%s shows the block: %s", name, out)
		}
	}
}

// The sale's record keeps its sealed PAN on the terminal until the batch is
// settled; no report ever carries it.
func TestReportsCarryNoSealedPAN(t *testing.T) {
	r := newRig()
	r.host.proc.unbalanced = true // the seal is used by the batch upload
	f := r.flow()
	f.Sealer = &fakeSealer{}
	var sealedSeen bool
	r.reporter.onReport = func(s provisioning.Status) {
		for _, x := range []*provisioning.TxnRecord{s.Sale, s.Void} {
			if x != nil && len(x.SealedPAN) > 0 {
				t.Errorf("%s %s report carries the sealed PAN", s.Step, s.State)
			}
		}
		if cp, err := provisioning.Decode(r.store.Data); err == nil && cp.Sale != nil && len(cp.Sale.SealedPAN) > 0 {
			sealedSeen = true
		}
	}
	cp, err := f.Run(context.Background())
	if err != nil || cp.Step != provisioning.StepLive {
		t.Fatalf("Run = %v at %s", err, cp.Step)
	}
	if !sealedSeen {
		t.Error("the checkpoint never held the sale's sealed PAN: the test proves nothing")
	}
	if len(cp.Sale.SealedPAN) != 0 {
		t.Error("the sealed PAN outlived the settled batch")
	}
}
