package mqtttest

import (
	"crypto/rand"
	"encoding/hex"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// A terminal of the TLS cluster broker reaches the monitor, and the monitor,
// read-only as in the fleet ACL, is cut off when it publishes.
func TestClusterRabbitTLSTerminalToMonitor(t *testing.T) {
	tid := "tls" + uniqueHex(t)
	b := RabbitClusterTLS(t, 1, tid)
	if b.Scheme != "ssl" {
		t.Fatalf("scheme %q, want ssl", b.Scheme)
	}
	got := make(chan paho.Message, 4)
	lost := make(chan struct{}, 1)
	mon := connect(t, b.Monitor().SetClientID("mon-"+tid).SetConnectionLostHandler(func(paho.Client, error) {
		lost <- struct{}{}
	}))
	if tok := mon.Subscribe("pos/v1/+/events", 1, func(_ paho.Client, m paho.Message) { got <- m }); !tok.WaitTimeout(patience) || tok.Error() != nil {
		t.Fatalf("monitor subscribe: %v", tok.Error())
	}
	term := connect(t, b.Login(tid).SetClientID("posagent-"+tid))
	if tok := term.Publish("pos/v1/"+tid+"/events", 1, false, []byte("e1")); !tok.WaitTimeout(patience) || tok.Error() != nil {
		t.Fatalf("terminal publish: %v", tok.Error())
	}
	select {
	case m := <-got:
		if m.Topic() != "pos/v1/"+tid+"/events" || string(m.Payload()) != "e1" {
			t.Fatalf("monitor got %s %q", m.Topic(), m.Payload())
		}
	case <-time.After(patience):
		t.Fatal("the monitor got nothing")
	}
	mon.Publish("pos/v1/"+tid+"/cmd", 1, false, []byte("{}"))
	select {
	case <-lost:
	case <-time.After(patience):
		t.Fatal("the broker kept the monitor connected after a publish it may not make")
	}
}

func connect(t *testing.T, o *paho.ClientOptions) paho.Client {
	t.Helper()
	c := paho.NewClient(o.SetAutoReconnect(false).SetCleanSession(true))
	if tok := c.Connect(); !tok.WaitTimeout(patience) || tok.Error() != nil {
		t.Fatalf("connect: %v", tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(50) })
	return c
}

func uniqueHex(t *testing.T) string {
	t.Helper()
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}
