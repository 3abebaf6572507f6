package mqtt_test

import (
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eclipse/paho.mqtt.golang/packets"

	"github.com/posagent/posagent/agent/central/mqtt"
)

// refusingBroker answers every CONNECT with a CONNACK carrying code (3:
// server unavailable, what RabbitMQ sends when it cannot register the
// client ID in time) and closes; it records each CONNECT's protocol level.
type refusingBroker struct {
	ln   net.Listener
	code byte

	mu     sync.Mutex
	levels []byte
}

func startRefusingBroker(t *testing.T, code byte) *refusingBroker {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &refusingBroker{ln: ln, code: code}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go b.serve(c)
		}
	}()
	return b
}

func (b *refusingBroker) serve(c net.Conn) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(wait))
	p, err := packets.ReadPacket(c)
	if err != nil {
		return
	}
	cp, ok := p.(*packets.ConnectPacket)
	if !ok {
		return
	}
	b.mu.Lock()
	b.levels = append(b.levels, cp.ProtocolVersion)
	b.mu.Unlock()
	ack := packets.NewControlPacket(packets.Connack).(*packets.ConnackPacket)
	ack.ReturnCode = b.code
	_ = ack.Write(c)
}

func (b *refusingBroker) connects() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]byte(nil), b.levels...)
}

// A refused CONNACK costs the broker one connection per attempt, in MQTT
// 3.1.1: paho, left to choose, follows every refusal with a second login in
// MQTT 3.1 at once, doubling a busy broker's load.
func TestRefusedAttemptIsOneConnect(t *testing.T) {
	b := startRefusingBroker(t, packets.ErrRefusedServerUnavailable)
	clock := newStepClock()
	h := brokerLog{events: make(chan string, 64)}
	newClient(t, "tcp://"+b.ln.Addr().String(), func(o *mqtt.Options) {
		o.RetryInterval, o.ReconnectMax = 0, time.Minute
		o.Rand, o.Clock, o.Logger = topRand{}, clock, slog.New(h)
	})
	clock.next(t, "first connect", 0)
	for i := range 3 {
		if got := h.next(t); !strings.HasPrefix(got, "failed ") {
			t.Fatalf("attempt %d: %q, want a failure", i, got)
		}
		if got := b.connects(); len(got) != i+1 {
			t.Fatalf("after %d refused attempts the broker saw %d CONNECTs (levels %v), want %d", i+1, len(got), got, i+1)
		}
		select {
		case s := <-clock.waits:
			s.fire <- time.Time{}
		case <-time.After(wait):
			t.Fatalf("no wait after attempt %d", i)
		}
	}
	for i, v := range b.connects() {
		if v != mqtt.ProtocolVersion {
			t.Errorf("CONNECT %d: protocol level %d, want %d", i, v, mqtt.ProtocolVersion)
		}
	}
}

// Through the connection loop, against a broker on loopback: a broker that
// answers "server unavailable" pushes the waits past mqtt.reconnect_max, up
// to BusyFactor times it; one that refuses for another reason does not.
func TestBusyBrokerRaisesBackoffCap(t *testing.T) {
	const capWait = 4 * time.Second
	for _, tc := range []struct {
		name  string
		code  byte
		waits []time.Duration
	}{
		{"server unavailable", packets.ErrRefusedServerUnavailable, []time.Duration{1, 2, 4, 8, 16, 32, 32}},
		{"not authorised", packets.ErrRefusedNotAuthorised, []time.Duration{1, 2, 4, 4, 4, 4, 4}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := startRefusingBroker(t, tc.code)
			clock := newStepClock()
			newClient(t, "tcp://"+b.ln.Addr().String(), func(o *mqtt.Options) {
				o.RetryInterval, o.ReconnectMax = 0, capWait
				o.Rand, o.Clock = topRand{}, clock
			})
			clock.next(t, "first connect", 0)
			for i, w := range tc.waits {
				select {
				case s := <-clock.waits:
					if s.d != w*time.Second {
						t.Errorf("after refusal %d: wait %v, want %v", i+1, s.d, w*time.Second)
					}
					// The refusal that led to this wait was the broker's
					// CONNECT number i+1 (recorded before its CONNACK).
					if n := len(b.connects()); n != i+1 {
						t.Errorf("after refusal %d the broker saw %d CONNECTs", i+1, n)
					}
					s.fire <- time.Time{}
				case <-time.After(wait):
					t.Fatalf("after refusal %d: no wait", i+1)
				}
			}
		})
	}
}
