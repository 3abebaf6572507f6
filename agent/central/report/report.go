// Package report sends the terminal's install progress to central monitoring
// over MQTT (paho.mqtt.golang); docs/mqtt.md is the topic and payload schema.
//
// The install must never wait for the network: Report only queues, and one
// goroutine publishes the queue in order once the broker is reachable. A broker
// that is down when the agent starts, or goes away later, delays reports but
// never blocks or fails the flow. Each report is an event in a Queue: with
// Options.Queue an *outbox.Outbox, so the reports and their seq survive a
// restart, a SIGKILL or a power cut (issue 6); without, a bounded queue in
// memory.
package report

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"

	"github.com/posagent/posagent/provisioning"
)

// Options configures a Reporter.
type Options struct {
	// URL is the broker, "tcp://host:1883" or with TLS "ssl://", "tls://" or
	// "mqtts://host:8883". Credentials belong in Username/Password, not the URL.
	URL      string
	Username string
	Password string // never logged

	// TLS material, for a TLS URL only. CAFile is a PEM bundle that replaces the
	// system roots (a private fleet CA); CertFile and KeyFile are the terminal's
	// client certificate pair and come together.
	CAFile, CertFile, KeyFile string

	// Terminal identity: TID names the topics and the client ID ("posagent-TID");
	// MID and Serial go into the presence payloads and fill a Status that lacks them.
	TID, MID, Serial string

	// Session is this start's number from NextSession (persisted in the state
	// directory, one more on every start). The birth and the Will carry it, so
	// a monitor, and the reporter itself, can tell a late Will of an earlier
	// run from the current state. 0 leaves it out (tools, tests).
	Session uint64

	// Keepalive is the MQTT keepalive; the broker publishes the Will about 1.5×
	// this after the terminal silently vanishes. Default 30s.
	Keepalive time.Duration

	// Queue holds the events until the broker acknowledges them and assigns
	// their seq; pass an *outbox.Outbox (which the caller opens and closes after
	// the reporter's Close) to make them durable. nil means an in-memory queue
	// that a restart loses, with seq starting again at 1.
	Queue Queue

	// QueueSize bounds the in-memory queue (nil Queue only; an outbox has its own
	// bounds). When it is full the oldest event is dropped (the latest status is
	// always kept). Default 1024: a whole install produces a few dozen.
	QueueSize int

	// RetryInterval is the wait between attempts while the first connection is
	// refused. Default 5s. (Reconnects after a loss use paho's own backoff from 1s
	// up to one minute.)
	RetryInterval time.Duration

	// Logger receives connection changes and drops; nil means slog.Default().
	Logger *slog.Logger
}

// Defaults for Options.
const (
	DefaultKeepalive     = 30 * time.Second
	DefaultQueueSize     = 1024
	DefaultRetryInterval = 5 * time.Second
	maxReconnectInterval = time.Minute
	// publishRetryDelay paces retries when the broker refuses a publish on a live
	// connection, so a persistent error does not spin.
	publishRetryDelay = time.Second
)

// ErrClosed is returned by Start after Close and by a second Start.
var ErrClosed = errors.New("report: reporter closed or already started")

// Reporter publishes Status reports to an MQTT broker. It implements
// provisioning.Reporter. Its methods are safe for concurrent use.
type Reporter struct {
	opts   Options
	log    *slog.Logger
	client mqtt.Client

	// closing is set by Close before its offline state: no birth and no
	// report is accepted after it.
	closing atomic.Bool
	// birthMu orders a birth before Close's offline publish, so a birth never
	// overwrites it. It is not mu: Publish can block, and Report must not.
	birthMu sync.Mutex

	// failing is set from the first failed connection attempt to the next
	// connect, so only the first failure of a run is a warning.
	failing atomic.Bool

	// online is signalled (never closed) by the OnConnect handler, to wake a
	// publisher waiting for the connection.
	online chan struct{}
	// stop ends the publisher; done is closed when it has returned.
	stop chan struct{}
	done chan struct{}

	// connected completes when the first connection is up and paho has reset
	// its store for the clean session; nothing is published before that.
	connected mqtt.Token

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

	// subs are the terminal's own topics a caller listens to (Subscribe);
	// onConnect subscribes them again on every connect (clean session).
	subs map[string]func(Inbound)
	tls  bool // the broker URL is TLS: tickets and commands may be subscribed
}

// Inbound is a message that arrived on one of the terminal's own topics.
type Inbound struct {
	Topic    string
	Payload  []byte
	Retained bool
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

// New checks opts and prepares the client. It does not connect: Start does.
func New(opts Options) (*Reporter, error) {
	if opts.TID == "" {
		return nil, errors.New("report: TID is required")
	}
	if strings.ContainsAny(opts.TID, "/+#") || strings.TrimSpace(opts.TID) != opts.TID {
		// The TID is a topic level: a wildcard or slash would publish elsewhere.
		return nil, fmt.Errorf("report: TID %q cannot be an MQTT topic level", opts.TID)
	}
	u, err := url.Parse(opts.URL)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("report: broker URL %q: want scheme://host:port", redact(opts.URL))
	}
	if u.User != nil {
		// paho would use them silently; they would then sit in configs and logs.
		return nil, errors.New("report: put credentials in Username/Password, not in the URL")
	}
	tlsCfg, err := tlsConfig(u.Scheme, opts)
	if err != nil {
		return nil, err
	}
	if opts.Keepalive <= 0 {
		opts.Keepalive = DefaultKeepalive
	}
	if opts.QueueSize <= 0 {
		opts.QueueSize = DefaultQueueSize
	}
	if opts.RetryInterval <= 0 {
		opts.RetryInterval = DefaultRetryInterval
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	q := opts.Queue
	if q == nil {
		q = newMemQueue(opts.QueueSize)
	}
	r := &Reporter{
		opts:    opts,
		q:       q,
		log:     opts.Logger.With("component", "report", "tid", opts.TID),
		online:  make(chan struct{}, 1),
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
		changed: make(chan struct{}),
	}

	co := mqtt.NewClientOptions().
		AddBroker(opts.URL).
		SetClientID("posagent-"+opts.TID).
		SetUsername(opts.Username).
		SetPassword(opts.Password).
		SetKeepAlive(opts.Keepalive).
		SetConnectTimeout(10*time.Second).
		// A clean session: nothing of ours is in paho's store before the first
		// connect, because the publisher publishes only on an open connection
		// (paho resets its store on the first clean connect, which would strand
		// anything queued there while connecting).
		SetCleanSession(true).
		SetStore(newCopyStore()).
		SetConnectRetry(true).
		SetConnectRetryInterval(opts.RetryInterval).
		SetAutoReconnect(true).
		SetMaxReconnectInterval(maxReconnectInterval).
		SetBinaryWill(StateTopic(opts.TID), r.presence(Offline, ReasonConnectionLost), 1, true).
		SetOnConnectHandler(r.onConnect).
		SetConnectionLostHandler(func(_ mqtt.Client, err error) {
			r.log.Warn("report: connection to broker lost; reconnecting", "broker", redact(opts.URL), "err", err)
		}).
		SetConnectionNotificationHandler(func(_ mqtt.Client, n mqtt.ConnectionNotification) {
			if f, ok := n.(mqtt.ConnectionNotificationFailed); ok {
				r.connectFailed(f.Reason)
			}
		})
	if tlsCfg != nil {
		co.SetTLSConfig(tlsCfg)
	}
	r.tls = tlsCfg != nil
	r.client = mqtt.NewClient(co)
	return r, nil
}

// Start begins connecting in the background and starts the publisher. It returns
// at once: a broker that is down only delays the reports. ctx is not kept; the
// reporter runs until Close.
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

	r.log.Info("report: connecting", "broker", redact(r.opts.URL), "client_id", "posagent-"+r.opts.TID)
	// With ConnectRetry the token completes only once connected (or on
	// Disconnect); nobody waits for it.
	r.connected = r.client.Connect()
	go r.publisher()
	return nil
}

// Report queues s for the status and events topics and returns without touching
// the network. It assigns the next seq, fills TID, MID and Serial when s lacks
// them, and masks anything card-like that slipped through unmasked.
func (r *Reporter) Report(_ context.Context, s provisioning.Status) {
	if s.TID == "" {
		s.TID = r.opts.TID
	}
	if s.MID == "" {
		s.MID = r.opts.MID
	}
	if s.Serial == "" {
		s.Serial = r.opts.Serial
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
	seq, err := r.q.AppendWith(EventsTopic(r.opts.TID), false, func(seq uint64) ([]byte, error) {
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
	r.status = &item{seq: r.gen, status: true, topic: StatusTopic(r.opts.TID), retained: true, payload: payload}
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
	if n := len(recs); n > 0 && recs[n-1].Topic == EventsTopic(r.opts.TID) {
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

// Close flushes (bounded by ctx), publishes the retained graceful offline
// state, and disconnects. What is not acknowledged when ctx ends stays in the
// queue: an outbox sends it after the next start, an in-memory queue loses it;
// the error says how much. Close does not close Options.Queue.
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

	r.birthMu.Lock()
	r.closing.Store(true) // from here on no birth can follow our offline
	r.birthMu.Unlock()
	close(r.stop)
	if !started {
		return nil
	}
	<-r.done

	var offErr error
	if r.client.IsConnectionOpen() {
		tok := r.client.Publish(StateTopic(r.opts.TID), 1, true, r.presence(Offline, ReasonShutdown))
		select {
		case <-tok.Done():
			offErr = tok.Error()
		case <-ctx.Done():
			offErr = ctx.Err()
		}
		if offErr != nil {
			offErr = fmt.Errorf("report: offline state: %w", offErr)
		}
	}
	// A clean DISCONNECT: the broker discards the Will, so our "shutdown" stays
	// the retained state. 250 ms lets paho finish writing.
	r.client.Disconnect(250)
	r.log.Info("report: disconnected", "broker", redact(r.opts.URL))
	return errors.Join(flushErr, offErr)
}

// onConnect runs (in its own goroutine) after every connect: paho's store was
// reset for the clean session, so the birth is published again each time.
func (r *Reporter) onConnect(c mqtt.Client) {
	r.failing.Store(false)
	r.log.Info("report: connected", "broker", redact(r.opts.URL))
	// A Will can overtake our birth (a half-open old connection taken over by
	// this one sends its Will late) and leave "offline" retained while we are
	// online. Watching our own state topic lets us answer with a new birth.
	c.Subscribe(StateTopic(r.opts.TID), 1, r.onOwnState)
	// Copied under mu, subscribed outside it: Subscribe can wait for paho's
	// outbound queue, and Report takes mu and must never wait on the network.
	r.mu.Lock()
	subs := make(map[string]func(Inbound), len(r.subs))
	for topic, fn := range r.subs {
		subs[topic] = fn
	}
	r.mu.Unlock()
	for topic, fn := range subs {
		r.subscribe(c, topic, fn)
	}
	r.birth(c)
	select {
	case r.online <- struct{}{}:
	default: // a wake-up is already pending
	}
}

// connectFailed logs a failed connection attempt: the first of a run as a
// warning (an installer's "why is monitoring blind?"), the retries quietly.
// Reasons are network or CONNACK errors; they never hold the password.
func (r *Reporter) connectFailed(err error) {
	if errors.Is(err, errRefusedBadLogin) || errors.Is(err, errRefusedNotAuthorised) {
		err = fmt.Errorf("%w: %w", ErrLoginRefused, err)
	}
	if r.failing.Swap(true) {
		r.log.Debug(MsgUnreachable, "broker", redact(r.opts.URL), "err", err)
		return
	}
	r.log.Warn(MsgUnreachable, "broker", redact(r.opts.URL), "err", err)
}

// MsgUnreachable is the log message of a failed connection attempt; tests and
// log alerts key on it.
const MsgUnreachable = "report: cannot reach broker; will keep trying"

// paho's CONNACK refusals that mean "your credentials", as opposed to "try later".
var (
	errRefusedBadLogin      = packets.ErrorRefusedBadUsernameOrPassword
	errRefusedNotAuthorised = packets.ErrorRefusedNotAuthorised
)

// ErrLoginRefused marks a CONNACK that refused the credentials (user name,
// password, or the client certificate's identity): retrying will not help
// until the configuration changes. It says which, never what was sent.
var ErrLoginRefused = errors.New("report: broker refused the login (check mqtt.username, mqtt.password and the client certificate)")

// ownTopic checks that topic is a concrete topic under the terminal's own
// subtree pos/v1/{tid}/: the broker ACL allows nothing else, and a wildcard
// would deliver other terminals' commands.
func (r *Reporter) ownTopic(topic string) error {
	prefix := TopicPrefix + r.opts.TID + "/"
	if !strings.HasPrefix(topic, prefix) || len(topic) == len(prefix) || strings.ContainsAny(topic, "+#") {
		return fmt.Errorf("report: topic %q is not under %s", topic, prefix)
	}
	return nil
}

// ErrPlainLink is Subscribe's refusal of the ticket and command topics over
// a plain (tcp://, mqtt://) broker URL: tickets and commands are taken over
// TLS only, so that nobody on the path reads or replays them.
var ErrPlainLink = errors.New("report: tickets and commands need a TLS broker URL (ssl://, tls:// or mqtts://)")

// Subscribe calls fn for every message on topic, one of the terminal's own
// topics (TicketTopic, CommandTopic), from this connection on and again after
// every reconnect; retained messages arrive first. fn runs in paho's delivery
// goroutine, in arrival order: it must not block (hand work to a goroutine or
// a buffered channel). Subscribing a topic again replaces its fn. The ticket
// and command topics are refused (ErrPlainLink) unless the URL is TLS.
func (r *Reporter) Subscribe(topic string, fn func(Inbound)) error {
	if err := r.ownTopic(topic); err != nil {
		return err
	}
	if !r.tls && (topic == TicketTopic(r.opts.TID) || topic == CommandTopic(r.opts.TID)) {
		return fmt.Errorf("%w: %s", ErrPlainLink, topic)
	}
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return ErrClosed
	}
	if r.subs == nil {
		r.subs = map[string]func(Inbound){}
	}
	r.subs[topic] = fn
	r.mu.Unlock()
	if r.client.IsConnectionOpen() {
		// Already connected: onConnect may have run without this one. A
		// second SUBSCRIBE of the same filter only replaces the first.
		r.subscribe(r.client, topic, fn)
	}
	return nil
}

// subscribe subscribes at QoS 1 and logs a refusal (an ACL that denies
// the terminal its own topic is a broker misconfiguration worth a warning).
func (r *Reporter) subscribe(c mqtt.Client, topic string, fn func(Inbound)) {
	tok := c.Subscribe(topic, 1, func(_ mqtt.Client, m mqtt.Message) {
		fn(Inbound{Topic: m.Topic(), Payload: m.Payload(), Retained: m.Retained()})
	})
	go func() {
		tok.Wait()
		err := tok.Error()
		if st, ok := tok.(*mqtt.SubscribeToken); ok && err == nil && st.Result()[topic] == 0x80 {
			err = errors.New("refused by the broker (ACL?)")
		}
		if err != nil {
			r.log.Warn("report: subscribe failed", "topic", topic, "err", err)
		}
	}()
}

// Publish sends payload on one of the terminal's own topics (ReplyTopic) at
// QoS 1 and waits for the PUBACK or ctx. It bypasses the outbox: it is for
// answers that only matter now, and it fails at once when not connected.
func (r *Reporter) Publish(ctx context.Context, topic string, retained bool, payload []byte) error {
	if err := r.ownTopic(topic); err != nil {
		return err
	}
	if r.closing.Load() {
		return ErrClosed
	}
	if !r.client.IsConnectionOpen() {
		return fmt.Errorf("report: publish %s: not connected", topic)
	}
	tok := r.client.Publish(topic, 1, retained, payload)
	select {
	case <-tok.Done():
		if err := tok.Error(); err != nil {
			return fmt.Errorf("report: publish %s: %w", topic, err)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("report: publish %s: %w", topic, ctx.Err())
	}
}

// birth publishes the retained online state, unless Close has begun.
func (r *Reporter) birth(c mqtt.Client) {
	r.birthMu.Lock()
	defer r.birthMu.Unlock()
	if r.closing.Load() {
		return
	}
	tok := c.Publish(StateTopic(r.opts.TID), 1, true, r.presence(Online, ""))
	go func() {
		if tok.Wait(); tok.Error() != nil {
			r.log.Warn("report: online state not published", "err", tok.Error())
		}
	}()
}

// onOwnState answers a live offline on our own state topic while we are
// connected: it can only be a stale Will, so we publish our birth again.
// Retained deliveries are the snapshot at subscribe time, which the birth
// right after the subscription replaces anyway.
func (r *Reporter) onOwnState(c mqtt.Client, m mqtt.Message) {
	if m.Retained() {
		return
	}
	var p Presence
	if json.Unmarshal(m.Payload(), &p) != nil || p.State != Offline || !c.IsConnectionOpen() {
		return
	}
	if p.Session > r.opts.Session && r.opts.Session != 0 {
		// A newer run of this terminal (a second agent with the same TID and
		// state copied?) went offline: not ours to contradict.
		r.log.Warn("report: offline state of a newer session on our topic", "session", p.Session, "ours", r.opts.Session)
		return
	}
	if r.closing.Load() {
		return // our own shutdown state coming back
	}
	r.log.Warn("report: a stale offline state was published while connected; publishing online again", "reason", p.Reason)
	go r.birth(c) // not in paho's router goroutine: Publish may block
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
		if !r.waitOnline() {
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
	case <-r.stop:
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
		case <-r.stop:
			return item{}, false
		}
	}
}

// send publishes it at QoS 1 and waits for the PUBACK, keeping the item through
// connection losses: paho resends a publish left unacknowledged on a dropped
// connection after it reconnects, and one refused outright is tried again after
// the next connect. It returns false only when Close stops it.
func (r *Reporter) send(it item) bool {
	topic := it.topic
	// paho empties its store once the first clean connect completes; a publish
	// stored before that would not be resent after an early drop.
	select {
	case <-r.connected.Done():
	case <-r.stop:
		return false
	}
	for {
		// Publish only on an open connection: see SetCleanSession in New.
		if !r.waitOnline() {
			return false
		}
		if it.status && r.superseded() {
			return true // a newer status is queued and goes next
		}
		tok := r.client.Publish(topic, 1, it.retained, it.payload)
		select {
		case <-tok.Done():
		case <-r.stop:
			return false
		}
		if tok.Error() == nil {
			return true
		}
		r.log.Warn("report: publish failed; will retry", "topic", topic, "err", tok.Error())
		if !r.pause() {
			return false
		}
	}
}

// waitOnline waits for an open connection; false means Close stopped it.
func (r *Reporter) waitOnline() bool {
	for !r.client.IsConnectionOpen() {
		select {
		case <-r.online:
		case <-r.stop:
			return false
		}
	}
	return true
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

// presence renders a state payload.
func (r *Reporter) presence(state, reason string) []byte {
	b, _ := json.Marshal(Presence{
		State: state, TID: r.opts.TID, MID: r.opts.MID, Serial: r.opts.Serial,
		Reason: reason, Session: r.opts.Session, Time: time.Now().UTC(),
	})
	return b
}

// tlsConfig builds the TLS settings for a TLS scheme and refuses TLS files on a
// plain one: a configured CA with a tcp:// URL would send the password in clear
// while the operator believes it is protected.
func tlsConfig(scheme string, o Options) (*tls.Config, error) {
	files := o.CAFile != "" || o.CertFile != "" || o.KeyFile != ""
	switch scheme {
	case "tcp", "mqtt":
		if files {
			return nil, fmt.Errorf("report: TLS files given for a %s:// URL; use ssl://, tls:// or mqtts://", scheme)
		}
		return nil, nil
	case "ssl", "tls", "mqtts":
	default:
		return nil, fmt.Errorf("report: broker URL scheme %q: want tcp, mqtt, ssl, tls or mqtts", scheme)
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if o.CAFile != "" {
		pem, err := os.ReadFile(o.CAFile)
		if err != nil {
			return nil, fmt.Errorf("report: CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("report: CA file %s: no PEM certificate", o.CAFile)
		}
		cfg.RootCAs = pool
	}
	if (o.CertFile == "") != (o.KeyFile == "") {
		return nil, errors.New("report: CertFile and KeyFile come together")
	}
	if o.CertFile != "" {
		pair, err := tls.LoadX509KeyPair(o.CertFile, o.KeyFile)
		if err != nil {
			// tls errors name files and formats, never key material.
			return nil, fmt.Errorf("report: client certificate: %w", err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg, nil
}

// redact hides a password in a URL for logs and errors.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}
