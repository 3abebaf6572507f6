package agent

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/posagent/posagent/agent/central/command"
	"github.com/posagent/posagent/provisioning"
	"github.com/posagent/posagent/provisioning/provisioningtest"
)

type statusLog []provisioning.Status

func (l *statusLog) Report(_ context.Context, s provisioning.Status) { *l = append(*l, s) }

// blockingPrompter waits for ctx, as a keypad nobody touches.
type blockingPrompter struct{ asked chan struct{} }

func (blockingPrompter) Show(context.Context, provisioning.Screen) error { return nil }
func (b blockingPrompter) Ask(ctx context.Context, _ provisioning.Screen, _ ...provisioning.Option) (string, error) {
	close(b.asked)
	<-ctx.Done()
	return "", ctx.Err()
}

func saved(t *testing.T, st *provisioningtest.Store, cp provisioning.Checkpoint) {
	t.Helper()
	cp.Schema = provisioning.SchemaVersion
	b, err := cp.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Save(b); err != nil {
		t.Fatal(err)
	}
}

func TestRemote(t *testing.T) {
	st := &provisioningtest.Store{}
	var reports statusLog
	flow := &provisioning.Flow{Terminal: provisioning.Terminal{TID: "10000001"}, Store: st, Reporter: &reports, Clock: provisioning.SystemClock{}}
	r := &remote{flow: flow}
	ctx := context.Background()

	var ce *command.Error
	if err := r.ReportNow(ctx); !errors.As(err, &ce) {
		t.Fatalf("report before any checkpoint: %v", err)
	}
	saved(t, st, provisioning.Checkpoint{Step: provisioning.StepNeedsAttention,
		Failure: &provisioning.Failure{Step: provisioning.StepTestSale, Code: "E_HOST", Message: "host down"}})
	if err := r.ReportNow(ctx); err != nil || len(reports) != 1 {
		t.Fatalf("ReportNow: %v, %d reports", err, len(reports))
	}
	if s := reports[0]; s.Step != provisioning.StepTestSale || s.State != provisioning.StateFailed || s.Error.Code != "E_HOST" {
		t.Errorf("reported %+v", s)
	}

	// No question open yet: refused, not queued for later.
	if err := r.RerunTestSale(ctx); !errors.As(err, &ce) {
		t.Fatalf("rerun with no question open: %v", err)
	}
	asked := make(chan struct{})
	p := r.prompter(blockingPrompter{asked: asked})
	answer := make(chan string, 1)
	go func() {
		id, _ := p.Ask(ctx, provisioning.Screen{}, provisioning.Option{ID: "retry"}, provisioning.Option{ID: "abort"})
		answer <- id
	}()
	<-asked
	if err := r.RetryStep(ctx, provisioning.StepBindCard); !errors.As(err, &ce) {
		t.Fatalf("retry of another step: %v", err)
	}
	if err := r.RerunTestSale(ctx); err != nil {
		t.Fatalf("rerun at the test sale's failure: %v", err)
	}
	select {
	case id := <-answer:
		if id != "retry" {
			t.Errorf("answered %q", id)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the question was never answered")
	}
	// A question without retry is the keypad's alone.
	plain := r.prompter(blockingPrompter{asked: make(chan struct{})})
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := plain.Ask(cctx, provisioning.Screen{}, provisioning.Option{ID: "confirm"}); !errors.Is(err, context.Canceled) {
		t.Errorf("confirm question: %v", err)
	}
}

// Central clears what only an operator may, for the message waiting and no
// other; a retry command cannot answer that question.
func TestRemoteClearUnresolved(t *testing.T) {
	st := &provisioningtest.Store{}
	flow := &provisioning.Flow{Terminal: provisioning.Terminal{TID: "10000001"}, Store: st, Reporter: &statusLog{}, Clock: provisioning.SystemClock{}}
	r := &remote{flow: flow}
	ctx := context.Background()
	u := provisioning.ReversalNote{Kind: "sale", STAN: 3, Batch: "000001", State: "operator", Code: "E_REVERSAL_LIMIT"}
	saved(t, st, provisioning.Checkpoint{Step: provisioning.StepNeedsAttention, Unreversed: []provisioning.ReversalNote{u},
		Failure: &provisioning.Failure{Step: provisioning.StepTestSale, Code: "E_REVERSAL_LIMIT", Actions: []string{"clear", "abort"}}})

	asked := make(chan struct{})
	p := r.prompter(blockingPrompter{asked: asked})
	answer := make(chan string, 1)
	go func() {
		id, _ := p.Ask(ctx, provisioning.Screen{}, provisioning.Option{ID: "clear"}, provisioning.Option{ID: "abort"})
		answer <- id
	}()
	<-asked
	var ce *command.Error
	if err := r.RetryStep(ctx, provisioning.StepTestSale); !errors.As(err, &ce) {
		t.Fatalf("retry at an operator's failure: %v", err)
	}
	for _, bad := range []struct {
		kind  string
		stan  int
		batch string
	}{{"void", 3, "000001"}, {"sale", 4, "000001"}, {"sale", 3, "000002"}} {
		if err := r.ClearUnresolved(ctx, bad.kind, bad.stan, bad.batch); !errors.As(err, &ce) {
			t.Fatalf("clear of %+v, not the message waiting: %v", bad, err)
		}
	}
	if err := r.ClearUnresolved(ctx, "sale", 3, "000001"); err != nil {
		t.Fatalf("clear: %v", err)
	}
	select {
	case id := <-answer:
		if id != "clear" {
			t.Errorf("answered %q", id)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the question was never answered")
	}
}

// A download may be run again by central while the install waits at
// another step's failure: the retry answers the question; other steps stay
// the failed step's own, and an operator's stop is no retry's.
func TestRemoteRetryDownload(t *testing.T) {
	ctx := context.Background()
	var ce *command.Error
	for _, tc := range []struct {
		name    string
		code    string
		step    provisioning.Step
		answers bool
	}{
		{"download at another failure", "E_HOST", provisioning.StepCAPK, true},
		{"status upload at another failure", "E_HOST", provisioning.StepStatusUpload, true},
		{"binding at another failure", "E_HOST", provisioning.StepBindCard, false},
		{"download at an operator's stop", "E_REVERSAL_LIMIT", provisioning.StepICParams, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := &provisioningtest.Store{}
			flow := &provisioning.Flow{Terminal: provisioning.Terminal{TID: "10000001"}, Store: st, Reporter: &statusLog{}, Clock: provisioning.SystemClock{}}
			r := &remote{flow: flow}
			saved(t, st, provisioning.Checkpoint{Step: provisioning.StepNeedsAttention,
				Failure: &provisioning.Failure{Step: provisioning.StepTestSale, Code: tc.code}})
			asked := make(chan struct{})
			p := r.prompter(blockingPrompter{asked: asked})
			qctx, cancel := context.WithCancel(ctx)
			defer cancel()
			answer := make(chan string, 1)
			go func() {
				id, _ := p.Ask(qctx, provisioning.Screen{}, provisioning.Option{ID: "retry"}, provisioning.Option{ID: "abort"})
				answer <- id
			}()
			<-asked
			err := r.RetryStep(ctx, tc.step)
			if !tc.answers {
				if !errors.As(err, &ce) {
					t.Fatalf("RetryStep(%s) = %v, want a refusal", tc.step, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("RetryStep(%s) = %v", tc.step, err)
			}
			select {
			case id := <-answer:
				if id != "retry" {
					t.Errorf("answered %q", id)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("the question was never answered")
			}
		})
	}
}
