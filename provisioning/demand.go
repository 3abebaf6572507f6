package provisioning

import (
	"fmt"
	"strconv"
	"strings"
)

// MarshalText stores a demand by its name: checkpoints and reports never
// hold the bare digit, whose meaning is the acquirer's.
func (d Demand) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText reads what MarshalText wrote.
func (d *Demand) UnmarshalText(b []byte) error {
	s := string(b)
	for n := DemandNone; n <= DemandBlacklist; n++ {
		if n.String() == s {
			*d = n
			return nil
		}
	}
	if digits, ok := strings.CutPrefix(s, "demand("); ok {
		if n, err := strconv.Atoi(strings.TrimSuffix(digits, ")")); err == nil && strings.HasSuffix(digits, ")") {
			*d = Demand(n)
			return nil
		}
	}
	return fmt.Errorf("provisioning: unknown demand %q", s)
}

// DemandNote is what the hosts asked of one kind of work, and what the
// terminal made of it. The checkpoint keeps one per kind; every report
// carries them.
type DemandNote struct {
	Demand Demand `json:"demand"`
	// State is DemandPending (run before the next transaction),
	// DemandDone, DemandNotRun (work that is not the install's: an
	// application or blacklist download; logged and reported only) or
	// DemandRefused (asked again after maxDemandRuns runs: a host that
	// asks for ever would hold the install in a loop).
	State string `json:"state"`
	// From is the message whose answer asked last ("sale", "sign-on" …).
	From string `json:"from"`
	// Times counts the answers that asked; Runs the runs done for it.
	Times int `json:"times"`
	Runs  int `json:"runs,omitempty"`
}

// Demand note states.
const (
	DemandPending = "pending"
	DemandDone    = "done"
	DemandNotRun  = "not-run"
	DemandRefused = "refused"
)

// maxDemandRuns bounds the runs of one kind of work on the hosts' demand
// within one install: the loop breaker for a host whose answers keep asking.
const maxDemandRuns = 3

// demandOrder is the order pending demands are run in: new working keys
// first (every later message is MACed with them), then what the chip needs,
// then the rest.
var demandOrder = []Demand{DemandSignOn, DemandCAPK, DemandICParameters, DemandParameters, DemandStatusUpload}

// servedBy is the message kinds whose answers carry out a demand
// themselves: a sign-on's answer asking for a sign-on is the one just made.
var servedBy = map[Demand][]string{
	DemandSignOn:       {"sign-on"},
	DemandCAPK:         {"capk"},
	DemandICParameters: {"ic-params"},
	DemandParameters:   {"terminal-params"},
	DemandStatusUpload: {"status-upload"},
}

// demandStep is the step that carries out demand d. A sign-on demanded
// after the test batch closed is the sign-on for business, which opens the
// next batch.
func demandStep(d Demand, cp *Checkpoint) Step {
	switch d {
	case DemandSignOn:
		if cp.Settlement != nil && cp.Settlement.Done {
			return StepSignOnBusiness
		}
		return StepSignOn
	case DemandCAPK:
		return StepCAPK
	case DemandICParameters:
		return StepICParams
	case DemandParameters:
		return StepTerminalParams
	case DemandStatusUpload:
		return StepStatusUpload
	}
	return ""
}

// note returns the checkpoint's note for d, adding an empty one.
func (c *Checkpoint) note(d Demand) *DemandNote {
	for i := range c.Demands {
		if c.Demands[i].Demand == d {
			return &c.Demands[i]
		}
	}
	c.Demands = append(c.Demands, DemandNote{Demand: d})
	return &c.Demands[len(c.Demands)-1]
}

// pendingDemand is the first pending demand in demandOrder.
func (c *Checkpoint) pendingDemand() (Demand, bool) {
	for _, d := range demandOrder {
		for _, n := range c.Demands {
			if n.Demand == d && n.State == DemandPending {
				return d, true
			}
		}
	}
	return DemandNone, false
}

// noteDemand records what the answer to a message of kind from asked for.
// It is saved with the checkpoint the caller saves next: a demand in the
// answer of a sale is on disk with the sale, and a restart still runs it
// before the void.
func (f *Flow) noteDemand(cp *Checkpoint, d Demand, from string) {
	if d == DemandNone {
		return
	}
	for _, k := range servedBy[d] {
		if k == from {
			return // this very exchange does the work
		}
	}
	n := cp.note(d)
	n.Times++
	n.From = from
	switch {
	case demandStep(d, cp) == "":
		// Not the install's to do (TMS, blacklist, a digit no acquirer
		// defines): said, not run.
		n.State = DemandNotRun
		f.Log.Warn("host demand not run by the install", "demand", d, "from", from, "times", n.Times)
	case n.State == DemandPending:
	case n.Runs >= maxDemandRuns && from != "central":
		// Central's request is an operator's: it is not a loop.
		n.State = DemandRefused
		f.Log.Warn("host keeps demanding the same work; not run again", "demand", d, "from", from, "runs", n.Runs)
	default:
		n.State = DemandPending
		f.Log.Info("host demand", "demand", d, "from", from)
	}
}

// served marks d done: its work just finished, demanded or not (the first
// download after sign-on serves a demand for it as well).
func (c *Checkpoint) served(d Demand) {
	for i := range c.Demands {
		if n := &c.Demands[i]; n.Demand == d && n.State == DemandPending {
			n.State = DemandDone
			n.Runs++
		}
	}
}
