package report

import (
	"regexp"
	"time"

	"github.com/posagent/posagent/provisioning"
	"github.com/posagent/posagent/provisioning/pan"
)

// TopicPrefix starts every topic of this schema. The version is in the topic so a
// later schema can run beside this one on the same broker.
const TopicPrefix = "pos/v1/"

// StateTopic carries the terminal's presence (retained): a Presence that is
// "online" after each connect and "offline" from the Will or a clean shutdown.
func StateTopic(tid string) string { return TopicPrefix + tid + "/state" }

// StatusTopic carries the latest Message (retained): the terminal's current state
// for a monitor that connects at any time.
func StatusTopic(tid string) string { return TopicPrefix + tid + "/status" }

// EventsTopic carries every Message in order (not retained): the history.
func EventsTopic(tid string) string { return TopicPrefix + tid + "/events" }

// TicketTopic is where central publishes the terminal's signed install ticket
// (retained; agent/ticket).
func TicketTopic(tid string) string { return TopicPrefix + tid + "/ticket" }

// CommandTopic is where central sends commands to one terminal (agent/command).
func CommandTopic(tid string) string { return TopicPrefix + tid + "/cmd" }

// ReplyTopic carries the terminal's answers to commands.
func ReplyTopic(tid string) string { return TopicPrefix + tid + "/cmd/reply" }

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

// Presence values of the state topic.
const (
	Online  = "online"
	Offline = "offline"
)

// Reasons an offline Presence gives.
const (
	// ReasonConnectionLost is the Will: the broker published it because the
	// connection ended without a DISCONNECT (power cut, network loss, crash).
	ReasonConnectionLost = "connection-lost"
	// ReasonShutdown is published by Close: the agent stopped on purpose.
	ReasonShutdown = "shutdown"
)

// Presence is the payload of the state topic.
type Presence struct {
	State  string `json:"state"` // Online or Offline
	TID    string `json:"tid"`
	MID    string `json:"mid,omitempty"`
	Serial string `json:"serial"`
	Reason string `json:"reason,omitempty"` // offline only
	// Session is the agent's start count (Options.Session): the birth and the
	// Will of one run carry the same number, and every start has a larger one,
	// so a monitor drops an offline whose session is older than an online it
	// has seen (Stale). 0 means unknown (omitted).
	Session uint64 `json:"session,omitempty"`
	// Time is when the agent wrote the payload. A Will is written when the
	// reporter is created and published by the broker later, verbatim: for a Will it
	// is not the time of the loss (use the arrival time for that).
	Time time.Time `json:"time"`
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
