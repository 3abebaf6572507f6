// Package deliverytest checks what a consumer received on a terminal's events
// topic against the delivery contract of docs/mqtt.md: QoS 1 delivers at
// least once, the consumer deduplicates on seq, and what is left comes in seq
// order with nothing missing. A duplicate is legal; a gap, a reordering and a
// missing tail are not. Every test that reads events checks them here, so
// none asserts exactly-once delivery, which the contract does not promise.
//
// It knows only sequence numbers and imports nothing of the report package,
// so that the report package's own tests can use it too.
package deliverytest

import "fmt"

// Log folds events, in arrival order, as a consumer that deduplicates on seq
// does. The zero value is not usable: see New.
type Log struct {
	first    uint64
	next     uint64 // the seq the consumer waits for
	arrived  []uint64
	dups     int
	problems []string
}

// New starts a log for a consumer that expects every event from first on (1
// for a terminal's whole history; later when the queue dropped the oldest).
// A consumer that goes on reading after an outage keeps its log: events it
// took before may come again.
func New(first uint64) *Log {
	if first == 0 {
		panic("deliverytest: seq starts at 1")
	}
	return &Log{first: first, next: first}
}

// Add takes the next event to arrive and reports whether it is fresh, that
// is, what a deduplicating consumer keeps: false for a duplicate (a seq
// already taken), for seq 0, which a queued event never has, and for a seq
// before first, which should never have come (both recorded as problems). A
// seq beyond the one due is taken, and recorded as a problem: the events in
// between are missing or come out of order.
func (l *Log) Add(seq uint64) (fresh bool) {
	l.arrived = append(l.arrived, seq)
	switch {
	case seq == 0:
		l.problems = append(l.problems, fmt.Sprintf("event without seq (never queued) after seq %d", l.next-1))
		return false
	case seq < l.first:
		l.problems = append(l.problems, fmt.Sprintf("seq %d arrived, before the first expected, %d", seq, l.first))
		return false
	case seq < l.next:
		l.dups++
		return false
	case seq > l.next:
		l.problems = append(l.problems, fmt.Sprintf("seq %d arrived when %d was due: %s missing or out of order", seq, l.next, span(l.next, seq-1)))
	}
	l.next = seq + 1
	return true
}

// Complete reports whether every event up to last has been taken.
func (l *Log) Complete(last uint64) bool { return l.next > last }

// Last is the highest seq taken, first-1 when none was.
func (l *Log) Last() uint64 { return l.next - 1 }

// Dups is how many duplicates were dropped.
func (l *Log) Dups() int { return l.dups }

// Arrived is every seq in arrival order, duplicates included (for messages).
func (l *Log) Arrived() []uint64 { return append([]uint64(nil), l.arrived...) }

// Failed reports whether an event broke the order so far (a gap, a
// reordering, an event without seq or before first); a tail still to come is not a failure
// yet.
func (l *Log) Failed() bool { return len(l.problems) > 0 }

// Problems lists how the events taken break the contract for a consumer that
// expects first..last: the order problems, then the tail that never arrived
// or events beyond last. None means the deduplicated events are exactly
// first..last in order.
func (l *Log) Problems(last uint64) []string {
	out := append([]string(nil), l.problems...)
	switch {
	case l.next <= last:
		out = append(out, fmt.Sprintf("%s never arrived (last taken %d)", span(l.next, last), l.next-1))
	case l.next-1 > last:
		out = append(out, fmt.Sprintf("seq %d taken, beyond the last expected, %d", l.next-1, last))
	}
	return out
}

// Check folds arrived (seq numbers in arrival order) into a log from first
// and returns its problems for first..last.
func Check(arrived []uint64, first, last uint64) []string {
	l := New(first)
	for _, s := range arrived {
		l.Add(s)
	}
	return l.Problems(last)
}

func span(from, to uint64) string {
	if from == to {
		return fmt.Sprintf("event %d", from)
	}
	return fmt.Sprintf("events %d..%d", from, to)
}
