package mqtttest

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/posagent/posagent/agent/central/mqtt"
)

// patience is how long Until waits by default: generous, CI machines stall.
const patience = 10 * time.Second

// Msg is what a Subscriber received.
type Msg struct {
	Topic    string
	Payload  []byte
	Retained bool
}

// Subscriber is a plain paho client standing in for central monitoring, for
// the suites of the session and of the reporter: they read what reached it
// one message at a time with Until.
type Subscriber struct {
	ch chan Msg
	// pending holds messages an Until call passed over, in arrival order, for
	// the next calls: retained messages come in no fixed order across topics.
	pending []Msg
	// Patience, when set, replaces the default wait in Until: for deliveries
	// that wait on a keepalive or a reconnect backoff.
	Patience time.Duration

	mu  sync.Mutex
	all [][]byte // every payload, for checks over all of them (no full PAN)
}

// subscribers numbers the client ids: a client that connects under an id
// already connected takes its session over and the broker drops the first.
var subscribers atomic.Int64

// subscriberID is a client id no other subscriber uses, in this process or
// in another: the test packages run at once, and on the shared RabbitMQ
// cluster a "sub-1" of one package would take over another's (the broker
// drops the first, and its test waits for messages that never come).
func subscriberID() string {
	return fmt.Sprintf("sub-%d-%d-%s", os.Getpid(), subscribers.Add(1), processTag)
}

// processTag tells apart two processes that reuse a pid (a test binary run
// again, or one in another container on the same broker).
var processTag = func() string {
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		return "0"
	}
	return hex.EncodeToString(b)
}()

func newSubscriber() *Subscriber { return &Subscriber{ch: make(chan Msg, 4096)} }

// handle runs in the client's delivery goroutine for every message.
func (s *Subscriber) handle(_ paho.Client, m paho.Message) {
	s.mu.Lock()
	s.all = append(s.all, append([]byte(nil), m.Payload()...))
	s.mu.Unlock()
	s.ch <- Msg{Topic: m.Topic(), Payload: m.Payload(), Retained: m.Retained()}
}

// qos1 subscribes every filter at QoS 1.
func qos1(filters []string) map[string]byte {
	m := map[string]byte{}
	for _, f := range filters {
		m[f] = 1
	}
	return m
}

// Subscribe connects anonymously to url with a clean session and subscribes
// filters, waiting for the SUBACK; the test's cleanup disconnects.
func Subscribe(t testing.TB, url string, filters ...string) *Subscriber {
	t.Helper()
	s := newSubscriber()
	c := paho.NewClient(paho.NewClientOptions().AddBroker(url).SetClientID(subscriberID()).SetCleanSession(true))
	if tok := c.Connect(); !tok.WaitTimeout(patience) || tok.Error() != nil {
		t.Fatalf("mqtttest: subscriber connect: %v", tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(50) })
	if tok := c.SubscribeMultiple(qos1(filters), s.handle); !tok.WaitTimeout(patience) || tok.Error() != nil {
		t.Fatalf("mqtttest: subscribe: %v", tok.Error())
	}
	return s
}

// Watch is central monitoring on a broker under test, logged in with co
// (Broker.Monitor): it reconnects by itself, resubscribes after every
// connect and says so on subscribed, so a test knows when it is listening
// again after an outage. It returns once the first subscription holds.
func Watch(t testing.TB, co *paho.ClientOptions, filters ...string) (*Subscriber, <-chan struct{}) {
	t.Helper()
	s := newSubscriber()
	subscribed := make(chan struct{}, 16)
	m := qos1(filters)
	co.SetClientID(subscriberID()).SetCleanSession(true).
		SetAutoReconnect(true).SetMaxReconnectInterval(200 * time.Millisecond).
		SetOnConnectHandler(func(c paho.Client) {
			tok := c.SubscribeMultiple(m, s.handle)
			go func() {
				if tok.Wait(); tok.Error() == nil {
					subscribed <- struct{}{}
				}
			}()
		})
	c := paho.NewClient(co)
	if tok := c.Connect(); !tok.WaitTimeout(patience) || tok.Error() != nil {
		t.Fatalf("mqtttest: monitor connect: %v", tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(50) })
	select {
	case <-subscribed:
	case <-time.After(patience):
		t.Fatal("mqtttest: monitor not subscribed")
	}
	return s, subscribed
}

// Until returns the first message that pred accepts, failing the test after
// Patience (10 s when unset). Messages it passes over wait in Pending for
// the next calls.
func (s *Subscriber) Until(t testing.TB, what string, pred func(Msg) bool) Msg {
	t.Helper()
	for i, m := range s.pending {
		if pred(m) {
			s.pending = append(s.pending[:i], s.pending[i+1:]...)
			return m
		}
	}
	d := patience
	if s.Patience > 0 {
		d = s.Patience
	}
	timeout := time.NewTimer(d)
	defer timeout.Stop()
	for {
		select {
		case m := <-s.ch:
			if pred(m) {
				return m
			}
			s.pending = append(s.pending, m)
		case <-timeout.C:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// Pending is what Until calls passed over so far, in arrival order: after
// an Until for a marker published last, all else that arrived before it.
func (s *Subscriber) Pending() []Msg { return append([]Msg(nil), s.pending...) }

// All is every payload received so far, Until's or not, each a copy.
func (s *Subscriber) All() [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([][]byte(nil), s.all...)
}

// Presence decodes m's payload as a terminal's state, or fails the test.
func Presence(t testing.TB, m Msg) mqtt.Presence {
	t.Helper()
	var p mqtt.Presence
	if err := json.Unmarshal(m.Payload, &p); err != nil {
		t.Fatalf("state payload %q: %v", m.Payload, err)
	}
	return p
}

// RetainedOn accepts the retained copy of topic. A subscriber that arrives
// right after a publish can also get a live copy: mochi acknowledges a publish
// before it has fanned it out.
func RetainedOn(topic string) func(Msg) bool {
	return func(m Msg) bool { return m.Retained && m.Topic == topic }
}

// IsState accepts terminal tid's presence in state (mqtt.Online, mqtt.Offline).
func IsState(tid, state string) func(Msg) bool {
	return func(m Msg) bool {
		if m.Topic != mqtt.StateTopic(tid) {
			return false
		}
		var p mqtt.Presence
		return json.Unmarshal(m.Payload, &p) == nil && p.State == state
	}
}
