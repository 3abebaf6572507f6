package mqtt_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/posagent/posagent/agent/central/mqtt"
	"github.com/posagent/posagent/agent/central/mqtt/mqtttest"
	"github.com/posagent/posagent/agent/testkit/bench"
)

// 10,000 consecutive 8-digit TIDs spread over three brokers within ±5% of
// a third each, and a TID always gets the same start node.
func TestStartIndexSpreadsAFleet(t *testing.T) {
	const n, nodes = 10000, 3
	var count [nodes]int
	for tid := 10000000; tid < 10000000+n; tid++ {
		count[mqtt.StartIndex(fmt.Sprintf("%08d", tid), nodes)]++
	}
	lo, hi := n/nodes*95/100, n/nodes*105/100
	for i, c := range count {
		if c < lo || c > hi {
			t.Errorf("node %d starts %d of %d terminals, want %d..%d", i, c, n, lo, hi)
		}
	}
	t.Logf("start nodes of TIDs 10000000..10009999: %v", count)
	if a, b := mqtt.StartIndex("10000001", nodes), mqtt.StartIndex("10000001", nodes); a != b {
		t.Errorf("StartIndex is not deterministic: %d, %d", a, b)
	}
	if i := mqtt.StartIndex("10000001", 1); i != 0 {
		t.Errorf("StartIndex over one broker = %d", i)
	}
	// FNV-1a 32 of "10000001" is 0xe8d8c957, of "10000002" 0xe9d8caea,
	// of "10000003" 0xead8cc7d (docs/mqtt.md's example): nodes 1, 0, 2 of 3.
	for tid, want := range map[string]int{"10000001": 1, "10000002": 0, "10000003": 2} {
		if i := mqtt.StartIndex(tid, 3); i != want {
			t.Errorf("StartIndex(%s, 3) = %d, want %d", tid, i, want)
		}
	}
}

// topRand draws the top of every range, so each wait is its bound.
type topRand struct{}

func (topRand) Int64N(n int64) int64 { return n - 1 }

// stepClock is a Clock the test drives: every After is handed to the test
// (waits), which fires it; Now moves only when the test says.
type stepClock struct {
	mu    sync.Mutex
	now   time.Time
	waits chan step
	// nows has a value for every Now call: the loop reads the time when a
	// connection is up and when it is lost.
	nows chan struct{}
}

type step struct {
	d    time.Duration
	fire chan time.Time
}

func newStepClock() *stepClock {
	return &stepClock{now: time.Date(2026, 12, 3, 8, 0, 0, 0, time.UTC), waits: make(chan step, 64), nows: make(chan struct{}, 64)}
}

func (c *stepClock) Now() time.Time {
	select {
	case c.nows <- struct{}{}:
	default:
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *stepClock) After(d time.Duration) <-chan time.Time {
	s := step{d: d, fire: make(chan time.Time, 1)}
	c.waits <- s
	return s.fire
}

func (c *stepClock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// next takes the loop's next wait, checks it is want, and fires it.
func (c *stepClock) next(t *testing.T, what string, want time.Duration) {
	t.Helper()
	select {
	case s := <-c.waits:
		if s.d != want {
			t.Errorf("%s: wait %v, want %v", what, s.d, want)
		}
		s.fire <- time.Time{}
	case <-time.After(wait):
		t.Fatalf("%s: the loop asked for no wait", what)
	}
}

// brokerLog hands the broker of every failed attempt and every connect to
// the test, in order.
type brokerLog struct{ events chan string }

func (h brokerLog) Enabled(context.Context, slog.Level) bool { return true }
func (h brokerLog) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h brokerLog) WithGroup(string) slog.Handler            { return h }

func (h brokerLog) Handle(_ context.Context, r slog.Record) error {
	kind := map[string]string{mqtt.MsgUnreachable: "failed", "mqtt: connected": "connected"}[r.Message]
	if kind == "" {
		return nil
	}
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "broker" {
			h.events <- kind + " " + a.Value.String()
		}
		return true
	})
	return nil
}

func (h brokerLog) next(t *testing.T) string {
	t.Helper()
	select {
	case e := <-h.events:
		return e
	case <-time.After(wait):
		t.Fatal("no connection attempt logged")
		return ""
	}
}

// The first attempt waits the connect jitter; each failure moves to the next
// broker, round robin from the TID's start node, after a wait that doubles
// from 1 s up to the cap.
func TestConnectJitterThenBackoffRoundRobin(t *testing.T) {
	urls := []string{"tcp://" + bench.ReserveAddr(t), "tcp://" + bench.ReserveAddr(t), "tcp://" + bench.ReserveAddr(t)}
	clock := newStepClock()
	h := brokerLog{events: make(chan string, 64)}
	newClient(t, "", func(o *mqtt.Options) {
		o.URL, o.URLs, o.RetryInterval = "", urls, 0
		o.ConnectJitter, o.ReconnectMax = 10*time.Second, 20*time.Second
		o.Rand, o.Clock, o.Logger = topRand{}, clock, slog.New(h)
	})
	start := mqtt.StartIndex(tid, len(urls))
	clock.next(t, "first connect", 10*time.Second)
	for i, w := range []time.Duration{1, 2, 4, 8, 16, 20, 20} {
		want := "failed " + urls[(start+i)%len(urls)]
		if got := h.next(t); got != want {
			t.Errorf("attempt %d: %q, want %q", i, got, want)
		}
		clock.next(t, fmt.Sprintf("after failure %d", i+1), w*time.Second)
	}
}

// A seeded source: the first-connect jitter is drawn from [0, jitter], not
// the top of it, and differs between sources (so a fleet spreads).
func TestConnectJitterIsDrawn(t *testing.T) {
	const jitter = 10 * time.Second
	draws := map[time.Duration]bool{}
	for seed := uint64(1); seed <= 3; seed++ {
		clock := newStepClock()
		newClient(t, "tcp://"+bench.ReserveAddr(t), func(o *mqtt.Options) {
			o.ConnectJitter, o.Rand, o.Clock = jitter, seeded(seed), clock
		})
		select {
		case s := <-clock.waits:
			if s.d < 0 || s.d > jitter {
				t.Errorf("seed %d: first wait %v outside [0, %v]", seed, s.d, jitter)
			}
			draws[s.d] = true
		case <-time.After(wait):
			t.Fatal("no first wait")
		}
	}
	if len(draws) < 2 {
		t.Errorf("three seeds drew the same first wait: %v", draws)
	}
}

// A connection that stayed up one keepalive resets the backoff: the wait
// after its loss is the base again. One that dropped sooner does not: the
// wait goes on doubling.
func TestBackoffResetsAfterStableConnection(t *testing.T) {
	for _, stable := range []bool{true, false} {
		t.Run(fmt.Sprintf("stable=%v", stable), func(t *testing.T) {
			b := startBroker(t, "127.0.0.1:0")
			g := mqtttest.StartGate(t, b.Addr())
			g.Set(false)
			s := mqtttest.Subscribe(t, b.URL(), mqtt.StateTopic(tid))
			clock := newStepClock()
			h := brokerLog{events: make(chan string, 64)}
			newClient(t, g.URL("tcp"), func(o *mqtt.Options) {
				o.RetryInterval, o.Keepalive = 0, 30*time.Second
				o.Rand, o.Clock, o.Logger = topRand{}, clock, slog.New(h)
			})
			clock.next(t, "first connect", 0)
			for _, w := range []time.Duration{1, 2, 4} {
				h.next(t) // failed: the gate is shut
				clock.next(t, "after a failure", w*time.Second)
			}
			h.next(t)
			g.Set(true)
			clock.next(t, "after a failure", 8*time.Second)
			if got := h.next(t); got != "connected "+g.URL("tcp") {
				t.Fatalf("log %q, want the connect", got)
			}
			s.Until(t, "online", mqtttest.IsState(tid, mqtt.Online))
			select {
			case <-clock.nows: // the loop took the connection's start time
			case <-time.After(wait):
				t.Fatal("the loop never read the clock")
			}
			if stable {
				clock.advance(30 * time.Second)
			} else {
				clock.advance(29 * time.Second)
			}
			g.Set(false) // the connection drops
			want := 16 * time.Second
			if stable {
				want = time.Second
			}
			clock.next(t, "after the loss", want)
		})
	}
}

// heartbeatRE is the payload, byte for byte but the beat and the time.
var heartbeatRE = regexp.MustCompile(`^\{"tid":"10000001","session":4,"beat":[0-9]+,"interval_s":1,"time":"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z"\}$`)

// The heartbeat: after the birth, every interval, QoS 0, not retained, with
// the session and a beat count that goes on across a reconnect; none after
// Close's offline state.
func TestHeartbeat(t *testing.T) {
	b := startBroker(t, "127.0.0.1:0")
	s := mqtttest.Subscribe(t, b.URL(), mqtt.StateTopic(tid), mqtt.HeartbeatTopic(tid))
	c := newClient(t, b.URL(), func(o *mqtt.Options) { o.Session, o.Heartbeat = 4, 50*time.Millisecond })
	s.Until(t, "birth", mqtttest.IsState(tid, mqtt.Online))
	if p := s.Pending(); len(p) > 0 {
		t.Errorf("before the birth: %s %s", p[0].Topic, p[0].Payload)
	}
	isBeat := func(m mqtttest.Msg) bool { return m.Topic == mqtt.HeartbeatTopic(tid) }
	beat := func(m mqtttest.Msg) uint64 {
		t.Helper()
		if m.Retained {
			t.Errorf("heartbeat retained: %s", m.Payload)
		}
		if !heartbeatRE.Match(m.Payload) {
			t.Fatalf("heartbeat payload %s", m.Payload)
		}
		var hb mqtt.Heartbeat
		if err := json.Unmarshal(m.Payload, &hb); err != nil || hb.Session != 4 || hb.TID != tid || hb.IntervalS != 1 || hb.Time.Location() != time.UTC {
			t.Errorf("heartbeat %+v (%v)", hb, err)
		}
		return hb.Beat
	}
	for want := uint64(1); want <= 3; want++ {
		if n := beat(s.Until(t, "beat", isBeat)); n != want {
			t.Errorf("beat %d, want %d", n, want)
		}
	}

	if !b.DropClient("posagent-" + tid) {
		t.Fatal("client not connected")
	}
	s.Until(t, "birth again", func(m mqtttest.Msg) bool { return mqtttest.IsState(tid, mqtt.Online)(m) && !m.Retained })
	// Beats of the first connection may have arrived meanwhile; after the
	// new birth the count goes on from there, it does not start over.
	last := uint64(3)
	for _, m := range s.Pending() {
		if isBeat(m) {
			last = max(last, beat(m))
		}
	}
	after := func(n uint64) func(mqtttest.Msg) bool {
		return func(m mqtttest.Msg) bool {
			var hb mqtt.Heartbeat
			return isBeat(m) && json.Unmarshal(m.Payload, &hb) == nil && hb.Beat > n
		}
	}
	n := beat(s.Until(t, "beat after the reconnect", after(last)))
	if m := beat(s.Until(t, "the next beat", after(n))); m != n+1 {
		t.Errorf("beats %d then %d on one connection", n, m)
	}

	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := c.Close(ctx); err != nil {
		t.Fatal(err)
	}
	s.Until(t, "shutdown", func(m mqtttest.Msg) bool {
		var p mqtt.Presence
		return mqtttest.IsState(tid, mqtt.Offline)(m) && json.Unmarshal(m.Payload, &p) == nil && p.Reason == mqtt.ReasonShutdown
	})
	before := len(s.Pending())
	// A marker on the heartbeat topic, published once the offline state has
	// arrived: a beat after Close's offline would arrive before it.
	mqtttest.Dial(t, mqtttest.Login{URL: b.URL(), ClientID: "marker"}).Publish(t, mqtt.HeartbeatTopic(tid), false, []byte("marker"))
	s.Until(t, "marker", func(m mqtttest.Msg) bool { return string(m.Payload) == "marker" })
	for _, m := range s.Pending()[before:] {
		t.Errorf("after the shutdown state: %s %s", m.Topic, m.Payload)
	}
}

// seeded is a math/rand/v2 source for Options.Rand.
func seeded(seed uint64) mqtt.Rand { return rand.New(rand.NewPCG(seed, seed)) }
