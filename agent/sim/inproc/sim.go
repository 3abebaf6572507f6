// Package sim holds the in-process simulated devices of the demo and the tests:
// a virtual UnionPay chip card, an acquirer host that approves and keeps a
// durable ledger, a printer that renders the slip as text, and pause points that
// let a crash test freeze the agent inside any step.
//
// They implement the provisioning flow's ports exactly as the real drivers do,
// so the flow cannot tell them apart; what they simulate is the far side only.
package inproc

import (
	"context"
	"fmt"
	"io"
	"sync"

	"github.com/posagent/posagent/provisioning"
)

// Pauses freezes the agent at one named point so that a test can SIGKILL a real
// process there. At == "" disables it. Points are "enter:STEP" (right after the
// checkpoint of STEP is written) and device points such as "host.sale" (after
// the host has recorded the sale, before the answer reaches the flow).
type Pauses struct {
	At  string
	Out io.Writer // where "PAUSED at NAME" is written; the test waits for it

	once sync.Once
}

// Point blocks until ctx ends when name is the configured pause point.
func (p *Pauses) Point(ctx context.Context, name string) {
	if p == nil || p.At == "" || p.At != name {
		return
	}
	p.once.Do(func() { fmt.Fprintf(p.Out, "PAUSED at %s\n", name) })
	<-ctx.Done()
}

// PausingReporter passes reports on and pauses at "enter:STEP" when STEP starts.
type PausingReporter struct {
	Next   provisioning.Reporter
	Pauses *Pauses
}

// Report forwards s, then pauses if s starts the configured step.
func (r PausingReporter) Report(ctx context.Context, s provisioning.Status) {
	r.Next.Report(ctx, s)
	if s.State == provisioning.StateRunning {
		r.Pauses.Point(ctx, "enter:"+string(s.Step))
	}
}

// Points lists every pause point in the order the flow reaches them.
func Points() []string {
	var pts []string
	for _, s := range provisioning.Steps {
		pts = append(pts, "enter:"+string(s))
		switch s {
		case provisioning.StepSelftest:
			pts = append(pts, "printer.selftest")
		case provisioning.StepNetwork:
			pts = append(pts, "host.echo")
		case provisioning.StepParameters:
			pts = append(pts, "params.load")
		case provisioning.StepSignOn:
			pts = append(pts, "host.signon")
		case provisioning.StepBindCard:
			pts = append(pts, "card.read")
		case provisioning.StepTestSale:
			pts = append(pts, "host.sale", "printer.print")
		case provisioning.StepVoid:
			pts = append(pts, "host.void")
		}
	}
	return pts
}

// NopReporter drops every report (reporting off).
type NopReporter struct{}

// Report does nothing.
func (NopReporter) Report(context.Context, provisioning.Status) {}
