// Package mqtt is the terminal's MQTT session with central monitoring
// (docs/mqtt.md): it connects to one of the fleet's brokers (tcp://, or TLS
// with a private CA and a client certificate; credentials; keepalive),
// registers the Will and publishes the birth with this start's session
// number, moves to the next broker with a jittered backoff when a connection
// fails or is lost, answers a stale Will with a new birth, beats a heartbeat
// while connected, and publishes the retained shutdown state on Close. On top
// of it, Subscribe and Publish are the primitives the reporter
// (agent/central/report), the ticket source and the command server run on,
// limited to the terminal's own topics. The topic names and the presence and
// heartbeat payloads of the schema live here as well.
//
// It is the only package of the terminal that imports paho
// (github.com/eclipse/paho.mqtt.golang): the others see a Client, or a small
// interface of their own that Client implements.
package mqtt

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"
)

// Options configures a Client.
type Options struct {
	// URLs are the brokers of the fleet, all "tcp://host:1883" or all TLS,
	// "ssl://", "tls://" or "mqtts://host:8883" (a list mixing the two is
	// refused: the ticket and command subscriptions depend on TLS). The
	// client starts on the one StartIndex picks for its TID and moves round
	// robin to the next after every failed or lost connection (docs/mqtt.md,
	// "Brokers and failover"). Credentials belong in Username/Password, not
	// in a URL.
	URLs []string
	// URL is one broker: a shorthand for URLs with one element. Set one of
	// URL and URLs.
	URL      string
	Username string
	Password string // never logged

	// TLS material, for TLS URLs only, the same for every broker. CAFile is a
	// PEM bundle that replaces the system roots (a private fleet CA);
	// CertFile and KeyFile are the terminal's client certificate pair and
	// come together.
	CAFile, CertFile, KeyFile string

	// Terminal identity: TID names the topics and the client ID ("posagent-TID");
	// MID and Serial go into the presence payloads (and, through Identity, into
	// the reports that lack them).
	TID, MID, Serial string

	// Session is this start's number from NextSession (persisted in the state
	// directory, one more on every start). The birth, the Will and the
	// heartbeat carry it, so a monitor, and the client itself, can tell a
	// late Will of an earlier run from the current state. 0 leaves it out
	// (tools, tests).
	Session uint64

	// Keepalive is the MQTT keepalive; the broker publishes the Will about 1.5×
	// this after the terminal silently vanishes. A connection that stayed up
	// this long resets the reconnect backoff. Default 30s.
	Keepalive time.Duration

	// ReconnectMax caps the wait before a reconnect attempt: the n-th attempt
	// in a row waits a random time between 0 and min(ReconnectMax,
	// ReconnectBase·2ⁿ) ("full jitter"). Default one minute. Busy answers
	// in a row raise it, up to BusyFactor·ReconnectMax.
	ReconnectMax time.Duration

	// RetryInterval is what ReconnectMax was called when it only paced the
	// first connection's retries; a caller that sets it and not ReconnectMax
	// gets it as ReconnectMax (tools and tests that want quick retries).
	RetryInterval time.Duration

	// ConnectJitter delays the first connection attempt after Start by a
	// random time between 0 and ConnectJitter, so that a region's terminals
	// coming back from one power cut do not all connect in the same second.
	// 0 (the default here; the agent's configuration defaults to 10 s)
	// connects at once.
	ConnectJitter time.Duration

	// Heartbeat is the interval of the heartbeat published on HeartbeatTopic
	// while connected (docs/mqtt.md, "Heartbeat"). 0 publishes none (tools,
	// tests; the agent's configuration defaults to 30 s).
	Heartbeat time.Duration

	// Rand draws the random waits (connect jitter, backoff); nil means
	// math/rand/v2's global source. Clock times them and the heartbeat; nil
	// means the system clock. Both are seams for tests.
	Rand  Rand
	Clock Clock

	// Logger receives connection changes; nil means slog.Default().
	Logger *slog.Logger
}

// Defaults for Options.
const (
	DefaultKeepalive    = 30 * time.Second
	DefaultReconnectMax = time.Minute
	// ReconnectBase is the first step of the reconnect backoff.
	ReconnectBase = time.Second
	// BusyFactor bounds how far busy answers in a row raise the backoff's
	// cap: up to BusyFactor·ReconnectMax (8 min at the default).
	BusyFactor = 8
	// connectTimeout bounds one connection attempt (TCP, TLS and CONNACK).
	connectTimeout = 10 * time.Second
	// ProtocolVersion is MQTT 3.1.1, set on every paho client: left unset,
	// paho answers any refused CONNACK (a busy broker's "server
	// unavailable", a bad login) or a CONNACK timeout with a second
	// connection at once, in MQTT 3.1, so each failed attempt costs the
	// broker two logins and two client-ID registrations just when it is
	// overloaded. Every broker posagent supports speaks 3.1.1.
	ProtocolVersion = 4
)

// Identity is the terminal a Client speaks for.
type Identity struct {
	TID, MID, Serial string
}

// Inbound is a message that arrived on one of the terminal's own topics.
type Inbound struct {
	Topic    string
	Payload  []byte
	Retained bool
}

// Errors callers branch on.
var (
	// ErrClosed is returned by Start after Close and by a second Start, and by
	// Subscribe, Publish and WaitConnected once Close has begun.
	ErrClosed = errors.New("mqtt: client closed or already started")

	// ErrNotConnected is wrapped by Publish when no connection is open: its
	// messages only matter now, so they are not queued (the reporter's outbox
	// is the queue that survives outages).
	ErrNotConnected = errors.New("mqtt: not connected")

	// ErrPlainLink is Subscribe's refusal of the ticket and command topics
	// over plain (tcp://, mqtt://) broker URLs: tickets and commands are
	// taken over TLS only, so that nobody on the path reads or replays them.
	ErrPlainLink = errors.New("mqtt: tickets and commands need a TLS broker URL (ssl://, tls:// or mqtts://)")

	// ErrLoginRefused marks a CONNACK that refused the credentials (user name,
	// password, or the client certificate's identity): retrying will not help
	// until the configuration changes. It says which, never what was sent.
	ErrLoginRefused = errors.New("mqtt: broker refused the login (check mqtt.username, mqtt.password and the client certificate)")
)

// MsgUnreachable is the log message of a failed connection attempt; tests and
// log alerts key on it.
const MsgUnreachable = "mqtt: cannot reach broker; will keep trying"

// paho's CONNACK refusals that mean "your credentials", as opposed to "try later".
var (
	errRefusedBadLogin      = packets.ErrorRefusedBadUsernameOrPassword
	errRefusedNotAuthorised = packets.ErrorRefusedNotAuthorised
	errRefusedUnavailable   = packets.ErrorRefusedServerUnavailable
)

// Client is the terminal's MQTT session: one connection at a time, each a
// paho client of its own with a clean session, the terminal's client ID,
// its Will and its birth. Its methods are safe for concurrent use.
type Client struct {
	opts   Options
	log    *slog.Logger
	urls   []string
	start  int         // index in urls of the first broker tried (StartIndex)
	tls    bool        // the broker URLs are TLS: tickets and commands may be subscribed
	tlsCfg *tls.Config // nil for plain URLs
	will   []byte
	rand   Rand
	clock  Clock

	// closing is set by Close before its offline state: no birth, heartbeat
	// or publish is accepted after it.
	closing atomic.Bool
	// birthMu orders a birth or a heartbeat before Close's offline publish,
	// so neither follows it.
	birthMu sync.Mutex

	// failing is set from the first failed connection attempt to the next
	// connect, so only the first failure of a run is a warning.
	failing atomic.Bool

	// beats counts the heartbeats of this run, across connections.
	beats atomic.Uint64

	// started is closed by Start; closed by Close; loopDone when the
	// connection loop has returned.
	started, closed, loopDone chan struct{}
	// beating counts the heartbeat goroutines, which Close waits for.
	beating sync.WaitGroup

	mu          sync.Mutex
	startCalled bool
	closeCalled bool
	// cur is the connection being attempted or open (nil before the first).
	cur *conn
	// up is closed (and replaced) after every connect, once the subscriptions
	// and the birth are on their way: it wakes WaitConnected.
	up chan struct{}
	// subs are the terminal's own topics a caller listens to (Subscribe);
	// onConnect subscribes them again on every connect (clean session).
	subs map[string]func(Inbound)
}

// conn is one connection: its own paho client to one broker.
type conn struct {
	url string
	pc  paho.Client
	// born is set once onConnect has queued the subscriptions and the birth:
	// paho counts a connection open before onConnect runs, and nothing of
	// ours may overtake the birth on the wire.
	born atomic.Bool
	// lost is closed when paho reports the connection lost.
	lost     chan struct{}
	lostOnce sync.Once
}

// open reports whether Publish may go out on cn now.
func (cn *conn) open() bool { return cn != nil && cn.pc.IsConnectionOpen() && cn.born.Load() }

// New checks opts and prepares the client. It does not connect: Start does.
func New(opts Options) (*Client, error) {
	if opts.TID == "" {
		return nil, errors.New("mqtt: TID is required")
	}
	if strings.ContainsAny(opts.TID, "/+#") || strings.TrimSpace(opts.TID) != opts.TID {
		// The TID is a topic level: a wildcard or slash would publish elsewhere.
		return nil, fmt.Errorf("mqtt: TID %q cannot be an MQTT topic level", opts.TID)
	}
	urls, tls, err := brokerURLs(opts.URL, opts.URLs)
	if err != nil {
		return nil, err
	}
	scheme := "tcp"
	if tls {
		scheme = "ssl"
	}
	tlsCfg, err := tlsConfig(scheme, opts.CAFile, opts.CertFile, opts.KeyFile)
	if err != nil {
		return nil, err
	}
	if opts.Keepalive <= 0 {
		opts.Keepalive = DefaultKeepalive
	}
	if opts.ReconnectMax <= 0 {
		opts.ReconnectMax = DefaultReconnectMax
		if opts.RetryInterval > 0 {
			opts.ReconnectMax = opts.RetryInterval
		}
	}
	if opts.ConnectJitter < 0 || opts.Heartbeat < 0 {
		return nil, errors.New("mqtt: ConnectJitter and Heartbeat cannot be negative")
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	c := &Client{
		opts:     opts,
		log:      opts.Logger.With("component", "mqtt", "tid", opts.TID),
		urls:     urls,
		start:    StartIndex(opts.TID, len(urls)),
		tls:      tls,
		tlsCfg:   tlsCfg,
		rand:     opts.Rand,
		clock:    opts.Clock,
		started:  make(chan struct{}),
		closed:   make(chan struct{}),
		loopDone: make(chan struct{}),
		up:       make(chan struct{}),
	}
	if c.rand == nil {
		c.rand = globalRand{}
	}
	if c.clock == nil {
		c.clock = systemClock{}
	}
	// The Will is written once, when the session is made (its time says so),
	// and registered with every connection.
	c.will = c.presence(Offline, ReasonConnectionLost)
	return c, nil
}

// Identity is the terminal the client was made for.
func (c *Client) Identity() Identity {
	return Identity{TID: c.opts.TID, MID: c.opts.MID, Serial: c.opts.Serial}
}

// Start begins connecting in the background and returns at once: a broker
// that is down only delays what waits for it. The first attempt waits
// ConnectJitter at most; failed attempts and lost connections move to the
// next broker after the backoff. ctx is not kept; the client runs until
// Close. Subscribe before Start to get the retained messages of the first
// connection.
func (c *Client) Start(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.startCalled || c.closeCalled {
		return ErrClosed
	}
	c.startCalled = true
	brokers := make([]string, len(c.urls))
	for i, u := range c.urls {
		brokers[i] = redact(u)
	}
	c.log.Info("mqtt: connecting", "brokers", brokers, "first", redact(c.urls[c.start]), "client_id", "posagent-"+c.opts.TID)
	close(c.started)
	go c.run()
	return nil
}

// current is the connection being attempted or open, nil before the first.
func (c *Client) current() *conn {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cur
}

// WaitConnected returns nil once a connection is open and its birth and
// subscriptions are queued, ErrClosed once Close has begun, or ctx's error.
// The connection may of course drop right after it returns.
func (c *Client) WaitConnected(ctx context.Context) error {
	select {
	case <-c.started:
	case <-c.closed:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	for {
		// up is taken before looking at the connection: a connect in between
		// closes this very channel.
		c.mu.Lock()
		up, cn := c.up, c.cur
		c.mu.Unlock()
		if c.closing.Load() {
			return ErrClosed
		}
		if cn.open() {
			return nil
		}
		select {
		case <-up:
		case <-c.closed:
			return ErrClosed
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Close publishes the retained graceful offline state (bounded by ctx) and
// disconnects cleanly, so the broker discards the Will and "shutdown" stays
// the state. Close what runs on the client first (the reporter flushes in its
// own Close): nothing is published after this one, no heartbeat either. A
// second Close returns nil.
func (c *Client) Close(ctx context.Context) error {
	c.mu.Lock()
	started, already := c.startCalled, c.closeCalled
	c.closeCalled = true
	c.mu.Unlock()
	if already {
		return nil
	}
	c.birthMu.Lock()
	c.closing.Store(true) // from here on no birth or heartbeat can follow our offline
	c.birthMu.Unlock()
	close(c.closed)
	if !started {
		return nil
	}
	// Every wait of the loop and the heartbeats also waits for closed.
	<-c.loopDone
	c.beating.Wait()
	cn := c.current()
	if cn == nil {
		return nil
	}
	var offErr error
	wasOpen := cn.pc.IsConnectionOpen()
	if wasOpen {
		tok := cn.pc.Publish(StateTopic(c.opts.TID), 1, true, c.presence(Offline, ReasonShutdown))
		select {
		case <-tok.Done():
			offErr = tok.Error()
		case <-ctx.Done():
			offErr = ctx.Err()
		}
		if offErr != nil {
			offErr = fmt.Errorf("mqtt: offline state: %w", offErr)
		}
	}
	// A clean DISCONNECT: the broker discards the Will, so our "shutdown" stays
	// the retained state. 250 ms lets paho finish writing.
	cn.pc.Disconnect(250)
	if wasOpen {
		c.log.Info("mqtt: disconnected", "broker", redact(cn.url))
	}
	return offErr
}

// onConnect runs (in its own goroutine) after every connect: the connection
// has a clean session, so subscriptions and the birth are sent each time.
func (c *Client) onConnect(cn *conn, pc paho.Client) {
	c.failing.Store(false)
	c.log.Info("mqtt: connected", "broker", redact(cn.url))
	// A Will can overtake our birth (a half-open old connection taken over by
	// this one sends its Will late, or another node of the cluster delivers
	// it after we moved) and leave "offline" retained while we are online.
	// Watching our own state topic lets us answer with a new birth. QoS 0,
	// as every subscription of ours (subscribe says why).
	pc.Subscribe(StateTopic(c.opts.TID), 0, c.onOwnState)
	// Copied under mu, subscribed outside it: Subscribe can wait for paho's
	// outbound queue.
	c.mu.Lock()
	subs := make(map[string]func(Inbound), len(c.subs))
	for topic, fn := range c.subs {
		subs[topic] = fn
	}
	c.mu.Unlock()
	for topic, fn := range subs {
		c.subscribe(pc, topic, fn)
	}
	c.birth(pc)
	cn.born.Store(true)
	c.mu.Lock()
	close(c.up)
	c.up = make(chan struct{})
	// Under mu, as Close sets closeCalled: no heartbeat starts after Close
	// began waiting for them.
	if c.opts.Heartbeat > 0 && !c.closeCalled {
		c.beating.Add(1)
		go c.heartbeat(cn)
	}
	c.mu.Unlock()
}

// connectFailed logs a failed connection attempt: the first of a run as a
// warning (an installer's "why is monitoring blind?"), the retries quietly.
// Reasons are network or CONNACK errors; they never hold the password.
func (c *Client) connectFailed(url string, err error) {
	err = loginErr(err)
	if c.failing.Swap(true) {
		c.log.Debug(MsgUnreachable, "broker", redact(url), "err", err)
		return
	}
	c.log.Warn(MsgUnreachable, "broker", redact(url), "err", err)
}

// loginErr marks a CONNACK refusal of the credentials with ErrLoginRefused.
func loginErr(err error) error {
	if errors.Is(err, errRefusedBadLogin) || errors.Is(err, errRefusedNotAuthorised) {
		return fmt.Errorf("%w: %w", ErrLoginRefused, err)
	}
	return err
}

// ownTopic checks that topic is a concrete topic under the terminal's own
// subtree pos/v1/{tid}/: the broker ACL allows nothing else, and a wildcard
// would deliver other terminals' commands.
func (c *Client) ownTopic(topic string) error {
	prefix := TopicPrefix + c.opts.TID + "/"
	if !strings.HasPrefix(topic, prefix) || len(topic) == len(prefix) || strings.ContainsAny(topic, "+#") {
		return fmt.Errorf("mqtt: topic %q is not under %s", topic, prefix)
	}
	return nil
}

// Subscribe calls fn for every message on topic, one of the terminal's own
// topics (TicketTopic, CommandTopic), from this connection on and again after
// every reconnect, on whichever broker; retained messages arrive first. fn
// runs in paho's delivery goroutine, in arrival order: it must not block
// (hand work to a goroutine or a buffered channel). Subscribing a topic again
// replaces its fn. The ticket and command topics are refused (ErrPlainLink)
// unless the URLs are TLS.
func (c *Client) Subscribe(topic string, fn func(Inbound)) error {
	if err := c.ownTopic(topic); err != nil {
		return err
	}
	if !c.tls && (topic == TicketTopic(c.opts.TID) || topic == CommandTopic(c.opts.TID)) {
		return fmt.Errorf("%w: %s", ErrPlainLink, topic)
	}
	c.mu.Lock()
	if c.closeCalled {
		c.mu.Unlock()
		return ErrClosed
	}
	if c.subs == nil {
		c.subs = map[string]func(Inbound){}
	}
	c.subs[topic] = fn
	cn := c.cur
	c.mu.Unlock()
	if cn != nil && cn.pc.IsConnectionOpen() {
		// Already connected: onConnect may have run without this one. A
		// second SUBSCRIBE of the same filter only replaces the first.
		c.subscribe(cn.pc, topic, fn)
	}
	return nil
}

// subscribe subscribes at QoS 0 and logs a refusal (an ACL that denies
// the terminal its own topic is a broker misconfiguration worth a warning).
//
// QoS 0, not 1: every connection is a clean session, so nothing a QoS 1
// subscription would keep outlives the connection anyway (central retries
// a command until its reply; tickets are retained). And on RabbitMQ 3.10 a
// QoS 1 subscription is a durable classic queue on the terminal's node
// (mqtt-subscription-posagent-TIDqos1): once that node dies, every
// reconnect on another node fails declaring it — "home node … of durable
// queue … is down or inaccessible" — and the broker drops the connection
// right after CONNACK, until the dead node returns (measured: the cluster
// test TestClusterNodeDiesMidInstall looped so for 30 s). A QoS 0
// subscription is a transient queue, which the cluster deletes with its
// node.
func (c *Client) subscribe(pc paho.Client, topic string, fn func(Inbound)) {
	tok := pc.Subscribe(topic, 0, func(_ paho.Client, m paho.Message) {
		fn(Inbound{Topic: m.Topic(), Payload: m.Payload(), Retained: m.Retained()})
	})
	go func() {
		tok.Wait()
		err := tok.Error()
		if st, ok := tok.(*paho.SubscribeToken); ok && err == nil && st.Result()[topic] == 0x80 {
			err = errors.New("refused by the broker (ACL?)")
		}
		if err != nil {
			c.log.Warn("mqtt: subscribe failed", "topic", topic, "err", err)
		}
	}()
}

// Publish sends payload on one of the terminal's own topics at QoS 1 and
// waits for the PUBACK or ctx. It fails at once (ErrNotConnected) when no
// connection is open, and with an error when the connection is lost before
// the PUBACK: every connection is a clean session, possibly on another
// broker, so paho does not send it again; the caller does if it matters (the
// reporter's outbox keeps the event until its PUBACK). When ctx ends first
// the message may still go out.
func (c *Client) Publish(ctx context.Context, topic string, retained bool, payload []byte) error {
	if err := c.ownTopic(topic); err != nil {
		return err
	}
	if c.closing.Load() {
		return ErrClosed
	}
	cn := c.current()
	if !cn.open() {
		return fmt.Errorf("mqtt: publish %s: %w", topic, ErrNotConnected)
	}
	tok := cn.pc.Publish(topic, 1, retained, payload)
	select {
	case <-tok.Done():
		if err := tok.Error(); err != nil {
			return fmt.Errorf("mqtt: publish %s: %w", topic, err)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("mqtt: publish %s: %w", topic, ctx.Err())
	}
}

// birth publishes the retained online state, unless Close has begun.
func (c *Client) birth(pc paho.Client) {
	c.birthMu.Lock()
	defer c.birthMu.Unlock()
	if c.closing.Load() {
		return
	}
	tok := pc.Publish(StateTopic(c.opts.TID), 1, true, c.presence(Online, ""))
	go func() {
		if tok.Wait(); tok.Error() != nil {
			c.log.Warn("mqtt: online state not published", "err", tok.Error())
		}
	}()
}

// onOwnState answers a live offline on our own state topic while we are
// connected: it can only be a stale Will, so we publish our birth again.
// Retained deliveries are the snapshot at subscribe time, which the birth
// right after the subscription replaces anyway.
func (c *Client) onOwnState(pc paho.Client, m paho.Message) {
	if m.Retained() {
		return
	}
	var p Presence
	if json.Unmarshal(m.Payload(), &p) != nil || p.State != Offline || !pc.IsConnectionOpen() {
		return
	}
	if p.Session > c.opts.Session && c.opts.Session != 0 {
		// A newer run of this terminal (a second agent with the same TID and
		// state copied?) went offline: not ours to contradict.
		c.log.Warn("mqtt: offline state of a newer session on our topic", "session", p.Session, "ours", c.opts.Session)
		return
	}
	if c.closing.Load() {
		return // our own shutdown state coming back
	}
	c.log.Warn("mqtt: a stale offline state was published while connected; publishing online again", "reason", p.Reason)
	go c.birth(pc) // not in paho's router goroutine: Publish may block
}

// presence renders a state payload.
func (c *Client) presence(state, reason string) []byte {
	b, _ := json.Marshal(Presence{
		State: state, TID: c.opts.TID, MID: c.opts.MID, Serial: c.opts.Serial,
		Reason: reason, Session: c.opts.Session, Time: time.Now().UTC(),
	})
	return b
}
