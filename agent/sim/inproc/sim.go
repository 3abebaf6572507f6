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

// Points lists every pause point in the order the flow reaches them: each
// step's "enter:STEP" (the flow's OnEnter hook) and the device points
// inside it, as provisioning's procedure table lists them. The reverse
// step, off the line, comes where a kill at host.sale sends the next start.
func Points() []string {
	var pts []string
	add := func(s provisioning.Step) {
		info, _ := provisioning.Info(s)
		pts = append(pts, "enter:"+string(s))
		pts = append(pts, info.Pauses...)
	}
	for _, s := range provisioning.Steps {
		add(s)
		if s == provisioning.StepTestSale {
			add(provisioning.StepReverse)
		}
	}
	return pts
}

// NopReporter drops every report (reporting off).
type NopReporter struct{}

// Report does nothing.
func (NopReporter) Report(context.Context, provisioning.Status) {}
