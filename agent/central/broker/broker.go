// Package broker runs an embedded MQTT broker (mochi-mqtt) in-process.
//
// It exists for `posagent demo` and for tests: it gives the reporter and the
// monitor a real MQTT peer without installing mosquitto. It is not meant for the
// firmware build (paho and mochi together cost ~7.7 MB on armhf), so only the demo
// and test binaries should import it. Start lets every client in (it listens on
// loopback); StartWith can require passwords, apply the fleet ACL of
// docs/mqtt.md and speak TLS, so the tests run the same security suite against
// it as against mosquitto.
package broker

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"
)

// fleetHook checks passwords and applies the fleet ACL. mochi's auth.Ledger
// has per-user rules but no %u pattern, which is the whole point here.
type fleetHook struct {
	mqtt.HookBase
	users map[string]string
	acl   bool
}

func (h *fleetHook) ID() string { return "posagent-fleet-auth" }

func (h *fleetHook) Provides(b byte) bool {
	return bytes.Contains([]byte{mqtt.OnConnectAuthenticate, mqtt.OnACLCheck}, []byte{b})
}

func (h *fleetHook) OnConnectAuthenticate(cl *mqtt.Client, pk packets.Packet) bool {
	if len(h.users) == 0 {
		return true
	}
	want, ok := h.users[string(pk.Connect.Username)]
	return ok && pk.Connect.PasswordFlag && string(pk.Connect.Password) == want
}

func (h *fleetHook) OnACLCheck(cl *mqtt.Client, topic string, write bool) bool {
	if !h.acl {
		return true
	}
	user := string(cl.Properties.Username)
	switch {
	case user == "central":
		return strings.HasPrefix(topic, "pos/v1/")
	case user == "monitor":
		return !write && strings.HasPrefix(topic, "pos/v1/")
	}
	// A filter such as pos/v1/+/state must not pass as the user's own:
	// only a literal pos/v1/{user}/ does. Then the terminal's own topics, as
	// scripts/packaging/mosquitto-acl lists them: cmd and ticket are read
	// only, written by central alone.
	if user == "" || strings.ContainsAny(user, "/+#") {
		return false
	}
	own, ok := strings.CutPrefix(topic, "pos/v1/"+user+"/")
	if !ok {
		return false
	}
	switch own {
	case "state":
		return true
	case "heartbeat", "status", "events", "cmd/reply":
		return write
	case "ticket", "cmd":
		return !write
	}
	return false
}

// Broker is a running embedded broker with one TCP listener.
type Broker struct {
	srv       *mqtt.Server
	tcp       *tcpListener
	closeOnce sync.Once
}

// Start listens on addr (for example "127.0.0.1:0" for a free port) and serves
// MQTT 3.1.1 and 5 clients until Close. It returns once the listener is bound, so
// URL is valid and clients can connect at once.
//
// mochi logs every connection at info level; the broker logs through logger
// (nil means slog.Default()) but only at warning level and above, so a demo's
// output stays about the terminal, not the broker.
func Start(addr string, logger *slog.Logger) (*Broker, error) {
	return StartWith(addr, Options{Logger: logger})
}

// Options are StartWith's settings; the zero value is Start's open broker.
type Options struct {
	Logger *slog.Logger
	// Users maps user name to password. When set, a client must log in as one
	// of them; otherwise anyone may connect.
	Users map[string]string
	// FleetACL applies the fleet ACL (scripts/packaging/mosquitto-acl,
	// docs/mqtt.md): each user writes its own state, heartbeat, status, events and
	// cmd/reply and reads its own state, ticket and cmd, nothing else;
	// "monitor" reads pos/v1/#; "central" reads and writes pos/v1/#.
	FleetACL bool
	// TLS, when set, makes the listener TLS only (set ClientAuth and
	// ClientCAs to require client certificates).
	TLS *tls.Config
}

// StartWith is Start with users, the fleet ACL and TLS.
func StartWith(addr string, o Options) (*Broker, error) {
	logger := o.Logger
	if logger == nil {
		logger = slog.Default()
	}
	logger = slog.New(minLevel{h: logger.Handler(), min: slog.LevelWarn}).With("component", "mqtt-broker")

	// InlineClient lets the broker itself publish and subscribe (demo and tests use
	// it to watch or inject without a network client).
	srv := mqtt.New(&mqtt.Options{InlineClient: true, Logger: logger})
	var hook mqtt.Hook = new(auth.AllowHook)
	if len(o.Users) > 0 || o.FleetACL {
		hook = &fleetHook{users: o.Users, acl: o.FleetACL}
	}
	if err := srv.AddHook(hook, nil); err != nil {
		return nil, fmt.Errorf("broker: auth hook: %w", err)
	}
	tcp := &tcpListener{id: "tcp", address: addr, tls: o.TLS, conns: map[net.Conn]struct{}{}}
	// AddListener binds the socket (net.Listen) before returning, so a port in use
	// is reported here and not lost in a goroutine.
	if err := srv.AddListener(tcp); err != nil {
		_ = srv.Close()
		return nil, fmt.Errorf("broker: listen %s: %w", addr, err)
	}
	// Serve does not block: it starts the accept loops and returns.
	if err := srv.Serve(); err != nil {
		_ = srv.Close()
		return nil, fmt.Errorf("broker: serve: %w", err)
	}
	return &Broker{srv: srv, tcp: tcp}, nil
}

// Addr is the bound listener address, "127.0.0.1:PORT" with the real port.
func (b *Broker) Addr() string { return b.tcp.Address() }

// URL is the address as a paho broker URL, "tcp://127.0.0.1:PORT", or
// "ssl://…" for a TLS broker.
func (b *Broker) URL() string {
	if b.tcp.tls != nil {
		return "ssl://" + b.Addr()
	}
	return "tcp://" + b.Addr()
}

// DropClient cuts the network connection of the client with that ID without an
// MQTT DISCONNECT, as a pulled cable or a dead 4G link would: the broker
// publishes the client's Will. It reports whether such a client was connected.
// The demo and tests use it to show what monitoring sees when a terminal drops.
func (b *Broker) DropClient(id string) bool {
	cl, ok := b.srv.Clients.Get(id)
	if !ok || cl.Closed() || cl.Net.Conn == nil {
		return false
	}
	// Only the socket is closed: the broker's read loop then fails and sends the
	// Will, exactly the path of a connection lost on the network. (cl.Stop would
	// also mark the client closed, and a read loop that notices that first ends
	// quietly, without the Will.)
	_ = cl.Net.Conn.Close()
	return true
}

// Close disconnects every client and stops listening. Clients see their
// connection dropped; the broker keeps nothing (no persistence hook), so retained
// messages are gone with it.
// Calling it again does nothing (mochi itself would panic).
func (b *Broker) Close() error {
	var err error
	b.closeOnce.Do(func() { err = b.srv.Close() })
	return err
}

// minLevel drops records below min whatever the wrapped handler would accept:
// mochi is chatty at info level.
type minLevel struct {
	h   slog.Handler
	min slog.Level
}

func (m minLevel) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= m.min && m.h.Enabled(ctx, l)
}

func (m minLevel) Handle(ctx context.Context, r slog.Record) error { return m.h.Handle(ctx, r) }

func (m minLevel) WithAttrs(as []slog.Attr) slog.Handler {
	return minLevel{h: m.h.WithAttrs(as), min: m.min}
}

func (m minLevel) WithGroup(name string) slog.Handler {
	return minLevel{h: m.h.WithGroup(name), min: m.min}
}

// tcpListener is mochi's TCP listener plus a register of the connections it
// accepted, so that Close can close every one of them.
//
// mochi's own Close closes the clients it finds in its client map and then
// waits for every connection's goroutine. A client that reconnects at once
// after losing its connection (paho does) can be dropped from that map by the
// old connection's cleanup, which deletes by client ID; mochi then never closes
// it and Close waits forever. Closing the sockets we accepted ends those
// goroutines whatever the map says.
type tcpListener struct {
	id, address string
	tls         *tls.Config
	l           net.Listener
	log         *slog.Logger

	mu     sync.Mutex
	closed bool
	conns  map[net.Conn]struct{}
	// live counts connections mochi is still establishing or serving.
	live sync.WaitGroup
}

var _ listeners.Listener = (*tcpListener)(nil)

func (t *tcpListener) ID() string       { return t.id }
func (t *tcpListener) Protocol() string { return "tcp" }

func (t *tcpListener) Address() string {
	if t.l != nil {
		return t.l.Addr().String()
	}
	return t.address
}

func (t *tcpListener) Init(log *slog.Logger) error {
	t.log = log
	l, err := net.Listen("tcp", t.address)
	if err != nil {
		return err
	}
	if t.tls != nil {
		// The handshake runs on the connection's first read, in mochi's
		// per-client goroutine: a slow client cannot stall Accept.
		l = tls.NewListener(l, t.tls)
	}
	t.l = l
	return nil
}

func (t *tcpListener) Serve(establish listeners.EstablishFn) {
	for {
		c, err := t.l.Accept()
		if err != nil {
			return // closed
		}
		t.mu.Lock()
		if t.closed {
			t.mu.Unlock()
			_ = c.Close()
			return
		}
		t.conns[c] = struct{}{}
		t.live.Add(1)
		t.mu.Unlock()
		go func() {
			defer t.live.Done()
			if err := establish(t.id, c); err != nil {
				// A client that goes away without DISCONNECT ends up here; for
				// a broker that is normal, so not a warning.
				t.log.Debug("client connection ended", "remote", c.RemoteAddr().String(), "err", err)
			}
			t.mu.Lock()
			delete(t.conns, c)
			t.mu.Unlock()
		}()
	}
}

func (t *tcpListener) Close(closeClients listeners.CloseFn) {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return
	}
	t.closed = true
	t.mu.Unlock()

	if t.l != nil {
		_ = t.l.Close()
	}
	// The sockets go first. mochi's closeClients writes a DISCONNECT to each
	// client under that client's lock; a write stuck on a peer that stopped
	// reading holds the lock, and Close hung forever in tests (seen once in 80
	// runs). On closed sockets every write fails at once and mochi only does
	// its bookkeeping.
	t.mu.Lock()
	for c := range t.conns {
		_ = c.Close()
	}
	t.mu.Unlock()
	// Then let each connection's goroutine finish before mochi's own sweep.
	// mochi v2.7.9's Clients.GetByListener read-locks twice (it calls Len
	// under its RLock); a connection ending meanwhile asks for the write
	// lock in between (attachClient → Clients.Delete), and Go's RWMutex then
	// deadlocks both: Close hung for 15 min in a test run. With every
	// connection's goroutine done, nothing can ask for the write lock.
	done := make(chan struct{})
	go func() { t.live.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		// A goroutine stuck elsewhere in mochi: sweep anyway, as before.
		t.log.Warn("broker close: connections still ending after 5 s")
	}
	closeClients(t.id)
}
