package report

import (
	"regexp"

	"github.com/posagent/posagent/provisioning"
	"github.com/posagent/posagent/provisioning/pan"
)

// Message is the payload of the status and events topics: the Status fields
// (provisioning.Status marshalled as is) plus seq.
//
// Seq counts reports 1, 2, 3… and lets a monitor order events and drop the
// duplicates that QoS 1 and replays after a restart can deliver. With the
// durable outbox (Options.Queue) it survives restarts and never repeats for a
// terminal; with the in-memory queue it starts again at 1 with each process. A
// status whose event could not be queued (a disk error) carries seq 0.
type Message struct {
	Seq uint64 `json:"seq"`
	provisioning.Status
}

// cardLike finds runs of digits long enough to be a PAN (ISO/IEC 7812: 12–19;
// 13 and up is what PCI scanners flag). MID (15 digits) is never run through it.
var cardLike = regexp.MustCompile(`[0-9]{13,}`)

// Sanitize returns s with every card-like digit run masked, without changing
// the caller's value (pointer fields are copied before they are edited).
//
// The flow already hands over masked numbers; this is the second lock, so a bug
// upstream cannot put a full PAN on a broker that the whole support desk reads
// (PCI DSS 3.3/3.4). Card fields are masked whatever the digits; free text only
// where the digits pass the Luhn check, so that a MID or a long reference quoted
// in a message stays readable. Monitors use it too, for payloads that other
// publishers may have produced.
func Sanitize(s provisioning.Status) (out provisioning.Status, changed bool) {
	card := func(v string) string {
		m := cardLike.ReplaceAllStringFunc(v, pan.Mask)
		changed = changed || m != v
		return m
	}
	text := func(v string) string {
		m := cardLike.ReplaceAllStringFunc(v, func(run string) string {
			if len(run) > 19 || !pan.LuhnValid(run) {
				return run
			}
			return pan.Mask(run)
		})
		changed = changed || m != v
		return m
	}
	s.Card = card(s.Card)
	s.Message = text(s.Message)
	if s.Error != nil {
		e := *s.Error
		e.Message = text(e.Message)
		s.Error = &e
	}
	if s.Sale != nil {
		t := *s.Sale
		t.Masked = card(t.Masked)
		s.Sale = &t
	}
	if s.Void != nil {
		t := *s.Void
		t.Masked = card(t.Masked)
		s.Void = &t
	}
	return s, changed
}
