package agent

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/posagent/posagent/agent/central/command"
	"github.com/posagent/posagent/provisioning"
)

// remote carries central's commands (agent/central/command) into the install: it is
// the command.Handler, and it wraps the flow's Prompter so that a retry
// command can answer the needs-attention question the installer has not
// answered yet. Commands act only where an installer at the keypad could:
// central cannot make the flow skip or redo what the checkpoint says is done.
type remote struct {
	flow *provisioning.Flow // Store, Reporter and identity; read-only here

	mu     sync.Mutex
	answer chan string     // non-nil while a question central may answer is open
	offers map[string]bool // the option IDs that question offers
}

var _ command.Handler = (*remote)(nil)

// prompter wraps next so that open "retry" questions can be answered remotely.
func (r *remote) prompter(next provisioning.Prompter) provisioning.Prompter {
	return &remotePrompter{next: next, r: r}
}

// checkpoint is the flow's saved state, as the flow knows it.
func (r *remote) checkpoint() (provisioning.Checkpoint, error) { return r.flow.Current() }

// RetryStep answers "retry" for the failed step, when the install is stopped
// at that step's failure and waiting for an answer. A step whose work a
// host can demand (the downloads, the status upload, sign-on) may also be
// named while the install waits at another step's failure: the retry then
// runs that work again too, before the next transaction, as a host's
// demand would (provisioning.Flow.Request). What is on record stays done:
// a download run again replaces its list only at the host's acknowledged
// end, and no sale or void is ever sent again by it.
func (r *remote) RetryStep(ctx context.Context, step provisioning.Step) error {
	cp, err := r.checkpoint()
	if err != nil {
		return fmt.Errorf("reading the checkpoint: %w", err)
	}
	if cp.Step != provisioning.StepNeedsAttention || cp.Failure == nil {
		return notNow("the install is at %s, not stopped at a failure", cp.Step)
	}
	info, _ := provisioning.Info(step)
	again := cp.Failure.Step != step && info.Serves != provisioning.DemandNone
	if cp.Failure.Step != step && !again {
		return notNow("the failed step is %s, not %s", cp.Failure.Step, step)
	}
	if again {
		if provisioning.OperatorOnly(cp.Failure.Code) {
			return notNow("%s waits for an operator's clear, not a retry", cp.Failure.Code)
		}
		if err := r.flow.Request(step); err != nil {
			return notNow("%v", err)
		}
	}
	return r.answerOpen(ctx, cp, "retry")
}

// answerOpen gives the open question the answer id, if it offers it.
func (r *remote) answerOpen(ctx context.Context, cp provisioning.Checkpoint, id string) error {
	r.mu.Lock()
	ch, offered := r.answer, r.offers[id]
	r.mu.Unlock()
	if ch == nil || !offered {
		return notNow("no question offering %s is open at %s (the agent is restarting or busy)", id, cp.Failure.Step)
	}
	// The question may be a moment from waiting (it registers before it
	// listens), or answered at the keypad meanwhile: wait briefly, not forever.
	t := time.NewTimer(2 * time.Second)
	defer t.Stop()
	select {
	case ch <- id:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return notNow("the question at %s was answered meanwhile", cp.Failure.Step)
	}
}

// ClearUnresolved answers "clear" for the message (kind, STAN, batch) the
// install stopped at, when only an operator may clear it: central's signed
// command, sent after the acquirer cancelled the message by hand. The
// message must be the one waiting: a command about another is refused.
func (r *remote) ClearUnresolved(ctx context.Context, kind string, stan int, batch string) error {
	cp, err := r.checkpoint()
	if err != nil {
		return fmt.Errorf("reading the checkpoint: %w", err)
	}
	if cp.Step != provisioning.StepNeedsAttention || cp.Failure == nil || !provisioning.OperatorOnly(cp.Failure.Code) {
		return notNow("the install is at %s, not stopped for an operator", cp.Step)
	}
	if len(cp.Unreversed) == 0 {
		return notNow("%s is not about a message; clear it at the keypad", cp.Failure.Code)
	}
	u := cp.Unreversed[0]
	if u.Kind != kind || u.STAN != stan || u.Batch != batch {
		return notNow("the message waiting is %s STAN %06d batch %s, not %s STAN %06d batch %s",
			u.Kind, u.STAN, u.Batch, kind, stan, batch)
	}
	return r.answerOpen(ctx, cp, "clear")
}

// RerunTestSale retries the test sale when it is the step that failed. A
// live terminal's test sale stays done: running another sale is a payment,
// and belongs to the terminal's sale menu, not to provisioning.
func (r *remote) RerunTestSale(ctx context.Context) error {
	return r.RetryStep(ctx, provisioning.StepTestSale)
}

// ReportNow reports the saved checkpoint again.
func (r *remote) ReportNow(ctx context.Context) error {
	cp, err := r.checkpoint()
	if errors.Is(err, provisioning.ErrNoState) {
		return notNow("the install has not started")
	}
	if err != nil {
		return fmt.Errorf("reading the checkpoint: %w", err)
	}
	r.flow.Reporter.Report(ctx, r.flow.StatusOf(cp))
	return nil
}

// notNow is a refusal central may read: it names steps, never card data.
func notNow(format string, args ...any) error {
	return &command.Error{Code: command.CodeFailed, Message: "not now: " + fmt.Sprintf(format, args...)}
}

type remotePrompter struct {
	next provisioning.Prompter
	r    *remote
}

func (p *remotePrompter) Show(ctx context.Context, s provisioning.Screen) error {
	return p.next.Show(ctx, s)
}

// Ask asks the installer; a question offering "retry" or "clear" may also
// be answered by central, whichever comes first. The keypad's wait is
// cancelled then, so no key is consumed for a question already answered.
func (p *remotePrompter) Ask(ctx context.Context, s provisioning.Screen, options ...provisioning.Option) (string, error) {
	if !slices.ContainsFunc(options, func(o provisioning.Option) bool { return o.ID == "retry" || o.ID == "clear" }) {
		return p.next.Ask(ctx, s, options...)
	}
	ch := make(chan string) // unbuffered: an answer counts only if we take it
	offers := map[string]bool{}
	for _, o := range options {
		offers[o.ID] = true
	}
	p.r.mu.Lock()
	p.r.answer, p.r.offers = ch, offers
	p.r.mu.Unlock()
	defer func() {
		p.r.mu.Lock()
		p.r.answer, p.r.offers = nil, nil
		p.r.mu.Unlock()
	}()
	actx, cancel := context.WithCancel(ctx)
	defer cancel()
	type result struct {
		id  string
		err error
	}
	done := make(chan result, 1)
	go func() {
		id, err := p.next.Ask(actx, s, options...)
		done <- result{id, err}
	}()
	select {
	case res := <-done:
		return res.id, res.err
	case id := <-ch:
		cancel()
		<-done
		return id, nil
	}
}
