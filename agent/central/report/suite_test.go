package report

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/posagent/posagent/agent/central/broker"
	"github.com/posagent/posagent/agent/testkit/bench"
)

// The core suite of issue 6 runs against three brokers: a mosquitto locked
// down as in production (TLS with client certificates, a password file and
// the pattern ACL pos/v1/%u/#), the embedded mochi broker locked down the same
// way (broker.StartWith: its own password check and fleet ACL hook, TLS
// requiring client certificates), and mochi open (plain, anonymous), as the
// demo runs it.

// brokerUnderTest is one broker under test, as the suite sees it.
type brokerUnderTest struct {
	// addr is the host:port the terminal connects to (through a gate).
	addr   string
	scheme string // "tcp" or "ssl"
	// terminal sets a terminal's credentials and TLS files on its options.
	terminal func(o *Options, tid string)
	// monitor returns client options for central monitoring.
	monitor func() *mqtt.ClientOptions
	// login returns client options logged in as user (a TID, "monitor");
	// nil for an open broker, which has no users and no ACL to test.
	login func(user string) *mqtt.ClientOptions
	// stop and restart make an outage: everything the broker held is gone.
	stop, restart func()
}

const otherTID = "10000002"

func mosquittoBench(t *testing.T) brokerUnderTest {
	t.Helper()
	m := bench.StartMosquittoWith(t, bench.MosquittoConfig{
		Users:   map[string]string{tid: "pw-" + tid, otherTID: "pw-" + otherTID, "monitor": "pw-monitor"},
		ACL:     bench.FleetACL,
		TLS:     true,
		NoPlain: true, RequireClientCert: true,
		ClientCerts: []string{tid, otherTID, "monitor"},
	})
	return brokerUnderTest{
		addr: fmt.Sprintf("127.0.0.1:%d", m.TLSPort), scheme: "ssl",
		terminal: func(o *Options, id string) {
			o.Username, o.Password = id, "pw-"+id
			o.CAFile = m.PKI.CAFile
			o.CertFile, o.KeyFile = m.PKI.Clients[id][0], m.PKI.Clients[id][1]
		},
		monitor: func() *mqtt.ClientOptions {
			return mqtt.NewClientOptions().AddBroker(m.TLSURL).SetUsername("monitor").SetPassword("pw-monitor").
				SetTLSConfig(m.PKI.ClientTLS(t, "monitor"))
		},
		login: func(user string) *mqtt.ClientOptions {
			return mqtt.NewClientOptions().AddBroker(m.TLSURL).SetUsername(user).SetPassword("pw-" + user).
				SetTLSConfig(m.PKI.ClientTLS(t, user))
		},
		stop:    m.Stop,
		restart: func() { m.Restart(t) },
	}
}

func mochiBench(t *testing.T) brokerUnderTest {
	t.Helper()
	var mu sync.Mutex
	// Reserved, so the broker comes back on the same port after an outage.
	addr := bench.ReserveAddr(t)
	b := startBroker(t, addr)
	return brokerUnderTest{
		addr: addr, scheme: "tcp",
		terminal: func(*Options, string) {},
		monitor: func() *mqtt.ClientOptions {
			return mqtt.NewClientOptions().AddBroker("tcp://" + addr)
		},
		stop: func() {
			mu.Lock()
			defer mu.Unlock()
			b.Close()
		},
		restart: func() {
			mu.Lock()
			defer mu.Unlock()
			b = startBroker(t, addr)
		},
	}
}

func mochiSecureBench(t *testing.T) brokerUnderTest {
	t.Helper()
	pki, err := bench.MakePKI(t.TempDir(), tid, otherTID, "monitor")
	if err != nil {
		t.Fatal(err)
	}
	o := broker.Options{
		Logger:   quietLogger(),
		Users:    map[string]string{tid: "pw-" + tid, otherTID: "pw-" + otherTID, "monitor": "pw-monitor"},
		FleetACL: true,
		TLS: &tls.Config{Certificates: []tls.Certificate{pki.ServerCertificate(t)}, ClientAuth: tls.RequireAndVerifyClientCert,
			ClientCAs: pki.CAPool(t), MinVersion: tls.VersionTLS12},
	}
	var mu sync.Mutex
	start := func(addr string) *broker.Broker {
		b, err := broker.StartWith(addr, o)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { b.Close() })
		return b
	}
	addr := bench.ReserveAddr(t)
	b := start(addr)
	login := func(user string) *mqtt.ClientOptions {
		return mqtt.NewClientOptions().AddBroker("ssl://" + addr).SetUsername(user).SetPassword("pw-" + user).
			SetTLSConfig(pki.ClientTLS(t, user))
	}
	return brokerUnderTest{
		addr: addr, scheme: "ssl",
		terminal: func(o *Options, id string) {
			o.Username, o.Password = id, "pw-"+id
			o.CAFile = pki.CAFile
			o.CertFile, o.KeyFile = pki.Clients[id][0], pki.Clients[id][1]
		},
		monitor: func() *mqtt.ClientOptions { return login("monitor") },
		login:   login,
		stop: func() {
			mu.Lock()
			defer mu.Unlock()
			b.Close()
		},
		restart: func() {
			mu.Lock()
			defer mu.Unlock()
			b = start(addr)
		},
	}
}

// watcher is central monitoring on a broker under test: it resubscribes after every
// connect and says so on subscribed, so a test knows when it is listening
// again after an outage.
func watcher(t *testing.T, co *mqtt.ClientOptions, filters ...string) (*subscriber, <-chan struct{}) {
	t.Helper()
	s := &subscriber{ch: make(chan msg, 4096)}
	subscribed := make(chan struct{}, 16)
	m := map[string]byte{}
	for _, f := range filters {
		m[f] = 1
	}
	co.SetClientID(fmt.Sprintf("sub-%d", subscribers.Add(1))).SetCleanSession(true).
		SetAutoReconnect(true).SetMaxReconnectInterval(200 * time.Millisecond).
		SetOnConnectHandler(func(c mqtt.Client) {
			tok := c.SubscribeMultiple(m, func(_ mqtt.Client, m mqtt.Message) {
				s.mu.Lock()
				s.all = append(s.all, append([]byte(nil), m.Payload()...))
				s.mu.Unlock()
				s.ch <- msg{topic: m.Topic(), payload: m.Payload(), retained: m.Retained()}
			})
			go func() {
				if tok.Wait(); tok.Error() == nil {
					subscribed <- struct{}{}
				}
			}()
		})
	c := mqtt.NewClient(co)
	s.c = c
	if tok := c.Connect(); !tok.WaitTimeout(wait) || tok.Error() != nil {
		t.Fatalf("monitor connect: %v", tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(50) })
	select {
	case <-subscribed:
	case <-time.After(wait):
		t.Fatal("monitor not subscribed")
	}
	return s, subscribed
}

// gate forwards TCP (TLS passes through untouched) to the broker while open;
// while shut it closes every connection and refuses new ones. It lets a test
// decide when the terminal may reconnect after an outage: only once the
// monitor listens again, since events are not retained. Frozen, it keeps
// every connection open and silently drops what either side sends: the link
// of a terminal whose power or radio died, which only keepalives reveal.
type gate struct {
	l      net.Listener
	target string
	mu     sync.Mutex
	open   bool
	frozen bool
	conns  []net.Conn
}

// freeze turns the link silent, connections left open.
func (g *gate) freeze() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.frozen = true
}

// state reads the gate's switches.
func (g *gate) state() (open, frozen bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.open, g.frozen
}

// pipe copies src to dst until src ends, dropping bytes while frozen; a
// frozen link also never passes a close on.
func (g *gate) pipe(dst, src net.Conn) {
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

func startGate(t *testing.T, target string) *gate {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := &gate{l: l, target: target, open: true}
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
	t.Cleanup(func() { l.Close(); g.set(false) })
	return g
}

func (g *gate) url(scheme string) string { return scheme + "://" + g.l.Addr().String() }

func (g *gate) set(open bool) {
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

func TestCoreSuiteMosquittoTLSACL(t *testing.T) { coreSuite(t, mosquittoBench) }
func TestCoreSuiteMochiTLSACL(t *testing.T)     { coreSuite(t, mochiSecureBench) }
func TestCoreSuiteMochiOpen(t *testing.T)       { coreSuite(t, mochiBench) }

func coreSuite(t *testing.T, start func(*testing.T) brokerUnderTest) {
	t.Run("BirthAndRetainedStatusForLateSubscriber", func(t *testing.T) {
		b := start(t)
		r := newReporter(t, b.scheme+"://"+b.addr, func(o *Options) { b.terminal(o, tid); o.Session = 7 })
		in := statuses(4)
		for _, st := range in {
			r.Report(context.Background(), st)
		}
		flushed(t, r)
		s, _ := watcher(t, b.monitor(), terminalTopics...)
		st := s.until(t, "retained state", retainedOn(StateTopic(tid)))
		if p := presence(t, st); p.State != Online || p.Session != 7 || p.TID != tid {
			t.Errorf("retained state = %+v, want online session 7", p)
		}
		m := message(t, s.until(t, "retained status", retainedOn(StatusTopic(tid))))
		if m.Seq != 4 || m.Message != "report 4" {
			t.Errorf("retained status = seq %d %q, want seq 4", m.Seq, m.Message)
		}
		s.noFullPAN(t)
	})

	// Terminal A, logged in as itself, publishes under terminal B's topics:
	// the ACL drops it. A marker on A's own topic, published after the
	// broker has answered each forged publish, reaches the monitor; both
	// brokers route a publish to the subscribers' queues when they receive
	// it, so a forged message let through would have arrived first.
	t.Run("TerminalCannotPublishForAnother", func(t *testing.T) {
		b := start(t)
		if b.login == nil {
			t.Skip("open broker: no users, no ACL")
		}
		s, _ := watcher(t, b.monitor(), "pos/v1/#")
		r := newReporter(t, b.scheme+"://"+b.addr, func(o *Options) { b.terminal(o, tid) })
		s.until(t, "A online", isState(Online))
		// The reporter refuses it itself...
		if err := r.Publish(context.Background(), StatusTopic(otherTID), true, []byte(`{"forged":true}`)); err == nil {
			t.Error("Reporter.Publish under another TID: no error")
		}
		// ...and a raw client with A's credentials is stopped by the broker:
		// mosquitto acknowledges and drops, mochi drops and disconnects (its
		// answer to a v3 client's forbidden QoS 1 publish), so each forged
		// publish gets a connection of its own.
		for _, topic := range []string{StatusTopic(otherTID), StateTopic(otherTID), CommandTopic(otherTID), EventsTopic(otherTID)} {
			c := mqtt.NewClient(b.login(tid).SetClientID("forger").SetAutoReconnect(false))
			if tok := c.Connect(); !tok.WaitTimeout(wait) || tok.Error() != nil {
				t.Fatal(tok.Error())
			}
			// Acknowledged or connection dropped (paho then completes the
			// token with an error): either way the broker has decided,
			// before anything published after this. Neither within wait
			// leaves the marker below proving nothing.
			if !c.Publish(topic, 1, true, []byte(`{"forged":true}`)).WaitTimeout(wait) {
				t.Fatalf("forged publish on %s: neither acknowledged nor dropped", topic)
			}
			c.Disconnect(50)
		}
		marker := func(p string) {
			t.Helper()
			if err := r.Publish(context.Background(), EventsTopic(tid), false, []byte(p)); err != nil {
				t.Fatal(err)
			}
		}
		marker(`{"marker":true}`)
		s.until(t, "marker", func(m msg) bool { return m.topic == EventsTopic(tid) && string(m.payload) == `{"marker":true}` })
		for _, got := range s.pending {
			if got.topic != StateTopic(tid) {
				t.Errorf("monitor received %s: %s", got.topic, got.payload)
			}
		}
		// Nothing retained under B either: retained messages come right
		// after the SUBACK, before the marker published after it.
		late, _ := watcher(t, b.monitor(), "pos/v1/"+otherTID+"/#", EventsTopic(tid))
		marker(`{"marker":2}`)
		late.until(t, "marker 2", func(m msg) bool { return string(m.payload) == `{"marker":2}` })
		if len(late.pending) > 0 {
			t.Errorf("late subscriber found %s retained under %s", late.pending[0].payload, otherTID)
		}
	})

	t.Run("WrongPasswordRefused", func(t *testing.T) {
		b := start(t)
		if b.login == nil {
			t.Skip("open broker: no users")
		}
		err := firstConnectError(t, b.scheme+"://"+b.addr, func(o *Options) { b.terminal(o, tid); o.Password = "wrong" })
		if !errors.Is(err, ErrLoginRefused) {
			t.Fatalf("connect error = %v, want ErrLoginRefused", err)
		}
		if containsAny(err.Error(), "wrong", "pw-") {
			t.Errorf("error %q shows a password", err)
		}
	})

	// Where the broker offers only TLS, a clear-text login gets no CONNACK
	// (the TLS listener cannot parse it): the terminal never connects, and
	// the error says so.
	t.Run("PlainLoginRefusedWhereOnlyTLS", func(t *testing.T) {
		b := start(t)
		if b.scheme != "ssl" {
			t.Skip("open broker: plain TCP only")
		}
		err := firstConnectError(t, "tcp://"+b.addr, func(o *Options) { b.terminal(o, tid); o.CAFile, o.CertFile, o.KeyFile = "", "", "" })
		if err == nil || errors.Is(err, ErrLoginRefused) {
			t.Fatalf("plain connect to the TLS listener: %v", err)
		}
	})

	t.Run("SIGKILLGivesWillWithSession", func(t *testing.T) {
		if testing.Short() {
			t.Skip("runs a child process")
		}
		b := start(t)
		s, _ := watcher(t, b.monitor(), StateTopic(tid))
		var o Options
		b.terminal(&o, tid)
		cmd := exec.Command(os.Args[0], "-test.run=^TestWillChild$", "-test.count=1")
		cmd.Env = append(os.Environ(),
			"POSAGENT_WILL_URL="+b.scheme+"://"+b.addr, "POSAGENT_WILL_USER="+o.Username, "POSAGENT_WILL_PASS="+o.Password,
			"POSAGENT_WILL_CA="+o.CAFile, "POSAGENT_WILL_CERT="+o.CertFile, "POSAGENT_WILL_KEY="+o.KeyFile)
		cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
		on := presence(t, s.until(t, "child online", isState(Online)))
		if on.Session != 42 {
			t.Errorf("birth session = %d, want 42", on.Session)
		}
		if err := cmd.Process.Kill(); err != nil { // SIGKILL
			t.Fatal(err)
		}
		_ = cmd.Wait()
		// The kernel closes the killed process's socket, so the broker sees
		// the loss at once; without that (a pulled cable) the Will waits for
		// 1.5 × keepalive, which the child sets to 5 s.
		off := presence(t, s.until(t, "Will", isState(Offline)))
		if off.Reason != ReasonConnectionLost || off.Session != 42 {
			t.Errorf("Will = %+v, want connection-lost with session 42", off)
		}
	})

	// The agent is SIGKILLed while the broker is down, after Report returned
	// for every status; the broker comes back, the agent restarts on the same
	// outbox, and the monitor gets every event, in order, none missing.
	t.Run("SIGKILLWhileBrokerDownLosesNothing", func(t *testing.T) {
		if testing.Short() {
			t.Skip("runs a child process")
		}
		const n = 7
		b := start(t)
		b.stop()
		dir := t.TempDir()
		var o Options
		b.terminal(&o, tid)
		cmd := exec.Command(os.Args[0], "-test.run=^TestKillChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), killDirEnv+"="+dir, killNEnv+"="+strconv.Itoa(n), killURLEnv+"="+b.scheme+"://"+b.addr,
			"POSAGENT_WILL_USER="+o.Username, "POSAGENT_WILL_PASS="+o.Password,
			"POSAGENT_WILL_CA="+o.CAFile, "POSAGENT_WILL_CERT="+o.CertFile, "POSAGENT_WILL_KEY="+o.KeyFile)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
		ready := make(chan bool, 1)
		go func() {
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				if sc.Text() == killReady {
					ready <- true
				}
			}
			ready <- false
		}()
		select {
		case ok := <-ready:
			if !ok {
				t.Fatal("the child ended before reporting")
			}
		case <-time.After(2 * wait):
			t.Fatal("the child did not report in time")
		}
		if err := cmd.Process.Kill(); err != nil { // SIGKILL
			t.Fatal(err)
		}
		_ = cmd.Wait()

		b.restart()
		s, _ := watcher(t, b.monitor(), terminalTopics...)
		ob := openOutbox(t, dir)
		newReporter(t, b.scheme+"://"+b.addr, func(o *Options) { b.terminal(o, tid); o.Queue = ob })
		got := collectEvents(t, s, 1, n)
		for i, m := range got {
			if want := fmt.Sprintf("report %d", i+1); m.Message != want {
				t.Errorf("event %d = %q, want %q", i, m.Message, want)
			}
		}
	})

	// The broker is killed mid-flow and restarted after the rest of the
	// reports were made. The outage here lasts as long as the test needs
	// (well under a second); TestMosquittoThirtySecondOutage holds the
	// broker down for the full 30 s once.
	t.Run("BrokerKilledMidFlowShortOutageLosesNothingInOrder", func(t *testing.T) {
		outageMidFlow(t, start, 0)
	})
}

// TestMosquittoThirtySecondOutage: the broker is down for 30 s in the middle
// of an install (the figure; paho's reconnect backoff has grown to
// 16 s by then), and every event arrives afterwards, in order, none missing.
func TestMosquittoThirtySecondOutage(t *testing.T) {
	outageMidFlow(t, mosquittoBench, 30*time.Second)
}

// outageMidFlow reports 4 events, stops the broker, reports 6 more while it
// is down, keeps it down for outage, restarts it, and checks the monitor gets
// events 5 to 10 in order.
func outageMidFlow(t *testing.T, start func(*testing.T) brokerUnderTest, outage time.Duration) {
	b := start(t)
	g := startGate(t, b.addr)
	s, subscribed := watcher(t, b.monitor(), terminalTopics...)
	r := newReporter(t, g.url(b.scheme), func(o *Options) { b.terminal(o, tid) })
	in := statuses(10)
	for _, st := range in[:4] {
		r.Report(context.Background(), st)
	}
	collectEvents(t, s, 1, 4)

	g.set(false) // the terminal must not come back before the monitor
	b.stop()
	down := time.Now()
	reportAll(t, r, in[4:])
	time.Sleep(outage - time.Since(down))
	b.restart()
	select {
	case <-subscribed:
	case <-time.After(wait):
		t.Fatal("monitor did not resubscribe")
	}
	g.set(true)
	// After a long outage paho's next attempt may be a backoff step away.
	collectEventsWithin(t, s, 5, 10, wait+time.Minute)
	s.noFullPAN(t)
}

// TestWillChild is the agent that SIGKILLGivesWillWithSession kills.
func TestWillChild(t *testing.T) {
	url := os.Getenv("POSAGENT_WILL_URL")
	if url == "" {
		t.Skip("the child of the core suite's SIGKILL case")
	}
	r, err := New(Options{URL: url, TID: tid, MID: mid, Serial: serial, Session: 42, Keepalive: 5 * time.Second,
		Username: os.Getenv("POSAGENT_WILL_USER"), Password: os.Getenv("POSAGENT_WILL_PASS"),
		CAFile: os.Getenv("POSAGENT_WILL_CA"), CertFile: os.Getenv("POSAGENT_WILL_CERT"), KeyFile: os.Getenv("POSAGENT_WILL_KEY"),
		Logger: quietLogger(), RetryInterval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Minute) // the parent kills us long before
	t.Fatal("not killed")
}

func flushed(t *testing.T, r *Reporter) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
}

// errLog hands every failed connection attempt's error to the test.
type errLog struct{ errs chan error }

func (h errLog) Enabled(context.Context, slog.Level) bool { return true }
func (h errLog) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h errLog) WithGroup(string) slog.Handler            { return h }
func (h errLog) Handle(_ context.Context, r slog.Record) error {
	if r.Message != MsgUnreachable {
		return nil
	}
	r.Attrs(func(a slog.Attr) bool {
		if err, ok := a.Value.Any().(error); ok && a.Key == "err" {
			select {
			case h.errs <- err:
			default:
			}
		}
		return true
	})
	return nil
}

// firstConnectError starts a reporter with o and returns the error of its first
// failed connection attempt.
func firstConnectError(t *testing.T, url string, mod func(*Options)) error {
	t.Helper()
	h := errLog{errs: make(chan error, 1)}
	newReporter(t, url, func(o *Options) { mod(o); o.Logger = slog.New(h) })
	select {
	case err := <-h.errs:
		return err
	case <-time.After(wait):
		t.Fatal("no failed connection attempt logged")
		return nil
	}
}

func secureMosquitto(t *testing.T, tlsOnly bool) *bench.Mosquitto {
	return bench.StartMosquittoWith(t, bench.MosquittoConfig{
		Users:   map[string]string{tid: "pw-" + tid, otherTID: "pw-" + otherTID, "monitor": "pw-monitor"},
		ACL:     bench.FleetACL,
		TLS:     true,
		NoPlain: tlsOnly, RequireClientCert: true,
		ClientCerts: []string{tid, otherTID, "monitor"},
	})
}

func containsAny(s string, subs ...string) bool {
	for _, x := range subs {
		if strings.Contains(s, x) {
			return true
		}
	}
	return false
}

// Where the broker offers only TLS, a plain MQTT login never gets a CONNACK
// (the TLS listener drops the clear-text CONNECT), and the correct password is
// never sent in clear to anything but that listener.
func TestMosquittoPlainLoginRefusedWhereOnlyTLS(t *testing.T) {
	m := secureMosquitto(t, true)
	err := firstConnectError(t, fmt.Sprintf("tcp://127.0.0.1:%d", m.TLSPort), func(o *Options) { o.Username, o.Password = tid, "pw-"+tid })
	if err == nil {
		t.Fatal("no error")
	}
	// And TLS without a client certificate is refused too (require_certificate).
	err = firstConnectError(t, m.TLSURL, func(o *Options) { o.Username, o.Password, o.CAFile = tid, "pw-"+tid, m.PKI.CAFile })
	if err == nil {
		t.Fatal("TLS without client certificate: no error")
	}
}
