package report

import (
	"fmt"
	"sync"

	"github.com/posagent/posagent/agent/central/outbox"
)

// Queue is where Report puts each event before the publisher sends it: a FIFO
// that assigns the seqs and forgets a record once the broker has acknowledged
// it. *outbox.Outbox is the durable one (reports and seq survive a restart, a
// SIGKILL and a power cut); without one the reporter keeps an in-memory queue
// bounded by Options.QueueSize.
//
// The reporter calls it from Report (AppendWith) and from its publisher (Peek,
// Ack); Stats from either. Implementations must be safe for concurrent use.
type Queue interface {
	// AppendWith assigns the next seq, builds the payload for it and queues the
	// record. It must not block on the network; when full it drops old records
	// rather than fail.
	AppendWith(topic string, retained bool, build func(seq uint64) ([]byte, error)) (uint64, error)
	// Peek returns up to n of the oldest records not yet acknowledged.
	Peek(n int) ([]outbox.Record, error)
	// Ack forgets every record up to and including seq.
	Ack(seq uint64) error
	// Stats reports Records, NextSeq, Acked and Dropped (the reporter reads no others).
	Stats() outbox.Stats
}

var (
	_ Queue = (*outbox.Outbox)(nil)
	_ Queue = (*memQueue)(nil)
)

// memQueue is the Queue of a reporter without an outbox: the same contract,
// with the same drop policy for events (the oldest non-retained record first,
// never the newest), held in memory only.
type memQueue struct {
	max int

	mu      sync.Mutex
	recs    []outbox.Record // oldest first
	next    uint64
	acked   uint64
	dropped uint64
}

func newMemQueue(max int) *memQueue { return &memQueue{max: max, next: 1} }

func (q *memQueue) AppendWith(topic string, retained bool, build func(seq uint64) ([]byte, error)) (uint64, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	seq := q.next
	payload, err := build(seq)
	if err != nil {
		return 0, fmt.Errorf("report: build payload: %w", err)
	}
	q.recs = append(q.recs, outbox.Record{Seq: seq, Topic: topic, Retained: retained, Payload: append([]byte{}, payload...)})
	q.next++
	for len(q.recs) > q.max {
		i := -1
		for j, r := range q.recs[:len(q.recs)-1] {
			if !r.Retained {
				i = j
				break
			}
		}
		if i < 0 {
			break
		}
		q.recs = append(q.recs[:i], q.recs[i+1:]...)
		q.dropped++
	}
	return seq, nil
}

func (q *memQueue) Peek(n int) ([]outbox.Record, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	n = min(max(n, 0), len(q.recs))
	out := make([]outbox.Record, n)
	for i, r := range q.recs[:n] {
		out[i] = r
		out[i].Payload = append([]byte{}, r.Payload...)
	}
	return out, nil
}

func (q *memQueue) Ack(seq uint64) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if seq >= q.next {
		return fmt.Errorf("%w: %d", outbox.ErrFutureSeq, seq)
	}
	if seq <= q.acked {
		return nil
	}
	q.acked = seq
	n := 0
	for n < len(q.recs) && q.recs[n].Seq <= seq {
		n++
	}
	q.recs = append(q.recs[:0], q.recs[n:]...)
	return nil
}

func (q *memQueue) Stats() outbox.Stats {
	q.mu.Lock()
	defer q.mu.Unlock()
	return outbox.Stats{Records: len(q.recs), NextSeq: q.next, Acked: q.acked, Dropped: q.dropped}
}
