package mqtt_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/posagent/posagent/agent/central/mqtt"
	"github.com/posagent/posagent/agent/central/mqtt/mqtttest"
	"github.com/posagent/posagent/agent/testkit/bench"
)

// The core suites run against five brokers (mqtttest): a mosquitto locked
// down as in production (TLS with client certificates, a password file and
// the fleet ACL), the embedded mochi broker locked down the same way, mochi
// open (plain, anonymous), as the demo runs it, and a node of the 3-node
// RabbitMQ cluster locked down with topic permissions, plain and over TLS
// (make test-cluster; skipped without POSAGENT_CLUSTER=1).
//
// Each case takes fresh TIDs (mqtttest.NewTID): the cluster is shared by
// every package testing at once, and its retained messages outlive a run.

const otherTID = "10000002"

// benchFunc starts a broker that knows the terminals tids.
type benchFunc func(t *testing.T, tids ...string) mqtttest.Broker

func mosquittoBench(t *testing.T, tids ...string) mqtttest.Broker {
	return mqtttest.MosquittoTLSACL(t, tids...)
}
func mochiSecureBench(t *testing.T, tids ...string) mqtttest.Broker {
	return mqtttest.MochiTLSACL(t, tids...)
}
func mochiBench(t *testing.T, _ ...string) mqtttest.Broker { return mqtttest.MochiOpen(t) }

// The cluster suites put the terminal and the monitor on one node: that is
// where RabbitMQ keeps a retained message and where it delivers it (to
// exact-topic subscribers only). Plain on node 0, TLS on node 1.
func rabbitBench(t *testing.T, tids ...string) mqtttest.Broker {
	return mqtttest.RabbitCluster(t, 0, tids...)
}
func rabbitTLSBench(t *testing.T, tids ...string) mqtttest.Broker {
	return mqtttest.RabbitClusterTLS(t, 1, tids...)
}

// The session through each broker: the ACL keeps a terminal to its own
// topics, a wrong password and a clear-text login are refused, and a
// SIGKILL gives the Will with the session number.
func TestCoreSuiteMosquittoTLSACL(t *testing.T)  { coreSuite(t, mosquittoBench) }
func TestCoreSuiteMochiTLSACL(t *testing.T)      { coreSuite(t, mochiSecureBench) }
func TestCoreSuiteMochiOpen(t *testing.T)        { coreSuite(t, mochiBench) }
func TestCoreSuiteRabbitCluster(t *testing.T)    { coreSuite(t, rabbitBench) }
func TestCoreSuiteRabbitClusterTLS(t *testing.T) { coreSuite(t, rabbitTLSBench) }

func coreSuite(t *testing.T, start benchFunc) {
	// fresh is a case's terminal and another one, named for it alone (they
	// shadow the package's TIDs inside each case).
	fresh := func(t *testing.T) (string, string) { return mqtttest.NewTID(t), mqtttest.NewTID(t) }

	// Terminal A, logged in as itself, publishes under terminal B's topics:
	// the ACL drops it. A marker on A's own topic, published after the
	// broker has answered each forged publish, reaches the monitor; both
	// brokers route a publish to the subscribers' queues when they receive
	// it, so a forged message let through would have arrived first.
	t.Run("TerminalCannotPublishForAnother", func(t *testing.T) {
		tid, otherTID := fresh(t)
		b := start(t, tid, otherTID)
		if b.Login == nil {
			t.Skip("open broker: no users, no ACL")
		}
		// Both terminals' subtrees, not pos/v1/#: a shared broker carries
		// other tests' terminals too.
		s, _ := mqtttest.Watch(t, b.Monitor(), "pos/v1/"+tid+"/#", "pos/v1/"+otherTID+"/#")
		r := newClient(t, b.URL(), func(o *mqtt.Options) { b.Terminal(o, tid) })
		s.Until(t, "A online", mqtttest.IsState(tid, mqtt.Online))
		// The client refuses it itself...
		if err := r.Publish(context.Background(), mqtt.StatusTopic(otherTID), true, []byte(`{"forged":true}`)); err == nil {
			t.Error("Client.Publish under another TID: no error")
		}
		// ...and a raw client with A's credentials is stopped by the broker:
		// mosquitto acknowledges and drops, mochi drops and disconnects (its
		// answer to a v3 client's forbidden QoS 1 publish), RabbitMQ closes
		// the connection without a PUBACK (its topic permissions), so each
		// forged publish gets a connection of its own.
		forged := []string{mqtt.StatusTopic(otherTID), mqtt.StateTopic(otherTID), mqtt.CommandTopic(otherTID), mqtt.EventsTopic(otherTID)}
		for _, topic := range forged {
			c := paho.NewClient(b.Login(tid).SetClientID("forger-" + tid).SetAutoReconnect(false))
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
			if err := r.Publish(context.Background(), mqtt.EventsTopic(tid), false, []byte(p)); err != nil {
				t.Fatal(err)
			}
		}
		marker(`{"marker":true}`)
		s.Until(t, "marker", func(m mqtttest.Msg) bool {
			return m.Topic == mqtt.EventsTopic(tid) && string(m.Payload) == `{"marker":true}`
		})
		for _, got := range s.Pending() {
			if got.Topic != mqtt.StateTopic(tid) {
				t.Errorf("monitor received %s: %s", got.Topic, got.Payload)
			}
		}
		// Nothing retained under B either: retained messages come right
		// after the SUBACK, before the marker published after it. The
		// forged topics are named exactly, since RabbitMQ gives retained
		// messages to exact-topic subscribers only: under pos/v1/B/# this
		// check could not fail there.
		late, _ := mqtttest.Watch(t, b.Monitor(), append(forged, mqtt.EventsTopic(tid))...)
		marker(`{"marker":2}`)
		late.Until(t, "marker 2", func(m mqtttest.Msg) bool { return string(m.Payload) == `{"marker":2}` })
		if len(late.Pending()) > 0 {
			t.Errorf("late subscriber found %s retained under %s", late.Pending()[0].Payload, otherTID)
		}
	})

	// The heartbeat passes the broker's ACL: the monitor sees the beats.
	t.Run("HeartbeatPassesTheACL", func(t *testing.T) {
		tid, otherTID := fresh(t)
		b := start(t, tid, otherTID)
		s, _ := mqtttest.Watch(t, b.Monitor(), mqtt.HeartbeatTopic(tid))
		newClient(t, b.URL(), func(o *mqtt.Options) { b.Terminal(o, tid); o.Heartbeat = 50 * time.Millisecond })
		for want := uint64(1); want <= 2; want++ {
			var hb mqtt.Heartbeat
			m := s.Until(t, "heartbeat", func(m mqtttest.Msg) bool { return m.Topic == mqtt.HeartbeatTopic(tid) })
			if err := json.Unmarshal(m.Payload, &hb); err != nil || hb.Beat != want {
				t.Errorf("heartbeat %s (%v), want beat %d", m.Payload, err, want)
			}
		}
	})

	t.Run("WrongPasswordRefused", func(t *testing.T) {
		tid, otherTID := fresh(t)
		b := start(t, tid, otherTID)
		if b.Login == nil {
			t.Skip("open broker: no users")
		}
		err := firstConnectError(t, b.URL(), func(o *mqtt.Options) { b.Terminal(o, tid); o.Password = "wrong" })
		if !errors.Is(err, mqtt.ErrLoginRefused) {
			t.Fatalf("connect error = %v, want mqtt.ErrLoginRefused", err)
		}
		if containsAny(err.Error(), "wrong", "pw-") {
			t.Errorf("error %q shows a password", err)
		}
	})

	// Where the broker offers only TLS, a clear-text login gets no CONNACK
	// (the TLS listener cannot parse it): the terminal never connects, and
	// the error says so.
	t.Run("PlainLoginRefusedWhereOnlyTLS", func(t *testing.T) {
		tid, otherTID := fresh(t)
		b := start(t, tid, otherTID)
		if b.Scheme != "ssl" {
			t.Skip("open broker: plain TCP only")
		}
		err := firstConnectError(t, "tcp://"+b.Addr, func(o *mqtt.Options) { b.Terminal(o, tid); o.CAFile, o.CertFile, o.KeyFile = "", "", "" })
		if err == nil || errors.Is(err, mqtt.ErrLoginRefused) {
			t.Fatalf("plain connect to the TLS listener: %v", err)
		}
	})

	t.Run("SIGKILLGivesWillWithSession", func(t *testing.T) {
		if testing.Short() {
			t.Skip("runs a child process")
		}
		tid, otherTID := fresh(t)
		b := start(t, tid, otherTID)
		s, _ := mqtttest.Watch(t, b.Monitor(), mqtt.StateTopic(tid))
		var o mqtt.Options
		b.Terminal(&o, tid)
		cmd := exec.Command(os.Args[0], "-test.run=^TestWillChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), "POSAGENT_WILL_TID="+o.TID,
			"POSAGENT_WILL_URL="+b.URL(), "POSAGENT_WILL_USER="+o.Username, "POSAGENT_WILL_PASS="+o.Password,
			"POSAGENT_WILL_CA="+o.CAFile, "POSAGENT_WILL_CERT="+o.CertFile, "POSAGENT_WILL_KEY="+o.KeyFile)
		cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
		on := mqtttest.Presence(t, s.Until(t, "child online", mqtttest.IsState(tid, mqtt.Online)))
		if on.Session != 42 {
			t.Errorf("birth session = %d, want 42", on.Session)
		}
		if err := cmd.Process.Kill(); err != nil { // SIGKILL
			t.Fatal(err)
		}
		killed := time.Now()
		_ = cmd.Wait()
		// The kernel closes the killed process's socket, so the broker sees
		// the loss at once; without that (a pulled cable) the Will waits for
		// 1.5 × keepalive, which the child sets to 5 s.
		off := mqtttest.Presence(t, s.Until(t, "Will", mqtttest.IsState(tid, mqtt.Offline)))
		if off.Reason != mqtt.ReasonConnectionLost || off.Session != 42 {
			t.Errorf("Will = %+v, want connection-lost with session 42", off)
		}
		t.Logf("Will %v after the SIGKILL", time.Since(killed).Round(100*time.Microsecond))
	})
}

// TestWillChild is the agent that SIGKILLGivesWillWithSession kills.
func TestWillChild(t *testing.T) {
	url := os.Getenv("POSAGENT_WILL_URL")
	if url == "" {
		t.Skip("the child of the core suite's SIGKILL case")
	}
	r, err := mqtt.New(mqtt.Options{URL: url, TID: os.Getenv("POSAGENT_WILL_TID"), MID: mid, Serial: serial, Session: 42, Keepalive: 5 * time.Second,
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

// errLog hands every failed connection attempt's error to the test.
type errLog struct{ errs chan error }

func (h errLog) Enabled(context.Context, slog.Level) bool { return true }
func (h errLog) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h errLog) WithGroup(string) slog.Handler            { return h }

func (h errLog) Handle(_ context.Context, r slog.Record) error {
	if r.Message != mqtt.MsgUnreachable {
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

// firstConnectError starts a client with o and returns the error of its first
// failed connection attempt.
func firstConnectError(t *testing.T, url string, mod func(*mqtt.Options)) error {
	t.Helper()
	h := errLog{errs: make(chan error, 1)}
	newClient(t, url, func(o *mqtt.Options) { mod(o); o.Logger = slog.New(h) })
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
	err := firstConnectError(t, fmt.Sprintf("tcp://127.0.0.1:%d", m.TLSPort), func(o *mqtt.Options) { o.Username, o.Password = tid, "pw-"+tid })
	if err == nil {
		t.Fatal("no error")
	}
	// And TLS without a client certificate is refused too (require_certificate).
	err = firstConnectError(t, m.TLSURL, func(o *mqtt.Options) { o.Username, o.Password, o.CAFile = tid, "pw-"+tid, m.PKI.CAFile })
	if err == nil {
		t.Fatal("TLS without client certificate: no error")
	}
}
