package crashtest

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/posagent/posagent/agent/acquirer"
	"github.com/posagent/posagent/agent/central/report"
	"github.com/posagent/posagent/agent/sim/ledger"
	"github.com/posagent/posagent/agent/testkit/hostile"
	"github.com/posagent/posagent/provisioning"
)

// The hostile campaign's invariants as pure functions of what the install
// left: the host's ledger, the proxy's record and the checkpoint. Each is
// tested on hand-made histories in checks_test.go.

// book replays the host's ledger in order and knows, at each point, which
// approved sales are unresolved: neither reversed nor voided by a void that
// still stands.
type book struct {
	open   map[txnKey]ledger.Entry // approved sales not undone
	sales  map[txnKey]ledger.Entry
	voidOf map[txnKey]txnKey // a standing void → the sale it undid
}

func newBook() *book {
	return &book{open: map[txnKey]ledger.Entry{}, sales: map[txnKey]ledger.Entry{}, voidOf: map[txnKey]txnKey{}}
}

func (b *book) apply(e ledger.Entry) {
	k := keyOf(e)
	switch {
	case e.Kind == ledger.KindSale && e.Event == ledger.EventApproved:
		b.open[k], b.sales[k] = e, e
	case e.Kind == ledger.KindVoid && e.Event == ledger.EventVoided:
		sk := txnKey{ledger.KindSale, e.Batch, e.OrigSTAN}
		if _, ok := b.open[sk]; ok {
			delete(b.open, sk)
			b.voidOf[k] = sk
		}
	case e.Kind == ledger.KindSale && e.Event == ledger.EventReversed:
		delete(b.open, k)
	case e.Kind == ledger.KindVoid && e.Event == ledger.EventReversed:
		// The void is undone: its sale is charged again.
		if sk, ok := b.voidOf[k]; ok {
			b.open[sk] = b.sales[sk]
			delete(b.voidOf, k)
		}
	}
}

// unresolved names the open sales, oldest first.
func (b *book) unresolved() []string {
	var out []string
	for _, e := range b.open {
		out = append(out, fmt.Sprintf("%s/%06d", e.Batch, e.STAN))
	}
	slices.Sort(out)
	return out
}

// orderProblems is "no second sale while an earlier approval is
// unresolved" on the ledger's order: a sale the host booked (approved or
// declined) while an approved sale was neither reversed nor voided.
func orderProblems(entries []ledger.Entry) []string {
	var problems []string
	b := newBook()
	for _, e := range entries {
		if e.Kind == ledger.KindSale && (e.Event == ledger.EventApproved || e.Event == ledger.EventDeclined) {
			if open := b.unresolved(); len(open) > 0 {
				problems = append(problems, fmt.Sprintf("sale %s/%06d (%s) booked while sale %s was approved and neither reversed nor voided",
					e.Batch, e.STAN, e.Event, strings.Join(open, ", ")))
			}
		}
		b.apply(e)
	}
	return problems
}

// saleRequest is a 0200 sale the proxy saw leave the terminal.
type saleRequest struct {
	Time time.Time
	STAN string
}

// saleRequests picks the sale requests out of the proxy's exchanges.
func saleRequests(exs []hostile.Exchange) []saleRequest {
	var out []saleRequest
	for _, ex := range exs {
		if ex.Kind == hostile.KindSale {
			out = append(out, saleRequest{ex.Time, ex.STAN})
		}
	}
	return out
}

// wireOrderProblems is the same invariant on the wire: no 0200 sale request
// leaves the terminal while the host holds an approved sale that is neither
// reversed nor voided at that moment (the ledger's entries before the
// request's time; the host books a request only after the proxy saw it, and
// the terminal sends its next request only after the answer).
func wireOrderProblems(reqs []saleRequest, entries []ledger.Entry) []string {
	var problems []string
	for _, r := range reqs {
		b := newBook()
		for _, e := range entries {
			if e.Time.Before(r.Time) {
				b.apply(e)
			}
		}
		if open := b.unresolved(); len(open) > 0 {
			problems = append(problems, fmt.Sprintf("0200 sale STAN %s sent while the host held sale %s approved and neither reversed nor voided",
				r.STAN, strings.Join(open, ", ")))
		}
	}
	return problems
}

// trackSecrets are what "a clear track on the wire" looks like for one
// card: its track 2 and track 3 as the reader gives them, its track 1 head,
// and the PAN followed by the separator and the expiry (track 2 and the
// chip's track-2 equivalent, tag 57, start so), each in ASCII and as
// nibbles at any alignment ('=' or the separator as nibble D). An
// encrypted track keeps its PAN and separator in clear (UnionPay encrypts
// the 16 characters before the last), never what follows.
type trackSecrets struct {
	ascii   [][]byte
	nibbles []string
}

func newTrackSecrets(pan, expiry string, tracks ...string) trackSecrets {
	var s trackSecrets
	add := func(t string) {
		t = strings.Trim(t, "%;+?")
		if t == "" {
			return
		}
		s.ascii = append(s.ascii, []byte(t))
		if !strings.ContainsAny(t, "^B") {
			s.nibbles = append(s.nibbles, strings.ToLower(strings.ReplaceAll(t, "=", "d")))
		}
	}
	add(pan + "=" + expiry)
	add("B" + pan + "^")
	for _, t := range tracks {
		add(t)
	}
	return s
}

func (s trackSecrets) in(frame []byte) bool {
	for _, a := range s.ascii {
		if bytes.Contains(frame, a) {
			return true
		}
	}
	h := hex.EncodeToString(frame)
	for _, n := range s.nibbles {
		if strings.Contains(h, n) {
			return true
		}
	}
	return false
}

// wireProblems is "0 clear tracks on the wire": no frame either way holds
// the card's track data in clear, and fields 35/36 travel only with field
// 53 saying they are encrypted (digit 3 = 1).
func wireProblems(frames []hostile.Frame, s trackSecrets) (problems []string, summary string) {
	withTracks := 0
	for _, f := range frames {
		what := fmt.Sprintf("frame %d (%s)", f.Seq, f.Dir)
		if fr, err := acquirer.DecodeFrame(f.Bytes); err == nil {
			if msg, err := acquirer.Unpack(fr.Message); err == nil {
				mti, _ := msg.GetMTI()
				what = fmt.Sprintf("frame %d (%s %s STAN %s)", f.Seq, f.Dir, mti, acquirer.Get(msg, 11))
				t2, t3 := acquirer.Get(msg, 35), acquirer.Get(msg, 36)
				if t2 != "" || t3 != "" {
					withTracks++
					if f53 := acquirer.Get(msg, 53); len(f53) < 3 || f53[2] != '1' {
						problems = append(problems, fmt.Sprintf("%s: tracks in fields 35/36 with field 53 %q, not marked encrypted", what, f53))
					}
				}
			}
		}
		if s.in(f.Bytes) {
			problems = append(problems, what+": the card's track data in clear")
		}
	}
	return problems, fmt.Sprintf("(%d frames, %d with tracks)", len(frames), withTracks)
}

// outcome says how an install ended, or why that is no end at all: live; a
// stop for the operator, at a catalogued failure that offers no retry; or
// anything else (a stop that offers retry after the installer pressed it
// maxFailures times is a retry loop).
func outcome(cp provisioning.Checkpoint, live bool, failures, maxFailures int) (ok bool, what string) {
	switch {
	case live && cp.Step == provisioning.StepLive:
		return true, "live"
	case live:
		return false, fmt.Sprintf("FAIL: the agent said live, the checkpoint says %s", cp.Step)
	case cp.Step != provisioning.StepNeedsAttention || cp.Failure == nil:
		return false, fmt.Sprintf("FAIL: stopped at %s without a failure for the operator", cp.Step)
	case offersRetry(cp.Failure):
		return false, fmt.Sprintf("FAIL: retry loop: %d failures, still offering retry at %s %s", failures, cp.Failure.Step, cp.Failure.Code)
	}
	if _, known := provisioning.Explain(cp.Failure.Code); !known {
		return false, fmt.Sprintf("FAIL: stopped at %s with an uncatalogued code %s", cp.Failure.Step, cp.Failure.Code)
	}
	return true, fmt.Sprintf("stop %s at %s (operator: %s)", cp.Failure.Code, cp.Failure.Step, strings.Join(cp.Failure.Actions, "/"))
}

func offersRetry(fl *provisioning.Failure) bool {
	return fl != nil && slices.Contains(fl.Actions, "retry")
}

// leftToOperator excuses, in the money check, the sales an operator stop
// names for the acquirer to cancel by hand (Checkpoint.Unreversed); only
// when the install did stop for the operator.
func leftToOperator(cp provisioning.Checkpoint, stopped bool) func(ledger.Entry) bool {
	if !stopped {
		return nil
	}
	return func(e ledger.Entry) bool {
		for _, n := range cp.Unreversed {
			if n.Kind == ledger.KindSale && n.STAN == e.STAN && (n.Batch == "" || n.Batch == e.Batch) {
				return true
			}
			// A void only the acquirer can settle leaves its sale with the
			// operator too: voided if the host had the void, charged if
			// not, and the stop names the void.
			if n.Kind == ledger.KindVoid && cp.Sale != nil && cp.Void == nil && cp.Sale.STAN == e.STAN && cp.Sale.Batch == e.Batch {
				return true
			}
		}
		return false
	}
}

// answeredProblems checks, from the failures the monitor saw, that the
// campaign's keys answered retry only where a failure offered it: every
// failure before the last event offered retry, or offered clear and was one
// of the clears the campaign's operator made (a key script cannot look
// before it presses, so this catches the campaign, not the agent).
func answeredProblems(evs []report.Message, clears int) []string {
	var problems []string
	seen := map[uint64]bool{}
	for i, ev := range evs {
		if ev.State != provisioning.StateFailed || ev.Error == nil || i == len(evs)-1 || offersRetry(ev.Error) || seen[ev.Seq] {
			continue
		}
		seen[ev.Seq] = true
		later := false
		for _, x := range evs[i+1:] {
			later = later || x.Seq > ev.Seq
		}
		switch {
		case !later:
		case clears > 0 && slices.Contains(ev.Error.Actions, "clear"):
			clears--
		default:
			problems = append(problems, fmt.Sprintf("the install went on after %s %s, which offers no retry (%s), without an operator's clear",
				ev.Error.Step, ev.Error.Code, strings.Join(ev.Error.Actions, "/")))
		}
	}
	return problems
}
