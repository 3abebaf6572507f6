// Package mqtt is the terminal's MQTT session with central monitoring
// (docs/mqtt.md): it connects (tcp://, or TLS with a private CA and a client
// certificate; credentials; keepalive), registers the Will and publishes the
// birth with this start's session number, reconnects, answers a stale Will
// with a new birth, and publishes the retained shutdown state on Close. On
// top of it, Subscribe and Publish are the primitives the reporter
// (agent/central/report), the ticket source and the command server run on,
// limited to the terminal's own topics. The topic names and the presence
// payload of the schema live here as well.
//
// It is the only package of the terminal that imports paho
// (github.com/eclipse/paho.mqtt.golang): the others see a Client, or a small
// interface of their own that Client implements.
package mqtt

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"
)

// Options configures a Client.
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
	// MID and Serial go into the presence payloads (and, through Identity, into
	// the reports that lack them).
	TID, MID, Serial string

	// Session is this start's number from NextSession (persisted in the state
	// directory, one more on every start). The birth and the Will carry it, so
	// a monitor, and the client itself, can tell a late Will of an earlier
	// run from the current state. 0 leaves it out (tools, tests).
	Session uint64

	// Keepalive is the MQTT keepalive; the broker publishes the Will about 1.5×
	// this after the terminal silently vanishes. Default 30s.
	Keepalive time.Duration

	// RetryInterval is the wait between attempts while the first connection is
	// refused. Default 5s. (Reconnects after a loss use paho's own backoff from 1s
	// up to one minute.)
	RetryInterval time.Duration

	// Logger receives connection changes; nil means slog.Default().
	Logger *slog.Logger
}

// Defaults for Options.
const (
	DefaultKeepalive     = 30 * time.Second
	DefaultRetryInterval = 5 * time.Second
	maxReconnectInterval = time.Minute
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
	// over a plain (tcp://, mqtt://) broker URL: tickets and commands are
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
)

// Client is the terminal's MQTT session: one paho client with a clean
// session, the terminal's client ID, its Will and its birth. Its methods are
// safe for concurrent use.
type Client struct {
	opts   Options
	log    *slog.Logger
	client paho.Client
	tls    bool // the broker URL is TLS: tickets and commands may be subscribed

	// closing is set by Close before its offline state: no birth and no
	// publish is accepted after it.
	closing atomic.Bool
	// born is set once the open connection's onConnect has queued its
	// subscriptions and birth, and cleared before every reconnect attempt:
	// paho counts a connection open before onConnect runs, and nothing of
	// ours may overtake the birth on the wire.
	born atomic.Bool
	// birthMu orders a birth before Close's offline publish, so a birth never
	// overwrites it.
	birthMu sync.Mutex

	// failing is set from the first failed connection attempt to the next
	// connect, so only the first failure of a run is a warning.
	failing atomic.Bool

	// started is closed by Start once connected is set; closed by Close.
	started, closed chan struct{}
	// connected completes when the first connection is up and paho has reset
	// its store for the clean session; nothing is published before that.
	connected paho.Token

	mu          sync.Mutex
	startCalled bool
	closeCalled bool
	// up is closed (and replaced) after every connect, once the subscriptions
	// and the birth are on their way: it wakes WaitConnected.
	up chan struct{}
	// subs are the terminal's own topics a caller listens to (Subscribe);
	// onConnect subscribes them again on every connect (clean session).
	subs map[string]func(Inbound)
}

// New checks opts and prepares the client. It does not connect: Start does.
func New(opts Options) (*Client, error) {
	if opts.TID == "" {
		return nil, errors.New("mqtt: TID is required")
	}
	if strings.ContainsAny(opts.TID, "/+#") || strings.TrimSpace(opts.TID) != opts.TID {
		// The TID is a topic level: a wildcard or slash would publish elsewhere.
		return nil, fmt.Errorf("mqtt: TID %q cannot be an MQTT topic level", opts.TID)
	}
	u, err := url.Parse(opts.URL)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("mqtt: broker URL %q: want scheme://host:port", redact(opts.URL))
	}
	if u.User != nil {
		// paho would use them silently; they would then sit in configs and logs.
		return nil, errors.New("mqtt: put credentials in Username/Password, not in the URL")
	}
	tlsCfg, err := tlsConfig(u.Scheme, opts.CAFile, opts.CertFile, opts.KeyFile)
	if err != nil {
		return nil, err
	}
	if opts.Keepalive <= 0 {
		opts.Keepalive = DefaultKeepalive
	}
	if opts.RetryInterval <= 0 {
		opts.RetryInterval = DefaultRetryInterval
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	c := &Client{
		opts:    opts,
		log:     opts.Logger.With("component", "mqtt", "tid", opts.TID),
		tls:     tlsCfg != nil,
		started: make(chan struct{}),
		closed:  make(chan struct{}),
		up:      make(chan struct{}),
	}
	co := paho.NewClientOptions().
		AddBroker(opts.URL).
		SetClientID("posagent-"+opts.TID).
		SetUsername(opts.Username).
		SetPassword(opts.Password).
		SetKeepAlive(opts.Keepalive).
		SetConnectTimeout(10*time.Second).
		// A clean session: nothing of ours is in paho's store before the first
		// connect, because Publish publishes only on an open connection (paho
		// resets its store on the first clean connect, which would strand
		// anything queued there while connecting).
		SetCleanSession(true).
		SetStore(newCopyStore()).
		SetConnectRetry(true).
		SetConnectRetryInterval(opts.RetryInterval).
		SetAutoReconnect(true).
		SetMaxReconnectInterval(maxReconnectInterval).
		SetBinaryWill(StateTopic(opts.TID), c.presence(Offline, ReasonConnectionLost), 1, true).
		SetOnConnectHandler(c.onConnect).
		// Called before each reconnect attempt, in paho's reconnect path:
		// the next connection is not born until its onConnect has run.
		SetReconnectingHandler(func(paho.Client, *paho.ClientOptions) { c.born.Store(false) }).
		SetConnectionLostHandler(func(_ paho.Client, err error) {
			c.log.Warn("mqtt: connection to broker lost; reconnecting", "broker", redact(opts.URL), "err", err)
		}).
		SetConnectionNotificationHandler(func(_ paho.Client, n paho.ConnectionNotification) {
			if f, ok := n.(paho.ConnectionNotificationFailed); ok {
				c.connectFailed(f.Reason)
			}
		})
	if tlsCfg != nil {
		co.SetTLSConfig(tlsCfg)
	}
	c.client = paho.NewClient(co)
	return c, nil
}

// Identity is the terminal the client was made for.
func (c *Client) Identity() Identity {
	return Identity{TID: c.opts.TID, MID: c.opts.MID, Serial: c.opts.Serial}
}

// Start begins connecting in the background and returns at once: a broker
// that is down only delays what waits for it. The first connection is retried
// every RetryInterval, later losses are reconnected by paho. ctx is not kept;
// the client runs until Close. Subscribe before Start to get the retained
// messages of the first connection.
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
	c.log.Info("mqtt: connecting", "broker", redact(c.opts.URL), "client_id", "posagent-"+c.opts.TID)
	// With ConnectRetry the token completes only once connected (or on
	// Disconnect); WaitConnected and Publish look at it.
	c.connected = c.client.Connect()
	close(c.started)
	return nil
}

// WaitConnected returns nil once a connection is open and its birth and
// subscriptions are queued (after the first connect has reset paho's
// store), ErrClosed once Close has begun, or ctx's error. The connection
// may of course drop right after it returns.
func (c *Client) WaitConnected(ctx context.Context) error {
	select {
	case <-c.started:
	case <-c.closed:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-c.connected.Done():
	case <-c.closed:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	for {
		// up is taken before looking at the connection: a connect in between
		// closes this very channel.
		c.mu.Lock()
		up := c.up
		c.mu.Unlock()
		if c.closing.Load() {
			return ErrClosed
		}
		if c.client.IsConnectionOpen() && c.born.Load() {
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

// isOpen reports whether Publish may go out now: started, first connect
// done, connection open.
func (c *Client) isOpen() bool {
	select {
	case <-c.started:
	default:
		return false
	}
	select {
	case <-c.connected.Done():
	default:
		return false
	}
	return c.client.IsConnectionOpen() && c.born.Load()
}

// Close publishes the retained graceful offline state (bounded by ctx) and
// disconnects cleanly, so the broker discards the Will and "shutdown" stays
// the state. Close what runs on the client first (the reporter flushes in its
// own Close): nothing is published after this one. A second Close returns nil.
func (c *Client) Close(ctx context.Context) error {
	c.mu.Lock()
	started, already := c.startCalled, c.closeCalled
	c.closeCalled = true
	c.mu.Unlock()
	if already {
		return nil
	}
	c.birthMu.Lock()
	c.closing.Store(true) // from here on no birth can follow our offline
	c.birthMu.Unlock()
	close(c.closed)
	if !started {
		return nil
	}
	var offErr error
	if c.client.IsConnectionOpen() {
		tok := c.client.Publish(StateTopic(c.opts.TID), 1, true, c.presence(Offline, ReasonShutdown))
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
	c.client.Disconnect(250)
	c.log.Info("mqtt: disconnected", "broker", redact(c.opts.URL))
	return offErr
}

// onConnect runs (in its own goroutine) after every connect: paho's store was
// reset for the clean session, so subscriptions and the birth are sent again
// each time.
func (c *Client) onConnect(pc paho.Client) {
	c.failing.Store(false)
	c.log.Info("mqtt: connected", "broker", redact(c.opts.URL))
	// A Will can overtake our birth (a half-open old connection taken over by
	// this one sends its Will late) and leave "offline" retained while we are
	// online. Watching our own state topic lets us answer with a new birth.
	pc.Subscribe(StateTopic(c.opts.TID), 1, c.onOwnState)
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
	c.born.Store(true)
	c.mu.Lock()
	close(c.up)
	c.up = make(chan struct{})
	c.mu.Unlock()
}

// connectFailed logs a failed connection attempt: the first of a run as a
// warning (an installer's "why is monitoring blind?"), the retries quietly.
// Reasons are network or CONNACK errors; they never hold the password.
func (c *Client) connectFailed(err error) {
	err = loginErr(err)
	if c.failing.Swap(true) {
		c.log.Debug(MsgUnreachable, "broker", redact(c.opts.URL), "err", err)
		return
	}
	c.log.Warn(MsgUnreachable, "broker", redact(c.opts.URL), "err", err)
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
// every reconnect; retained messages arrive first. fn runs in paho's delivery
// goroutine, in arrival order: it must not block (hand work to a goroutine or
// a buffered channel). Subscribing a topic again replaces its fn. The ticket
// and command topics are refused (ErrPlainLink) unless the URL is TLS.
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
	c.mu.Unlock()
	if c.client.IsConnectionOpen() {
		// Already connected: onConnect may have run without this one. A
		// second SUBSCRIBE of the same filter only replaces the first.
		c.subscribe(c.client, topic, fn)
	}
	return nil
}

// subscribe subscribes at QoS 1 and logs a refusal (an ACL that denies
// the terminal its own topic is a broker misconfiguration worth a warning).
func (c *Client) subscribe(pc paho.Client, topic string, fn func(Inbound)) {
	tok := pc.Subscribe(topic, 1, func(_ paho.Client, m paho.Message) {
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
// connection is open; once sent, a publish whose connection drops before the
// PUBACK is sent again by paho after the reconnect, and Publish goes on
// waiting for it. When ctx ends first the message may still go out.
func (c *Client) Publish(ctx context.Context, topic string, retained bool, payload []byte) error {
	if err := c.ownTopic(topic); err != nil {
		return err
	}
	if c.closing.Load() {
		return ErrClosed
	}
	if !c.isOpen() {
		return fmt.Errorf("mqtt: publish %s: %w", topic, ErrNotConnected)
	}
	tok := c.client.Publish(topic, 1, retained, payload)
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
