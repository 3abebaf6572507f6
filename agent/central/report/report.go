// Package report sends the terminal's install progress to central monitoring:
// it is the status reporter (provisioning.Reporter) on top of the terminal's
// MQTT session (agent/central/mqtt, a Link here); docs/mqtt.md is the topic
// and payload schema.
//
// The install must never wait for the network: Report only queues, and one
// goroutine publishes the queue in order once the broker is reachable. A broker
// that is down when the agent starts, or goes away later, delays reports but
// never blocks or fails the flow. Each report is an event in a Queue: with
// Options.Queue an *outbox.Outbox, so the reports and their seq survive a
// restart, a SIGKILL or a power cut; without, a bounded queue in memory. The
// connection, the birth and the Will are the session's business, not this
// package's.
package report

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/posagent/posagent/agent/central/mqtt"
	"github.com/posagent/posagent/provisioning"
)

// Link is the MQTT session the reporter publishes on: *mqtt.Client.
type Link interface {
	// Identity names the terminal: TID for the topics, and the TID, MID and
	// Serial a Status is filled with when it lacks them.
	Identity() mqtt.Identity
	// WaitConnected returns nil once a connection is open, an error when ctx
	// ends or the link is closed for good.
	WaitConnected(ctx context.Context) error
	// Publish sends payload at QoS 1 and waits for its PUBACK (across
	// reconnects) or ctx; it fails at once when not connected.
	Publish(ctx context.Context, topic string, retained bool, payload []byte) error
}

var _ Link = (*mqtt.Client)(nil)

// Options configures a Reporter.
type Options struct {
	// Link is the terminal's MQTT session; required. The reporter does not
	// start or close it: whoever made it does, Close after the reporter's.
	Link Link

	// Queue holds the events until the broker acknowledges them and assigns
	// their seq; pass an *outbox.Outbox (which the caller opens and closes after
	// the reporter's Close) to make them durable. nil means an in-memory queue
	// that a restart loses, with seq starting again at 1.
	Queue Queue

	// QueueSize bounds the in-memory queue (nil Queue only; an outbox has its own
	// bounds). When it is full the oldest event is dropped (the latest status is
	// always kept). Default 1024: a whole install produces a few dozen.
	QueueSize int

	// Logger receives drops and publish failures; nil means slog.Default().
	Logger *slog.Logger
}

// Defaults for Options.
const (
	DefaultQueueSize = 1024
	// publishRetryDelay paces retries when the broker refuses a publish on a live
	// connection, so a persistent error does not spin.
	publishRetryDelay = time.Second
)

// ErrClosed is returned by Start after Close and by a second Start.
var ErrClosed = errors.New("report: reporter closed or already started")

// Reporter publishes Status reports on its Link. It implements
// provisioning.Reporter. Its methods are safe for concurrent use.
type Reporter struct {
	link Link
	id   mqtt.Identity
	log  *slog.Logger

	// closing is set by Close once it has flushed: no report is accepted
	// after it.
	closing atomic.Bool

	// ctx ends the publisher (cancel, in Close); done is closed when it has
	// returned.
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}

	// q holds the events; the outbox's own mutex is taken after mu, never
	// before it.
	q Queue

	mu      sync.Mutex
	started bool
	closed  bool   // Close was called
	seq     uint64 // last seq assigned by q
	// gen counts statuses (every Report, and the one Start restores): a status
	// has no seq of its own when the queue could not take its event.
	gen         uint64
	status      *item  // latest status not yet handed to the publisher
	statusAcked uint64 // gen of the latest status acknowledged (or superseded)
	dropped     uint64 // events the queue dropped since the last summary line
	droppedSeen uint64 // the queue's Stats().Dropped when last looked at
	peekFailed  bool   // a failed Peek was logged; quiet until one succeeds
	changed     chan struct{}
}

var _ provisioning.Reporter = (*Reporter)(nil)

// item is one publish: a Message already marshalled.
type item struct {
	// seq is the queue record's seq for an event, the gen for a status.
	seq      uint64
	status   bool // the retained status, not a queue record
	topic    string
	retained bool
	payload  []byte
}

// New checks opts and prepares the reporter. It publishes nothing: Start
// starts the publisher.
func New(opts Options) (*Reporter, error) {
	if opts.Link == nil {
		return nil, errors.New("report: Options.Link is required")
	}
	if opts.QueueSize <= 0 {
		opts.QueueSize = DefaultQueueSize
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	q := opts.Queue
	if q == nil {
		q = newMemQueue(opts.QueueSize)
	}
	id := opts.Link.Identity()
	ctx, cancel := context.WithCancel(context.Background())
	return &Reporter{
		link:    opts.Link,
		id:      id,
		q:       q,
		log:     opts.Logger.With("component", "report", "tid", id.TID),
		ctx:     ctx,
		cancel:  cancel,
		done:    make(chan struct{}),
		changed: make(chan struct{}),
	}, nil
}

// Start starts the publisher, which sends what is queued whenever the link is
// connected, and picks up what an earlier run left in an outbox. It returns at
// once. ctx is not kept; the reporter runs until Close.
func (r *Reporter) Start(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	r.mu.Lock()
	if r.started || r.closed {
		r.mu.Unlock()
		return ErrClosed
	}
	r.started = true
	r.resumeLocked()
	r.mu.Unlock()
	go r.publisher()
	return nil
}

// Report queues s for the status and events topics and returns without touching
// the network. It assigns the next seq, fills TID, MID and Serial when s lacks
// them, and masks anything card-like that slipped through unmasked.
func (r *Reporter) Report(_ context.Context, s provisioning.Status) {
	if s.TID == "" {
		s.TID = r.id.TID
	}
	if s.MID == "" {
		s.MID = r.id.MID
	}
	if s.Serial == "" {
		s.Serial = r.id.Serial
	}
	s, masked := Sanitize(s)
	if masked {
		// The value itself is not logged: it is the thing we must not leak.
		r.log.Error("report: status carried an unmasked card number; masked before sending", "step", s.Step)
	}

	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closing.Load() {
		r.log.Debug("report: closed; status not sent", "step", s.Step, "state", s.State)
		return
	}
	var payload []byte
	seq, err := r.q.AppendWith(mqtt.EventsTopic(r.id.TID), false, func(seq uint64) ([]byte, error) {
		var err error
		payload, err = json.Marshal(Message{Seq: seq, Status: s})
		return payload, err
	})
	if err != nil {
		// The event is lost, but the flow goes on and the retained status still
		// tells the current state, with seq 0: it has no event to pair with.
		// The error names files and sizes, never the payload.
		r.log.Error("report: cannot queue the event; sending the status only", "step", s.Step, "state", s.State, "err", err)
		if payload, err = json.Marshal(Message{Status: s}); err != nil {
			// Status holds only plain data; this would be a programming error.
			r.log.Error("report: cannot encode status", "step", s.Step, "err", err)
			return
		}
	} else {
		r.seq = seq
	}
	if d := r.q.Stats().Dropped; d > r.droppedSeen {
		// The queue dropped the oldest history: the retained status below always
		// holds the newest state, which is what a monitor needs most.
		if r.dropped == 0 {
			r.log.Warn("report: queue full; dropping the oldest events until the broker takes them")
		}
		r.dropped += d - r.droppedSeen
		r.droppedSeen = d
	}
	r.setStatusLocked(payload)
	r.signalLocked()
}

// setStatusLocked makes payload the status the publisher sends next.
func (r *Reporter) setStatusLocked(payload []byte) {
	r.gen++
	r.status = &item{seq: r.gen, status: true, topic: mqtt.StatusTopic(r.id.TID), retained: true, payload: payload}
}

// resumeLocked picks up what an earlier run left in the queue: seq continues
// after the queue's last, and the newest queued event becomes the status again
// (republishing a retained status the broker may already hold is harmless).
func (r *Reporter) resumeLocked() {
	st := r.q.Stats()
	if st.NextSeq > 0 {
		r.seq = max(r.seq, st.NextSeq-1)
	}
	if st.Records == 0 {
		return
	}
	r.log.Info("report: resuming reports queued by an earlier run", "queued", st.Records, "next_seq", st.NextSeq)
	if r.status != nil {
		return // Report came before Start: that status is newer
	}
	recs, err := r.q.Peek(st.Records)
	if err != nil {
		r.log.Warn("report: cannot read the queue", "err", err)
		return
	}
	if n := len(recs); n > 0 && recs[n-1].Topic == mqtt.EventsTopic(r.id.TID) {
		r.setStatusLocked(recs[n-1].Payload)
	}
}

// Flush waits until every report queued before the call is acknowledged by the
// broker (PUBACK) or dropped by the queue bound, or ctx ends.
func (r *Reporter) Flush(ctx context.Context) error {
	r.mu.Lock()
	seq, gen := r.seq, r.gen
	r.mu.Unlock()
	for {
		r.mu.Lock()
		done, pending := r.flushedLocked(seq, gen)
		ch := r.changed
		r.mu.Unlock()
		if done {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("report: flush: %d reports not acknowledged: %w", pending, ctx.Err())
		}
	}
}

// flushedLocked reports whether every event up to seq and the status of gen
// are settled, and how many items (at most) are not.
func (r *Reporter) flushedLocked(seq, gen uint64) (bool, int) {
	pending := 0
	// Ack covers every record up to its seq, and the newest record is never
	// dropped, so Acked reaches seq; an empty queue has nothing left either way.
	if st := r.q.Stats(); st.Acked < seq && st.Records > 0 {
		pending = st.Records
	}
	if r.statusAcked < gen {
		pending++
	}
	return pending == 0, pending
}

// Close flushes (bounded by ctx) and stops the publisher. What is not
// acknowledged when ctx ends stays in the queue: an outbox sends it after the
// next start, an in-memory queue loses it; the error says how much. Close
// does not close Options.Queue nor the Link: close the link after the
// reporter, and its Close publishes the retained shutdown state after the
// last report.
func (r *Reporter) Close(ctx context.Context) error {
	r.mu.Lock()
	started, already := r.started, r.closed
	r.closed = true
	r.mu.Unlock()
	if already {
		return nil
	}
	var flushErr error
	if started {
		flushErr = r.Flush(ctx)
	}
	r.closing.Store(true)
	r.cancel()
	if started {
		<-r.done
	}
	return flushErr
}

// publisher sends the queue in order, one publish at a time: each waits for its
// PUBACK before the next is taken, so the broker sees the reports in order even
// across reconnects. The newest status goes before older events, so that after
// an outage the retained current state is right first and history follows.
func (r *Reporter) publisher() {
	defer close(r.done)
	for {
		// Wait for the broker before choosing: after an outage the choice then
		// reflects everything reported meanwhile (the newest status, not the
		// one that was current when the link went down).
		if r.link.WaitConnected(r.ctx) != nil {
			return
		}
		it, ok := r.take()
		if !ok {
			return
		}
		if !r.send(it) {
			return
		}
		var ackErr error
		if !it.status {
			// Outside mu: an outbox Ack fsyncs, and Report need not wait for it.
			ackErr = r.q.Ack(it.seq)
		}
		r.mu.Lock()
		if it.status && it.seq > r.statusAcked {
			r.statusAcked = it.seq
		}
		if r.dropped > 0 {
			r.log.Warn("report: broker reachable again; events were dropped while the queue was full", "dropped", r.dropped)
			r.dropped = 0
		}
		r.signalLocked()
		r.mu.Unlock()
		if ackErr != nil {
			// The record stays queued and the next pass sends it again: a
			// duplicate that monitors drop by seq, rather than a loss.
			r.log.Warn("report: cannot remove an acknowledged event from the queue; will send it again", "seq", it.seq, "err", ackErr)
			if !r.pause() {
				return
			}
		}
	}
}

// pause waits publishRetryDelay; false means Close stopped it.
func (r *Reporter) pause() bool {
	t := time.NewTimer(publishRetryDelay)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.ctx.Done():
		return false
	}
}

// take waits for the next item or stop: the status if one is waiting, else the
// oldest queued event, which stays queued until the publisher Acks it.
func (r *Reporter) take() (item, bool) {
	for {
		r.mu.Lock()
		var it *item
		if r.status != nil {
			it, r.status = r.status, nil
		} else {
			recs, err := r.q.Peek(1)
			switch {
			case err != nil:
				// A failed outbox stays failed until reopened: only the status
				// can still go, so wait for the next one.
				if !r.peekFailed {
					r.log.Error("report: cannot read the queue; only the status is sent", "err", err)
					r.peekFailed = true
				}
			case len(recs) > 0:
				rec := recs[0]
				it = &item{seq: rec.Seq, topic: rec.Topic, retained: rec.Retained, payload: rec.Payload}
				fallthrough
			default:
				r.peekFailed = false
			}
		}
		if it != nil {
			r.mu.Unlock()
			return *it, true
		}
		ch := r.changed
		r.mu.Unlock()
		select {
		case <-ch:
		case <-r.ctx.Done():
			return item{}, false
		}
	}
}

// send publishes it at QoS 1 and waits for the PUBACK, keeping the item through
// connection losses: the link resends a publish left unacknowledged on a dropped
// connection after it reconnects, and one refused outright is tried again after
// the next connect. It returns false only when Close stops it (or the link
// is closed for good).
func (r *Reporter) send(it item) bool {
	for {
		// The link publishes only on an open connection.
		if r.link.WaitConnected(r.ctx) != nil {
			return false
		}
		if it.status && r.superseded() {
			return true // a newer status is queued and goes next
		}
		err := r.link.Publish(r.ctx, it.topic, it.retained, it.payload)
		if err == nil {
			return true
		}
		if r.ctx.Err() != nil {
			return false
		}
		r.log.Warn("report: publish failed; will retry", "topic", it.topic, "err", err)
		if !r.pause() {
			return false
		}
	}
}

// superseded reports whether a newer status than the one being sent is queued.
func (r *Reporter) superseded() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.status != nil
}

// signalLocked wakes everyone waiting for a queue change (Flush, the publisher).
func (r *Reporter) signalLocked() {
	close(r.changed)
	r.changed = make(chan struct{})
}
