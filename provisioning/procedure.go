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
	// Serves is the host demand (the header's processing requirement)
	// the step carries out: route runs it when an answer asked for it.
	Serves Demand
	// Offline steps send nothing to the host: pending demands wait for
	// the next step that does ("before the next transaction").
	Offline bool

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
		run: (*Flow).signOn, Serves: DemandSignOn, Summary: signOnSummary},
	{Step: StepCAPK, Resume: "goes on with the staged list (keys fetched stay, each verified); the active list changes only at the acknowledged end",
		Pauses: []string{"host.capk", "host.capk-end"},
		run:    (*Flow).downloadCAPK, Serves: DemandCAPK, Summary: func(s Status) string { return downloadSummary(s.CAPK) }},
	{Step: StepICParams, Resume: "goes on with the staged list; the active list changes only at the acknowledged end",
		Pauses: []string{"host.ic-params", "host.ic-params-end"},
		run:    (*Flow).downloadApps, Serves: DemandICParameters, Summary: func(s Status) string { return downloadSummary(s.Apps) }},
	{Step: StepTerminalParams, Resume: "downloads the parameters again and overwrites the same record", Pauses: []string{"host.terminal-params"},
		run: (*Flow).terminalParams, Serves: DemandParameters},
	{Step: StepStatusUpload, Resume: "uploads the same status again: the host keeps the last", Pauses: []string{"host.status-upload"},
		run: (*Flow).statusUpload, Serves: DemandStatusUpload},
	{Step: StepBindCard, Resume: "re-reads the card; nothing is bound until the checkpoint says so", Pauses: []string{"card.read"},
		run: (*Flow).bindCard, Offline: true, Summary: func(s Status) string { return "card=" + s.Card }},
	{Step: StepTestSale, Resume: "nothing was sent, or its reversal image is on disk until the card accepted the approval (route sends that to reverse)",
		Pauses: []string{"card.first-ac", "host.sale", "card.second-ac"},
		run:    (*Flow).testSale,
		Summary: func(s Status) string {
			if s.Sale == nil {
				return ""
			}
			return fmt.Sprintf("rc=%s rrn=%s auth=%s stan=%06d card=%s", s.Sale.RC, s.Sale.RRN, s.Sale.AuthCode, s.Sale.STAN, s.Sale.Masked)
		}},
	{Step: StepPrintSlip, Resume: "prints again, marked as a duplicate: an attempt may have printed", Pauses: []string{"printer.print"},
		run: (*Flow).printSlip, Offline: true},
	{Step: StepVoid, Resume: "nothing was sent, or its reversal image is on disk (route sends that to reverse)", Pauses: []string{"host.void"},
		run: (*Flow).void,
		Summary: func(s Status) string {
			if s.Void == nil {
				return ""
			}
			return fmt.Sprintf("rc=%s stan=%06d", s.Void.RC, s.Void.STAN)
		}},
	{Step: StepPrintVoidSlip, Resume: "prints again, marked as a duplicate: an attempt may have printed", Pauses: []string{"printer.print-void"},
		run: (*Flow).printVoidSlip, Offline: true},
	{Step: StepSettle, Resume: "settles again with the same totals until the answer is on record, then goes on with the batch upload where it stopped (an end sent again that the host answers 77 was closed by the first); it never sends a sale",
		Pauses: []string{"host.tc-upload", "host.settle"},
		run:    (*Flow).settle, Summary: settleSummary},
	{Step: StepSignOff, Resume: "signs off again: a sign-off changes nothing at the host but the session", Pauses: []string{"host.signoff"},
		run: (*Flow).signOff},
	{Step: StepSignOnBusiness, Resume: "signs on again with the next batch: a second sign-on replaces the working keys", Pauses: []string{"host.signon-business"},
		run: (*Flow).signOnBusiness, Serves: DemandSignOn, Summary: func(s Status) string {
			if s.Business == nil {
				return ""
			}
			return "batch=" + s.Business.Batch
		}},
	{Step: StepLive, Resume: "publishes live again"},
	// Off the line: route enters reverse whenever a message is unsettled,
	// and needs-attention waits for the installer or an operator.
	{Step: StepReverse, Resume: "sends the reversal again: its tries are counted on disk", Pauses: []string{"host.reversal"},
		run: (*Flow).reverse},
	{Step: StepNeedsAttention, Resume: "waits for the installer or an operator again"},
}

func signOnSummary(s Status) string {
	if s.SignOn == nil {
		return ""
	}
	return "batch=" + s.SignOn.Batch
}

func downloadSummary(r *DownloadRecord) string {
	if r == nil {
		return ""
	}
	return fmt.Sprintf("count=%d", r.Count)
}

func settleSummary(s Status) string {
	st := s.Settlement
	if st == nil {
		return ""
	}
	out := fmt.Sprintf("batch=%s balanced=%v", st.Batch, st.Balanced)
	if st.Uploaded > 0 {
		out += fmt.Sprintf(" uploaded=%d", st.Uploaded)
	}
	return out + " next=" + st.NextBatch
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
//
// From sign-on on, what is done is what the checkpoint records (done), not
// where the flow stood: the first step of the line without its record
// runs, whatever want was, so a step is never skipped because a restart or
// a retry came in elsewhere, and never repeated once its record is saved.
// Before that step, when it talks to the host, a pending host demand runs.
func route(want Step, cp *Checkpoint) (Step, string) {
	switch {
	case want == StepNeedsAttention:
		return want, "as stored"
	case want == StepLive && cp.Step == StepLive:
		// Done: a live terminal has nothing in flight, and its records
		// may predate steps this build has (an install finished by an
		// older one stays live).
		return want, "as stored"
	case cp.InFlight != nil || len(cp.Unreversed) > 0:
		// A message whose answer was never recorded is reversed before
		// anything else goes online (and one only an operator may settle
		// stops there): so a sale that reached the host before a crash can
		// never stay charged next to its retry.
		return StepReverse, "a message is unsettled"
	case want == StepSelftest, want == StepNetwork, want == StepParameters:
		// Before sign-on nothing is recorded as done but the merchant
		// record, which the step overwrites.
		info, _ := Info(want)
		return want, info.Resume
	}
	next := firstUndone(cp)
	why := ""
	switch {
	case want == StepReverse:
		why = "the reversal is settled; " + string(next) + " is the first step not on record"
	case next != want && done(want, cp):
		why = string(want) + " is on record; " + string(next) + " is the first step not"
	case next != want:
		why = string(next) + " comes first: it is not on record"
	default:
		info, _ := Info(next)
		why = info.Resume
	}
	if info, _ := Info(next); !info.Offline {
		if d, ok := cp.pendingDemand(); ok {
			// The host asked for this before the next transaction
			// (PROTOCOLS.md, the processing requirement): it runs first,
			// and the line, whose records say what is done, comes back
			// here after it.
			return demandStep(d, cp), "the host demanded " + d.String() + " before " + string(next)
		}
	}
	return next, why
}

// done reports whether the checkpoint records step s as done. Steps before
// sign-on record nothing; live is never done, it is where the line ends.
func done(s Step, cp *Checkpoint) bool {
	switch s {
	case StepSignOn:
		return cp.SignOn != nil
	case StepCAPK:
		return cp.CAPK != nil
	case StepICParams:
		return cp.Apps != nil
	case StepTerminalParams:
		return cp.TermParams != nil
	case StepStatusUpload:
		return cp.StatusUpload != nil
	case StepBindCard:
		return cp.Card != nil
	case StepTestSale:
		// The sale is on record: it is never sent again; only its slip
		// may be missing.
		return cp.Sale != nil
	case StepPrintSlip:
		return cp.Slip != nil && cp.Slip.Printed
	case StepVoid:
		return cp.Void != nil
	case StepPrintVoidSlip:
		return cp.VoidSlip != nil && cp.VoidSlip.Printed
	case StepSettle:
		return cp.Settlement != nil && cp.Settlement.Done
	case StepSignOff:
		return cp.SignOff != nil
	case StepSignOnBusiness:
		return cp.Business != nil
	}
	return false
}

// firstUndone is the first step from sign-on on that the checkpoint does
// not record as done; live when all are.
func firstUndone(cp *Checkpoint) Step {
	on := false
	for _, s := range Steps {
		on = on || s == StepSignOn
		if on && !done(s, cp) {
			return s
		}
	}
	return StepLive
}
