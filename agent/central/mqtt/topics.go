package mqtt

import "time"

// TopicPrefix starts every topic of this schema. The version is in the topic so a
// later schema can run beside this one on the same broker.
const TopicPrefix = "pos/v1/"

// StateTopic carries the terminal's presence (retained): a Presence that is
// "online" after each connect and "offline" from the Will or a clean shutdown.
func StateTopic(tid string) string { return TopicPrefix + tid + "/state" }

// StatusTopic carries the latest status report (retained): the terminal's
// current state for a monitor that connects at any time (agent/central/report).
func StatusTopic(tid string) string { return TopicPrefix + tid + "/status" }

// EventsTopic carries every status report in order (not retained): the history.
func EventsTopic(tid string) string { return TopicPrefix + tid + "/events" }

// TicketTopic is where central publishes the terminal's signed install ticket
// (retained; agent/central/ticket).
func TicketTopic(tid string) string { return TopicPrefix + tid + "/ticket" }

// CommandTopic is where central sends commands to one terminal
// (agent/central/command).
func CommandTopic(tid string) string { return TopicPrefix + tid + "/cmd" }

// ReplyTopic carries the terminal's answers to commands.
func ReplyTopic(tid string) string { return TopicPrefix + tid + "/cmd/reply" }

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
	// client is created and published by the broker later, verbatim: for a
	// Will it is not the time of the loss (use the arrival time for that).
	Time time.Time `json:"time"`
}

// HeartbeatTopic carries the terminal's heartbeat while it is connected (QoS 0,
// not retained): presence that does not depend on the broker delivering the
// Will, which a clustered broker does not when the terminal's node dies.
func HeartbeatTopic(tid string) string { return TopicPrefix + tid + "/heartbeat" }

// Heartbeat is the payload of the heartbeat topic, in this field order.
type Heartbeat struct {
	TID string `json:"tid"`
	// Session is this start's number, as in the birth and the Will (0 when
	// the client has none).
	Session uint64 `json:"session"`
	// Beat counts the heartbeats of this run: 1, 2, 3…, across reconnects.
	// A gap is a beat that did not go out (no connection at that moment).
	Beat uint64 `json:"beat"`
	// IntervalS is the interval in whole seconds (rounded up, at least 1):
	// central counts a terminal silent after 3 × IntervalS without a beat.
	IntervalS int64 `json:"interval_s"`
	// Time is when the beat was written, UTC, to the second.
	Time time.Time `json:"time"`
}
