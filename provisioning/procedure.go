package provisioning

import (
	"context"
	"fmt"
)

// StepInfo is everything about one step, in one place: what runs, where a
// restart stored at it continues and why, the device pause points reached
// inside it (the crash tests freeze the agent there), and what its one-line
// log adds once it is done. Steps lists them in the procedure's order.
type StepInfo struct {
	Step Step
	// Why the step resumes as it does: a restart stored at this step runs it
	// again (each handler is written to run twice), except where route says
	// otherwise; this says why running it again is safe.
	Resume string
	// Pauses are the simulated devices' pause points inside the step, in
	// the order the step reaches them ("host.sale" …); "enter:STEP" (the
	// OnEnter hook, after the checkpoint is written) comes before them.
	Pauses []string
	// Summary is what a log line adds for the step done (s is its report).
	Summary func(s Status) string

	run func(f *Flow, ctx context.Context, cp *Checkpoint) error
}

// procedure is the install, step by step, and the steps off the line. The
// order of the first part is the order of the install.
var procedure = []StepInfo{
	{Step: StepSelftest, Resume: "read-only checks", Pauses: []string{"printer.selftest"},
		run: (*Flow).selftest},
	{Step: StepNetwork, Resume: "a read-only echo to the host", Pauses: []string{"host.echo"},
		run: (*Flow).network},
	{Step: StepParameters, Resume: "reloads and overwrites the same record", Pauses: []string{"params.load"},
		run: (*Flow).parameters},
	{Step: StepSignOn, Resume: "a second sign-on replaces the working keys", Pauses: []string{"host.signon"},
		run: (*Flow).signOn,
		Summary: func(s Status) string {
			if s.SignOn == nil {
				return ""
			}
			return "batch=" + s.SignOn.Batch
		}},
	{Step: StepBindCard, Resume: "re-reads the card; nothing is bound until the checkpoint says so", Pauses: []string{"card.read"},
		run:     (*Flow).bindCard,
		Summary: func(s Status) string { return "card=" + s.Card }},
	{Step: StepTestSale, Resume: "nothing was sent, or its reversal image is on disk (route sends that to reverse)", Pauses: []string{"host.sale"},
		run: (*Flow).testSale,
		Summary: func(s Status) string {
			if s.Sale == nil {
				return ""
			}
			return fmt.Sprintf("rc=%s rrn=%s auth=%s stan=%06d card=%s", s.Sale.RC, s.Sale.RRN, s.Sale.AuthCode, s.Sale.STAN, s.Sale.Masked)
		}},
	{Step: StepPrintSlip, Resume: "prints again, marked as a duplicate: an attempt may have printed", Pauses: []string{"printer.print"},
		run: (*Flow).printSlip},
	{Step: StepVoid, Resume: "nothing was sent, or its reversal image is on disk (route sends that to reverse)", Pauses: []string{"host.void"},
		run: (*Flow).void,
		Summary: func(s Status) string {
			if s.Void == nil {
				return ""
			}
			return fmt.Sprintf("rc=%s stan=%06d", s.Void.RC, s.Void.STAN)
		}},
	{Step: StepLive, Resume: "publishes live again"},
	// Off the line: route enters reverse whenever a message is unsettled,
	// and needs-attention waits for the installer or an operator.
	{Step: StepReverse, Resume: "sends the reversal again: its tries are counted on disk", Pauses: []string{"host.reversal"},
		run: (*Flow).reverse},
	{Step: StepNeedsAttention, Resume: "waits for the installer or an operator again"},
}

// Steps is the install procedure in order (reverse and needs-attention are
// off the line).
var Steps = func() []Step {
	var out []Step
	for _, s := range procedure {
		if s.Step == StepReverse || s.Step == StepNeedsAttention {
			continue
		}
		out = append(out, s.Step)
	}
	return out
}()

// Procedure returns every step's description, the line first.
func Procedure() []StepInfo { return append([]StepInfo(nil), procedure...) }

// Info describes step s; ok is false for an unknown step.
func Info(s Step) (StepInfo, bool) {
	for _, p := range procedure {
		if p.Step == s {
			return p, true
		}
	}
	return StepInfo{}, false
}

// Valid reports whether s is a known step.
func (s Step) Valid() bool { _, ok := Info(s); return ok }

// line returns the step after s on the install's line.
func (s Step) line() Step {
	for i, st := range Steps {
		if st == s && i+1 < len(Steps) {
			return Steps[i+1]
		}
	}
	return StepLive
}

// route decides where the flow goes to do step want, given what the
// checkpoint records. It is the resume table: the flow asks it at a start
// (want is the stored step), after every step (want is the next on the
// line) and on a retry (want is the failed step), so a power cut, a failure
// and a normal run all take the same decisions. Each row says why.
func route(want Step, cp *Checkpoint) (Step, string) {
	switch {
	case want == StepNeedsAttention, want == StepLive:
		// Waiting for someone, or done; a live terminal has nothing in flight.
		return want, "as stored"
	case cp.InFlight != nil || len(cp.Unreversed) > 0:
		// A message whose answer was never recorded is reversed before
		// anything else goes online (and one only an operator may settle
		// stops there): so a sale that reached the host before a crash can
		// never stay charged next to its retry.
		return StepReverse, "a message is unsettled"
	case want == StepReverse:
		// Settled: on to the first financial step not on record.
		return afterReverse(cp), "the reversal is settled"
	case want == StepTestSale && cp.Sale != nil:
		// The sale is on record: it is never sent again; only its slip may
		// be missing.
		return StepPrintSlip, "the sale is on record"
	case want == StepPrintSlip && cp.Slip != nil && cp.Slip.Printed:
		return StepVoid, "the slip printed"
	case want == StepVoid && cp.Void != nil:
		return StepLive, "the void is on record"
	}
	info, _ := Info(want)
	return want, info.Resume
}

// afterReverse is the first financial step the checkpoint does not record
// as done.
func afterReverse(cp *Checkpoint) Step {
	switch {
	case cp.Sale == nil:
		return StepTestSale
	case cp.Slip == nil || !cp.Slip.Printed:
		return StepPrintSlip
	case cp.Void == nil:
		return StepVoid
	}
	return StepLive
}
