package broker

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/posagent/posagent/agent/testkit/bench"
)

const wait = 10 * time.Second

func connect(t *testing.T, url, id string, will bool) mqtt.Client {
	t.Helper()
	o := mqtt.NewClientOptions().AddBroker(url).SetClientID(id).SetCleanSession(true)
	if will {
		// No reconnect: this client plays a terminal that died. A paho
		// reconnect under the same id takes the dropped session over, and a
		// read loop that reaches its top after the takeover stopped the old
		// client ends without an error, and so without the Will (mochi
		// v2.7.9 server.go attachClient: Read returns nil once Closed) —
		// the one path found that could explain a Will missed once under
		// CI load.
		o.SetWill("t/will", "gone", 1, true).SetAutoReconnect(false)
	}
	c := mqtt.NewClient(o)
	if tok := c.Connect(); !tok.WaitTimeout(wait) || tok.Error() != nil {
		t.Fatalf("connect %s: %v", id, tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(50) })
	return c
}

func TestRetainedRoundTripAndWill(t *testing.T) {
	var logs bench.Buffer
	b, err := Start("127.0.0.1:0", slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if strings.HasSuffix(b.URL(), ":0") || !strings.HasPrefix(b.URL(), "tcp://127.0.0.1:") {
		t.Fatalf("URL = %q, want the bound port", b.URL())
	}

	pub := connect(t, b.URL(), "pub", true)
	if tok := pub.Publish("t/retained", 1, true, "hello"); !tok.WaitTimeout(wait) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	got := make(chan mqtt.Message, 10)
	sub := connect(t, b.URL(), "sub", false)
	if tok := sub.Subscribe("t/#", 1, func(_ mqtt.Client, m mqtt.Message) { got <- m }); !tok.WaitTimeout(wait) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	// mochi may acknowledge a publish before it has fanned it out, so a
	// subscriber that arrives right after can get "hello" twice: retained, and
	// live. Look for the retained copy.
	m := next(t, got)
	if !m.Retained() {
		m = next(t, got)
	}
	if m.Topic() != "t/retained" || string(m.Payload()) != "hello" || !m.Retained() {
		t.Errorf("got %s %q retained=%v, want the retained message", m.Topic(), m.Payload(), m.Retained())
	}

	if b.DropClient("nobody") {
		t.Error("DropClient of an unknown client reported true")
	}
	if !b.DropClient("pub") {
		t.Fatal("DropClient(pub) = false")
	}
	// (The live copy of "hello" may still be on its way.)
	for m = next(t, got); m.Topic() == "t/retained"; m = next(t, got) {
	}
	if m.Topic() != "t/will" || string(m.Payload()) != "gone" {
		t.Errorf("after the drop got %s %q, want the Will", m.Topic(), m.Payload())
	}
	if strings.Contains(logs.String(), "level=INFO") {
		t.Errorf("broker logged below warning:\n%s", logs.String())
	}
}

func next(t *testing.T, ch <-chan mqtt.Message) mqtt.Message {
	t.Helper()
	select {
	case m := <-ch:
		return m
	case <-time.After(wait):
		t.Fatal("timed out waiting for a message")
		return nil
	}
}

func TestStartOnBusyPortFails(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if b, err := Start(l.Addr().String(), nil); err == nil {
		b.Close()
		t.Fatal("Start on a busy port succeeded")
	}
}

func TestCloseTwice(t *testing.T) {
	b, err := Start("127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestMinLevel(t *testing.T) {
	var buf bytes.Buffer
	l := slog.New(minLevel{h: slog.NewTextHandler(&buf, nil), min: slog.LevelWarn}).With("k", "v").WithGroup("g")
	l.Info("chatty")
	l.Warn("worth it")
	if out := buf.String(); strings.Contains(out, "chatty") || !strings.Contains(out, "worth it") || !strings.Contains(out, "k=v") {
		t.Errorf("log = %q", out)
	}
	if (minLevel{h: slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelError}), min: slog.LevelWarn}).Enabled(context.Background(), slog.LevelWarn) {
		t.Error("minLevel enables what the wrapped handler refuses")
	}
}
