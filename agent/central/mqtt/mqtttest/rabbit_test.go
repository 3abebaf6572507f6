package mqtttest

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
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

// RabbitMQ 3.10 keeps a client's QoS 1 subscriptions in a durable queue
// named for its client id (mqtt-subscription-{id}qos1) on the node it first
// connected to, clean session or not. When that node dies, the client can
// connect elsewhere under the same id (CONNACK) but its first QoS 1
// SUBSCRIBE closes the connection ("home node … is down"), until the node
// is back. A QoS 0 subscription (a transient queue) is not held back. This
// pins the fact docs/mqtt.md's "Guarantees per broker" builds on: a
// terminal that subscribes at QoS 1 under a fixed client id does not fail
// over to another node of a 3.10 cluster while its node is down.
func TestClusterQoS1SubscriptionWaitsForItsNode(t *testing.T) {
	tid := uniqueHex(t)
	nodes := RabbitClusterNodes(t, false, tid)
	topic := "pos/v1/" + tid + "/cmd"
	central := connect(t, nodes[2].Login("central").SetClientID("central-"+tid))
	for _, qos := range []byte{0, 1} {
		id := fmt.Sprintf("posagent-%s-q%d", tid, qos)
		first := connect(t, nodes[0].Login(tid).SetClientID(id))
		if tok := first.Subscribe(topic, qos, nil); !tok.WaitTimeout(patience) || tok.Error() != nil {
			t.Fatalf("QoS %d subscribe on node 0: %v", qos, tok.Error())
		}
		nodes[0].Stop() // SIGKILL

		got := make(chan string, 4)
		lost := make(chan error, 1)
		again := connect(t, nodes[1].Login(tid).SetClientID(id).SetConnectionLostHandler(func(_ paho.Client, err error) { lost <- err }))
		tok := again.Subscribe(topic, qos, func(_ paho.Client, m paho.Message) { got <- string(m.Payload()) })
		subscribed := tok.WaitTimeout(patience) && tok.Error() == nil
		switch qos {
		case 0:
			if !subscribed {
				t.Fatalf("QoS 0 subscribe on node 1 with node 0 down: %v", tok.Error())
			}
			if tok := central.Publish(topic, 1, false, []byte("c0")); !tok.WaitTimeout(patience) || tok.Error() != nil {
				t.Fatalf("central publish: %v", tok.Error())
			}
			select {
			case m := <-got:
				if m != "c0" {
					t.Errorf("QoS 0 subscriber got %q", m)
				}
			case err := <-lost:
				t.Fatalf("QoS 0 subscriber on node 1 lost its connection: %v", err)
			case <-time.After(patience):
				t.Fatal("QoS 0 subscriber on node 1 got nothing")
			}
		case 1:
			if subscribed {
				t.Fatal("QoS 1 subscribe on node 1 held while its queue's node was down: RabbitMQ changed; update docs/mqtt.md's Guarantees per broker")
			}
			select {
			case <-lost:
			case <-time.After(patience):
				t.Fatal("QoS 1 subscribe refused but the connection stays open")
			}
		}
		again.Disconnect(50)
		nodes[0].Restart()
		if qos == 1 {
			// Its node back, the same id subscribes anywhere.
			c := connect(t, nodes[1].Login(tid).SetClientID(id))
			if tok := c.Subscribe(topic, 1, nil); !tok.WaitTimeout(patience) || tok.Error() != nil {
				t.Fatalf("QoS 1 subscribe on node 1 with node 0 back: %v", tok.Error())
			}
		}
	}
}
