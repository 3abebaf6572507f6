//go:build !firmware

package monitor

// RabbitMQ's side of queue mode. Not in posctl's firmware build: the field
// tool on a terminal has no cluster to consume (and is spared amqp091-go).

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

var _ Source = (*AMQPSource)(nil)

// Queue mode's AMQP defaults.
const (
	DefaultPrefetch  = 64
	DefaultRebalance = 5 * time.Second
)

// ShardedKeys are the routing keys the shard exchange takes from amq.topic:
// RabbitMQ's MQTT plugin publishes pos/v1/{tid}/events there as
// pos.v1.{tid}.events ('/' and '.' swap). The retained status is left out:
// the event with the same seq carries the same bytes.
var ShardedKeys = []string{"pos.v1.*.events", "pos.v1.*.state", "pos.v1.*.heartbeat"}

// ErrShardMismatch is returned when the queue prefix already has more shard
// queues than asked for: monitors of one prefix must agree on the count, or
// the terminals hashed to the extra queues would be seen by some monitors
// only.
var ErrShardMismatch = errors.New("monitor: shard count differs from the existing queues")

// AMQPOptions configures an AMQPSource.
type AMQPOptions struct {
	// URLs are the cluster's nodes ("amqp://user:pass@host:5672/vhost"),
	// tried in turn: after a loss the source reconnects to the next one.
	URLs []string
	// Prefix names the shard exchange (Prefix) and its queues (Prefix.0 …
	// Prefix.{Shards-1}); "" means DefaultQueuePrefix.
	Prefix string
	// Shards is the number of queues; 0 means DefaultShards.
	Shards int
	// Prefetch bounds the unacknowledged deliveries per queue; 0 means
	// DefaultPrefetch.
	Prefetch int
	// Rebalance is how often the source checks whether it holds more than
	// its share of active queues and hands one over (0 means
	// DefaultRebalance, negative never).
	Rebalance time.Duration
	// Logger reports reconnects (URLs redacted); nil discards.
	Logger *slog.Logger
}

// AMQPSource consumes the shard queues of RabbitMQ. Its topology, declared
// idempotently by every monitor that starts:
//
//	amq.topic --pos.v1.*.{events,state,heartbeat}--> Prefix (x-consistent-hash)
//	Prefix --weight 1--> Prefix.0 … Prefix.{K-1} (quorum, single active consumer)
//
// The hash of the routing key (which holds the TID) sends each terminal's
// events to one queue; single active consumer gives each queue to one
// monitor at a time, the others waiting as standbys. The queues are durable
// and replicated (quorum), so what terminals publish while no monitor runs
// is kept, and a node failure loses none of it.
type AMQPSource struct {
	o    AMQPOptions
	out  chan Delivery
	stop context.CancelFunc
	done chan struct{}

	mu   sync.Mutex
	err  error    // why run ended
	sess *session // the current one, nil while reconnecting

	reconnects atomic.Int64
}

// Reconnects is how many times the source has connected again after a loss.
func (s *AMQPSource) Reconnects() int { return int(s.reconnects.Load()) }

// DialAMQP connects to the first reachable URL, declares the topology and
// starts consuming every shard queue. It fails if no URL answers or the
// declaration is refused (a wrong password should fail the command, not make
// it retry forever); later losses are reconnected, to the next URL, with a
// jittered backoff.
func DialAMQP(ctx context.Context, o AMQPOptions) (*AMQPSource, error) {
	if len(o.URLs) == 0 {
		return nil, errors.New("monitor: no AMQP URL")
	}
	if o.Prefix == "" {
		o.Prefix = DefaultQueuePrefix
	}
	if strings.HasPrefix(o.Prefix, "amq.") {
		return nil, fmt.Errorf("monitor: queue prefix %q: amq. names are the broker's", o.Prefix)
	}
	if o.Shards == 0 {
		o.Shards = DefaultShards
	}
	if o.Shards < 1 || o.Shards > 1024 {
		return nil, fmt.Errorf("monitor: %d shards: want 1 to 1024", o.Shards)
	}
	if o.Prefetch == 0 {
		o.Prefetch = DefaultPrefetch
	}
	if o.Rebalance == 0 {
		o.Rebalance = DefaultRebalance
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	s := &AMQPSource{o: o, out: make(chan Delivery), done: make(chan struct{})}
	var (
		sess *session
		errs []error
		next int
	)
	for i, u := range o.URLs {
		if ctx.Err() != nil {
			errs = append(errs, ctx.Err())
			break
		}
		var err error
		if sess, err = s.open(ctx, u); err == nil {
			next = i + 1
			break
		}
		errs = append(errs, err)
		if errors.Is(err, ErrShardMismatch) || isRefused(err) {
			return nil, err // the same on every node
		}
	}
	if sess == nil {
		return nil, errors.Join(errs...)
	}
	rctx, stop := context.WithCancel(context.Background())
	s.stop = stop
	go s.run(rctx, sess, next)
	return s, nil
}

// Next returns the next delivery of any shard queue.
func (s *AMQPSource) Next(ctx context.Context) (Delivery, error) {
	select {
	case d := <-s.out:
		return d, nil
	case <-ctx.Done():
		return Delivery{}, ctx.Err()
	case <-s.done:
		s.mu.Lock()
		defer s.mu.Unlock()
		return Delivery{}, s.err
	}
}

// Close stops consuming and closes the connection; unacknowledged deliveries
// go back to their queues.
func (s *AMQPSource) Close() error {
	s.stop()
	<-s.done
	return nil
}

// session is one connection with one channel consuming every shard queue,
// and a second channel for the members queue (a failed declaration there
// must not close the shard consumers' channel).
type session struct {
	url     string
	conn    *amqp.Connection
	ch      *amqp.Channel
	feeds   []*feed
	members *amqp.Channel // nil until joined, again after a failure
}

// feed is the consumer of one shard queue.
type feed struct {
	queue      string
	tag        string
	deliveries <-chan amqp.Delivery
	last       atomic.Int64 // UnixNano of the newest delivery, 0 = none yet
	handoff    atomic.Bool  // cancelled on purpose: its closing is not a break
}

func (ss *session) close() {
	_ = ss.conn.Close()
}

// open connects to u, declares the topology and consumes every shard.
func (s *AMQPSource) open(ctx context.Context, u string) (*session, error) {
	conn, err := amqp.DialConfig(u, amqp.Config{Heartbeat: 10 * time.Second, Dial: dialer(ctx)})
	if err != nil {
		return nil, fmt.Errorf("monitor: connect %s: %w", redact(u), err)
	}
	ss := &session{url: u, conn: conn}
	if err := Declare(conn, s.o.Prefix, s.o.Shards); err != nil {
		ss.close()
		return nil, fmt.Errorf("monitor: declare on %s: %w", redact(u), err)
	}
	if ss.ch, err = conn.Channel(); err != nil {
		ss.close()
		return nil, fmt.Errorf("monitor: channel on %s: %w", redact(u), err)
	}
	// Per consumer (global false): each queue keeps at most Prefetch
	// messages in flight to this monitor, so a slow terminal's backlog
	// cannot fill its memory, and a standby takes over at most that many.
	if err := ss.ch.Qos(s.o.Prefetch, 0, false); err != nil {
		ss.close()
		return nil, fmt.Errorf("monitor: qos on %s: %w", redact(u), err)
	}
	for i := range s.o.Shards {
		f, err := ss.consume(ShardQueue(s.o.Prefix, i))
		if err != nil {
			ss.close()
			return nil, fmt.Errorf("monitor: on %s: %w", redact(u), err)
		}
		ss.feeds = append(ss.feeds, f)
	}
	if s.o.Rebalance > 0 {
		ss.join(s.o.Prefix)
	}
	return ss, nil
}

// dialer is amqp.DefaultDial bounded by ctx too: the TCP connect and the
// AMQP handshake get 10 s (amqp091 clears the deadline once open).
func dialer(ctx context.Context) func(network, addr string) (net.Conn, error) {
	return func(network, addr string) (net.Conn, error) {
		d := net.Dialer{Timeout: 10 * time.Second}
		conn, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		if err := conn.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
			conn.Close()
			return nil, err
		}
		return conn, nil
	}
}

// consume registers a consumer on queue. With single active consumer the
// broker makes it the active one only when no earlier consumer is there.
func (ss *session) consume(queue string) (*feed, error) {
	f := &feed{queue: queue, tag: "posctl-" + strconv.FormatUint(rand.Uint64(), 36)}
	var err error
	if f.deliveries, err = ss.ch.Consume(queue, f.tag, false, false, false, false, nil); err != nil {
		return nil, fmt.Errorf("consume %s: %w", queue, err)
	}
	return f, nil
}

// run forwards sess's deliveries until it breaks, then reconnects, round the
// URLs from next, until ctx ends.
func (s *AMQPSource) run(ctx context.Context, sess *session, next int) {
	defer close(s.done)
	defer func() {
		s.mu.Lock()
		if s.err == nil {
			s.err = ErrSourceClosed
		}
		s.mu.Unlock()
	}()
	attempt := 0
	for {
		if sess != nil {
			attempt = 0
			s.forward(ctx, sess)
			sess.close()
			sess = nil
			if ctx.Err() != nil {
				return
			}
			s.o.Logger.Warn("monitor: AMQP connection lost, reconnecting")
		}
		if !sleepCtx(ctx, backoff(attempt)) {
			return
		}
		attempt++
		u := s.o.URLs[next%len(s.o.URLs)]
		next++
		var err error
		if sess, err = s.open(ctx, u); err != nil {
			s.o.Logger.Warn("monitor: AMQP reconnect failed", "err", err)
			continue
		}
		s.reconnects.Add(1)
		s.o.Logger.Info("monitor: AMQP reconnected", "url", redact(u))
	}
}

// forward hands every delivery of sess to Next until a feed breaks (the
// channel or connection broke, or the broker cancelled a consumer) or ctx
// ends. One goroutine per queue keeps each queue's order. Every Rebalance it
// may hand one queue over to another monitor (rebalance).
func (s *AMQPSource) forward(ctx context.Context, sess *session) {
	fctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	handedOff := make(chan *feed)
	pump := func(f *feed) {
		defer wg.Done()
		for {
			select {
			case d, ok := <-f.deliveries:
				if !ok {
					if f.handoff.Load() {
						select {
						case handedOff <- f:
						case <-fctx.Done():
						}
						return
					}
					cancel() // one broken feed means the session is broken
					return
				}
				f.last.Store(time.Now().UnixNano())
				select {
				case s.out <- fromAMQP(d):
				case <-fctx.Done():
					return
				}
			case <-fctx.Done():
				return
			}
		}
	}
	s.setSession(sess)
	defer s.setSession(nil)
	for _, f := range sess.feeds {
		wg.Add(1)
		go pump(f)
	}
	var tick <-chan time.Time
	if s.o.Rebalance > 0 {
		t := time.NewTicker(s.o.Rebalance)
		defer t.Stop()
		tick = t.C
	}
loop:
	for {
		select {
		case <-fctx.Done():
			break loop
		case <-tick:
			s.rebalance(sess)
		case old := <-handedOff:
			// Drained and acknowledged on this channel; queue up again
			// behind the monitor that took it, as its standby.
			f, err := sess.consume(old.queue)
			if err != nil {
				s.o.Logger.Warn("monitor: AMQP re-consume after hand-off failed", "err", err)
				break loop
			}
			s.mu.Lock()
			for i := range sess.feeds {
				if sess.feeds[i] == old {
					sess.feeds[i] = f
				}
			}
			s.mu.Unlock()
			wg.Add(1)
			go pump(f)
		}
	}
	cancel()
	// Closing the connection closes the feeds; deliveries not yet handed
	// over are unacknowledged and come back from the queue.
	sess.close()
	wg.Wait()
}

// join declares the members queue of prefix (classic, auto-delete, nothing
// routed to it) and consumes it: its consumer count is the number of
// monitors sharing the shards, which single active consumer does not tell
// (a quorum queue counts only the active consumer).
func (ss *session) join(prefix string) {
	ch, err := ss.conn.Channel()
	if err != nil {
		return
	}
	q := prefix + ".monitors"
	if _, err := ch.QueueDeclare(q, false, true, false, false, nil); err != nil {
		return // a closed channel: try again on the next rebalance
	}
	if _, err := ch.Consume(q, "", true, false, false, false, nil); err != nil {
		return
	}
	ss.members = ch
}

// monitors is how many monitors consume the members queue, 0 if unknown.
func (ss *session) monitors(prefix string) int {
	if ss.members == nil || ss.members.IsClosed() {
		ss.join(prefix)
	}
	if ss.members == nil {
		return 0
	}
	q, err := ss.members.QueueDeclarePassive(prefix+".monitors", false, true, false, false, nil)
	if err != nil {
		ss.members = nil // its node may be gone: the next round declares it anew
		return 0
	}
	return q.Consumers
}

// rebalance hands one queue over when this monitor is active on more than
// its share, ceil(shards / monitors). RabbitMQ 3.10 makes the first
// consumer of a single-active-consumer queue its active one and ignores
// consumer priorities there, so without this the first monitor to start
// would keep every queue and the others would only wait. Active means
// "delivered to us lately": an idle queue costs nothing wherever it is.
func (s *AMQPSource) rebalance(sess *session) {
	n := sess.monitors(s.o.Prefix)
	if n <= 1 {
		return
	}
	share := (s.o.Shards + n - 1) / n
	since := time.Now().Add(-2 * s.o.Rebalance).UnixNano()
	var active []*feed
	s.mu.Lock()
	for _, f := range sess.feeds {
		if !f.handoff.Load() && f.last.Load() > since {
			active = append(active, f)
		}
	}
	s.mu.Unlock()
	if len(active) <= share {
		return
	}
	f := active[rand.N(len(active))]
	f.handoff.Store(true)
	// Cancel waits for the broker's cancel-ok, after which the feed
	// delivers what it holds and closes; those deliveries are acknowledged
	// on this still-open channel, so none comes again at the next monitor.
	if err := sess.ch.Cancel(f.tag, false); err != nil {
		s.o.Logger.Warn("monitor: AMQP hand-off failed", "queue", f.queue, "err", err)
		return
	}
	s.o.Logger.Info("monitor: handed a queue to another monitor", "queue", f.queue, "monitors", n, "share", share)
}

// setSession records the current session for Active.
func (s *AMQPSource) setSession(sess *session) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sess = sess
}

// Active lists the shard queues that delivered to this source within the
// last d, in order: where it is the active consumer, as far as it can tell.
func (s *AMQPSource) Active(d time.Duration) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	if s.sess == nil {
		return out
	}
	since := time.Now().Add(-d).UnixNano()
	for _, f := range s.sess.feeds {
		if !f.handoff.Load() && f.last.Load() > since {
			out = append(out, f.queue)
		}
	}
	return out
}

// fromAMQP turns a delivery into queue mode's: the routing key back into the
// MQTT topic, and an ack on the channel it came on.
func fromAMQP(d amqp.Delivery) Delivery {
	return Delivery{
		Topic:       TopicOfRoutingKey(d.RoutingKey),
		Payload:     d.Body,
		Redelivered: d.Redelivered,
		Ack:         func() error { return d.Ack(false) },
	}
}

// Declare declares the shard topology of prefix with shards queues on conn
// (each step idempotent: several monitors may start at once). It fails with
// ErrShardMismatch when queue prefix.{shards} exists, i.e. another monitor
// declared more shards.
func Declare(conn *amqp.Connection, prefix string, shards int) error {
	if err := checkShards(conn, prefix, shards); err != nil {
		return err
	}
	// Two monitors declaring the same new quorum queue at once can see a
	// transient refusal while the first creates it: try again on a new
	// channel (a refused declaration closes its channel).
	var err error
	for range 3 {
		if err = declareOnce(conn, prefix, shards); err == nil || isRefused(err) {
			return err
		}
	}
	return err
}

func declareOnce(conn *amqp.Connection, prefix string, shards int) error {
	ch, err := conn.Channel()
	if err != nil {
		return err
	}
	defer ch.Close()
	if err := ch.ExchangeDeclare(prefix, "x-consistent-hash", true, false, false, false, nil); err != nil {
		return fmt.Errorf("exchange %s (is rabbitmq_consistent_hash_exchange enabled?): %w", prefix, err)
	}
	for _, key := range ShardedKeys {
		if err := ch.ExchangeBind(prefix, key, "amq.topic", false, nil); err != nil {
			return fmt.Errorf("bind %s to amq.topic %s: %w", prefix, key, err)
		}
	}
	args := amqp.Table{"x-queue-type": "quorum", "x-single-active-consumer": true}
	for i := range shards {
		q := ShardQueue(prefix, i)
		if _, err := ch.QueueDeclare(q, true, false, false, false, args); err != nil {
			return fmt.Errorf("queue %s: %w", q, err)
		}
		// The binding key of a consistent-hash exchange is the queue's
		// weight: equal weights share the hash ring equally.
		if err := ch.QueueBind(q, "1", prefix, false, nil); err != nil {
			return fmt.Errorf("bind %s: %w", q, err)
		}
	}
	return nil
}

// checkShards fails if queue prefix.{shards} exists.
func checkShards(conn *amqp.Connection, prefix string, shards int) error {
	ch, err := conn.Channel()
	if err != nil {
		return err
	}
	defer ch.Close()
	q := ShardQueue(prefix, shards)
	_, err = ch.QueueDeclarePassive(q, true, false, false, false, nil)
	var ae *amqp.Error
	switch {
	case err == nil:
		return fmt.Errorf("%w: %s exists, so %q has more than %d shards", ErrShardMismatch, q, prefix, shards)
	case errors.As(err, &ae) && ae.Code == amqp.NotFound:
		return nil
	default:
		return err
	}
}

// isRefused is an error the broker will repeat on every node and every try:
// bad login, no permission, a declaration that conflicts with what exists.
func isRefused(err error) bool {
	var ae *amqp.Error
	if errors.As(err, &ae) {
		switch ae.Code {
		case amqp.AccessRefused, amqp.PreconditionFailed, amqp.NotAllowed, amqp.CommandInvalid, amqp.NotImplemented:
			return true
		}
	}
	return errors.Is(err, amqp.ErrSASL) || errors.Is(err, amqp.ErrCredentials) || errors.Is(err, ErrShardMismatch)
}

// backoff is the wait before reconnect attempt n: 100 ms doubling up to 5 s,
// each jittered to between half and all of it, so monitors that lost the
// same node do not reconnect in lockstep.
func backoff(n int) time.Duration {
	d := 100 * time.Millisecond << min(n, 6)
	d = min(d, 5*time.Second)
	return d/2 + rand.N(d/2+1)
}

// sleepCtx waits d or until ctx ends; it reports whether ctx is still live.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// WatchQueues is queue mode's Watch (posctl watch --amqp): it consumes the
// shard queues of a and shows what arrives as q says until ctx ends (nil).
// It fails if the first connection or the declaration fails.
func WatchQueues(ctx context.Context, a AMQPOptions, q QueueOptions) error {
	src, err := DialAMQP(ctx, a)
	if err != nil {
		return err
	}
	defer src.Close()
	return NewConsumer(q).Run(ctx, src)
}
