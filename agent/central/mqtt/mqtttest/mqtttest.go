// Package mqtttest holds what the tests of the terminal's MQTT session
// (agent/central/mqtt) and of the reporter on it (agent/central/report) share:
// the brokers their suites run against (a mosquitto locked down as in
// production, with TLS client certificates, a password file and the fleet
// ACL; the embedded mochi broker locked down the same way; and mochi open,
// plain and anonymous, as the demo runs it), a TCP gate that cuts or
// silences a terminal's link, and the Subscriber that stands in for central
// monitoring. Client is a raw client for tests elsewhere.
package mqtttest

import (
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"testing"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/posagent/posagent/agent/central/broker"
	"github.com/posagent/posagent/agent/central/mqtt"
	"github.com/posagent/posagent/agent/testkit/bench"
)

// Broker is one broker under test, as a suite sees it.
type Broker struct {
	// Addr is the host:port the terminal connects to (through a Gate, to cut it).
	Addr   string
	Scheme string // "tcp" or "ssl"
	// Terminal sets a terminal's TID, credentials and TLS files on its
	// options.
	Terminal func(o *mqtt.Options, tid string)
	// Monitor returns client options for central monitoring.
	Monitor func() *paho.ClientOptions
	// Login returns client options logged in as user (a TID, "monitor");
	// nil for an open broker, which has no users and no ACL to test.
	Login func(user string) *paho.ClientOptions
	// Stop and Restart make an outage: everything the broker held is gone.
	Stop, Restart func()
}

// URL is the broker's URL, for a terminal that connects without a gate.
func (b Broker) URL() string { return b.Scheme + "://" + b.Addr }

// users are the passwords of the given TIDs and of "monitor": "pw-" + name.
func users(tids []string) map[string]string {
	u := map[string]string{"monitor": "pw-monitor"}
	for _, tid := range tids {
		u[tid] = "pw-" + tid
	}
	return u
}

// NewTID is a terminal ID of 8 characters (as field 41) that no other test
// uses: the suites take fresh ones for every case, since on the shared
// RabbitMQ cluster two packages' terminals under one TID would take each
// other's client id over, collide on the broker's users, and find each
// other's retained messages, which outlive a test run there.
func NewTID(t testing.TB) string {
	t.Helper()
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// Quiet is the brokers' logger: silent.
func Quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// Logger is a suite's logger: Quiet, or debug on stderr when the environment
// variable env is set, to follow a failing test's session.
func Logger(env string) *slog.Logger {
	if os.Getenv(env) != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return Quiet()
}

// StartMochi starts the embedded broker open (plain, anonymous) on addr,
// "127.0.0.1:0" for any port, logging to lg, and closes it when the test
// ends: the broker of the tests that are not suites.
func StartMochi(t testing.TB, addr string, lg *slog.Logger) *broker.Broker {
	t.Helper()
	b, err := broker.Start(addr, lg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// MosquittoTLSACL is a TLS-only mosquitto that requires client certificates,
// with a password and a certificate for each of tids, for "monitor" and for
// "central" (which sends tickets and commands), and the fleet ACL.
func MosquittoTLSACL(t *testing.T, tids ...string) Broker {
	t.Helper()
	m := bench.StartMosquittoWith(t, bench.MosquittoConfig{
		Users:   users(append(append([]string{}, tids...), "central")),
		ACL:     bench.FleetACL,
		TLS:     true,
		NoPlain: true, RequireClientCert: true,
		ClientCerts: append(append([]string{}, tids...), "monitor", "central"),
	})
	login := func(user string) *paho.ClientOptions {
		return paho.NewClientOptions().AddBroker(m.TLSURL).SetUsername(user).SetPassword("pw-" + user).
			SetTLSConfig(m.PKI.ClientTLS(t, user))
	}
	return Broker{
		Addr: fmt.Sprintf("127.0.0.1:%d", m.TLSPort), Scheme: "ssl",
		Terminal: func(o *mqtt.Options, id string) {
			o.TID, o.Username, o.Password = id, id, "pw-"+id
			o.CAFile = m.PKI.CAFile
			o.CertFile, o.KeyFile = m.PKI.Clients[id][0], m.PKI.Clients[id][1]
		},
		Monitor: func() *paho.ClientOptions { return login("monitor") },
		Login:   login,
		Stop:    m.Stop,
		Restart: func() { m.Restart(t) },
	}
}

// MochiOpen is the embedded broker as the demo runs it: plain, anonymous.
func MochiOpen(t *testing.T) Broker {
	t.Helper()
	// Reserved, so the broker comes back on the same port after an outage.
	addr := bench.ReserveAddr(t)
	return mochi(t, addr, broker.Options{Logger: Quiet()}, Broker{
		Addr: addr, Scheme: "tcp",
		Terminal: func(o *mqtt.Options, id string) { o.TID = id },
		Monitor: func() *paho.ClientOptions {
			return paho.NewClientOptions().AddBroker("tcp://" + addr)
		},
	})
}

// MochiTLSACL is the embedded broker locked down as MosquittoTLSACL is
// (broker.StartWith: its own password check and fleet ACL hook, TLS
// requiring client certificates).
func MochiTLSACL(t *testing.T, tids ...string) Broker {
	t.Helper()
	return MochiTLSACLNodes(t, 1, tids...)[0]
}

// MochiTLSACLNodes is n brokers locked down as MochiTLSACL, each on its own
// port, sharing one PKI, users and ACL: the nodes of a fleet's broker list
// for failover tests. They share no messages (each is a broker of its own):
// a monitor watches each. Besides the TIDs and "monitor", "central" may log
// in (password "pw-central"), to send tickets and commands.
func MochiTLSACLNodes(t *testing.T, n int, tids ...string) []Broker {
	t.Helper()
	names := append(append([]string{}, tids...), "monitor", "central")
	pki, err := bench.MakePKI(t.TempDir(), names...)
	if err != nil {
		t.Fatal(err)
	}
	pw := users(append(append([]string{}, tids...), "central"))
	o := broker.Options{
		Logger:   Quiet(),
		Users:    pw,
		FleetACL: true,
		TLS: &tls.Config{Certificates: []tls.Certificate{pki.ServerCertificate(t)}, ClientAuth: tls.RequireAndVerifyClientCert,
			ClientCAs: pki.CAPool(t), MinVersion: tls.VersionTLS12},
	}
	nodes := make([]Broker, n)
	for i := range nodes {
		addr := bench.ReserveAddr(t)
		login := func(user string) *paho.ClientOptions {
			return paho.NewClientOptions().AddBroker("ssl://" + addr).SetUsername(user).SetPassword("pw-" + user).
				SetTLSConfig(pki.ClientTLS(t, user))
		}
		nodes[i] = mochi(t, addr, o, Broker{
			Addr: addr, Scheme: "ssl",
			Terminal: func(o *mqtt.Options, id string) {
				o.TID, o.Username, o.Password = id, id, "pw-"+id
				o.CAFile = pki.CAFile
				o.CertFile, o.KeyFile = pki.Clients[id][0], pki.Clients[id][1]
			},
			Monitor: func() *paho.ClientOptions { return login("monitor") },
			Login:   login,
		})
	}
	return nodes
}

// mochi starts an embedded broker on addr with o and fills b's Stop and
// Restart.
func mochi(t *testing.T, addr string, o broker.Options, b Broker) Broker {
	t.Helper()
	var mu sync.Mutex
	start := func() *broker.Broker {
		mb, err := broker.StartWith(addr, o)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { mb.Close() })
		return mb
	}
	mb := start()
	b.Stop = func() {
		mu.Lock()
		defer mu.Unlock()
		mb.Close()
	}
	b.Restart = func() {
		mu.Lock()
		defer mu.Unlock()
		mb = start()
	}
	return b
}

// Gate forwards TCP (TLS passes through untouched) to the broker while open;
// while shut it closes every connection and refuses new ones. It lets a test
// decide when the terminal may reconnect after an outage: only once the
// monitor listens again, since events are not retained. Frozen, it keeps
// every connection open and silently drops what either side sends: the link
// of a terminal whose power or radio died, which only keepalives reveal.
type Gate struct {
	l      net.Listener
	target string
	mu     sync.Mutex
	open   bool
	frozen bool
	conns  []net.Conn
}

// StartGate opens a gate to target (host:port); the test's cleanup shuts it.
func StartGate(t *testing.T, target string) *Gate {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := &Gate{l: l, target: target, open: true}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			if open, _ := g.state(); !open {
				c.Close()
				continue
			}
			u, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			g.mu.Lock()
			g.conns = append(g.conns, c, u)
			g.mu.Unlock()
			go g.pipe(u, c)
			go g.pipe(c, u)
		}
	}()
	t.Cleanup(func() { l.Close(); g.Set(false) })
	return g
}

// URL is the gate's address under scheme.
func (g *Gate) URL(scheme string) string { return scheme + "://" + g.l.Addr().String() }

// Set opens or shuts the gate; shutting it closes every connection.
func (g *Gate) Set(open bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.open = open
	if !open {
		for _, c := range g.conns {
			c.Close()
		}
		g.conns = nil
	}
}

// Freeze turns the link silent, connections left open.
func (g *Gate) Freeze() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.frozen = true
}

// state reads the gate's switches.
func (g *Gate) state() (open, frozen bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.open, g.frozen
}

// pipe copies src to dst until src ends, dropping bytes while frozen; a
// frozen link also never passes a close on.
func (g *Gate) pipe(dst, src net.Conn) {
	buf := make([]byte, 4096)
	for {
		n, err := src.Read(buf)
		if _, frozen := g.state(); n > 0 && !frozen {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				break
			}
		}
		if err != nil {
			break
		}
	}
	if _, frozen := g.state(); !frozen {
		dst.Close()
	}
}
