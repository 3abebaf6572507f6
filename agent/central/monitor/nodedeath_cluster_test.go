//go:build !firmware

package monitor

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/posagent/posagent/agent/central/mqtt"
	"github.com/posagent/posagent/agent/central/report/reporttest"
	"github.com/posagent/posagent/agent/testkit/bench"
)

// presenceLog collects what a Consumer in JSON mode printed about one
// terminal: its events' seq in the order shown, and its presence as shown,
// in order: "online:N" / "offline:N" for a state message of session N,
// "silent" for a silence announced; and how many heartbeats it printed.
type presenceLog struct {
	tid   string
	mu    sync.Mutex
	seq   []uint64
	pre   []string
	beats int
	ch    chan struct{}
}

func (p *presenceLog) Write(b []byte) (int, error) {
	p.mu.Lock()
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var rec struct {
			Topic    string `json:"topic"`
			Presence string `json:"presence"`
			TID      string `json:"tid"`
			Payload  struct {
				Seq     uint64 `json:"seq"`
				State   string `json:"state"`
				Session uint64 `json:"session"`
			} `json:"payload"`
		}
		if json.Unmarshal([]byte(l), &rec) != nil {
			continue
		}
		switch {
		case rec.Presence == Silent && rec.TID == p.tid:
			p.pre = append(p.pre, Silent)
		case rec.Topic == mqtt.EventsTopic(p.tid):
			p.seq = append(p.seq, rec.Payload.Seq)
		case rec.Topic == mqtt.HeartbeatTopic(p.tid):
			p.beats++
		case rec.Topic == mqtt.StateTopic(p.tid):
			p.pre = append(p.pre, rec.Payload.State+":"+strconv.FormatUint(rec.Payload.Session, 10))
		}
	}
	p.mu.Unlock()
	select {
	case p.ch <- struct{}{}:
	default:
	}
	return len(b), nil
}

func (p *presenceLog) snapshot() (seq []uint64, pre []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]uint64(nil), p.seq...), append([]string(nil), p.pre...)
}

func (p *presenceLog) beatsSeen() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.beats
}

// until waits, for at most d, for cond over what was printed so far.
func (p *presenceLog) until(d time.Duration, cond func(seq []uint64, pre []string) bool) bool {
	timeout := time.After(d)
	for {
		if cond(p.snapshot()) {
			return true
		}
		select {
		case <-p.ch:
		case <-timeout:
			return false
		}
	}
}

// fakeClock is the Consumer's clock: arrivals and silence are judged on it,
// and the test moves it.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) advance(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	return c.now
}

// TestClusterNodeDiesMidInstall: a terminal with the cluster's three nodes
// in its URLs reports an install through its start node; central reads it in
// queue mode; the terminal's node is SIGKILLed in the middle. Central has
// every event, once after dedup by seq, in order, and shows the terminal's
// presence correctly through the death: online (the birth), then silent
// (RabbitMQ publishes no Will when the node dies; the heartbeats stop), never
// offline, then online again with the same session.
//
// RabbitMQ 3.10 does not let the terminal finish on another node while its
// node is down (its QoS 1 subscriptions live in a queue there:
// mqtttest's TestClusterQoS1SubscriptionWaitsForItsNode), so the node is
// restarted once the silence is shown, and the terminal finishes on
// whichever node takes it first.
func TestClusterNodeDiesMidInstall(t *testing.T) {
	c := bench.NeedRabbitCluster(t)
	c.Exclusive(t) // the consumer and the terminal connect before the kill
	tid := "D" + uniq(t)[:7]
	pw := uniq(t) + uniq(t)
	c.AddTerminal(t, tid, pw)
	var urls []string
	for i := range c.Nodes() {
		urls = append(urls, c.MQTTURL(i))
	}
	start := mqtt.StartIndex(tid, len(urls))
	// The queues' leader may be on the terminal's node: a quorum queue
	// keeps going on the other two. The monitor sits on another node.
	prefix := clusterTopology(t, c, (start+1)%c.Nodes(), 1)
	var amqpURLs []string
	for i := 1; i <= c.Nodes(); i++ {
		amqpURLs = append(amqpURLs, c.AMQPURL((start+i)%c.Nodes()))
	}

	const interval = time.Second
	clk := &fakeClock{now: time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)}
	tick := make(chan time.Time)
	out := &presenceLog{tid: tid, ch: make(chan struct{}, 1)}
	ctx, cancel := context.WithTimeout(context.Background(), clusterWait)
	src, err := DialAMQP(ctx, AMQPOptions{URLs: amqpURLs, Prefix: prefix, Shards: 1})
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	cons := NewConsumer(QueueOptions{JSON: true, Out: out, Now: clk.Now, Tick: tick})
	rctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- cons.Run(rctx, src) }()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		src.Close()
	})

	term := reporttest.Start(t, mqtt.Options{URLs: urls, Username: tid, Password: pw, TID: tid, Serial: "SN-" + tid,
		Session: 5, Heartbeat: interval, Keepalive: 2 * time.Second, RetryInterval: 50 * time.Millisecond, Logger: quiet()})
	const before, total = 3, 8
	for i := 1; i <= before; i++ {
		reportStep(term, i)
	}
	// A heartbeat too: silence is judged on the interval it carries.
	if !out.until(clusterWait, func(seq []uint64, pre []string) bool {
		return len(seq) >= before && contains(pre, "online:5") && out.beatsSeen() > 0
	}) {
		seq, pre := out.snapshot()
		t.Fatalf("before the kill: events %v, presence %v, %d beats; want 1..%d, online:5 and a beat", seq, pre, out.beatsSeen(), before)
	}

	c.Kill(t, start)
	for i := before + 1; i <= total; i++ {
		reportStep(term, i) // queued while no node has the terminal
	}
	// Silence: no heartbeat for SilentAfter intervals on the consumer's
	// clock. A beat sent just before the kill may still be on its way and
	// restart the count, so the clock moves again until it is announced.
	silent := func(_ []uint64, pre []string) bool { return len(pre) > 0 && pre[len(pre)-1] == Silent }
	for i := 0; !silent(out.snapshot()); i++ {
		if i == 20 {
			_, pre := out.snapshot()
			t.Fatalf("no silence announced after the node's death; presence %v", pre)
		}
		tick <- clk.advance((SilentAfter + 1) * interval)
		out.until(time.Second, silent)
	}

	c.Start(t, start)
	if !out.until(clusterWait, func(seq []uint64, _ []string) bool { return len(seq) >= total }) {
		seq, _ := out.snapshot()
		t.Fatalf("after the node's return: events %v, want 1..%d", seq, total)
	}
	// The presence shown: online, silent, online again in the same session;
	// never offline (no Will came, and none should: the terminal did not go).
	want := []string{"online:5", Silent, "online:5"}
	out.until(clusterWait, func(_ []uint64, pre []string) bool { return len(pre) >= len(want) })
	seq, pre := out.snapshot()
	inOrder(t, "queue mode", tid, seq, total)
	if len(pre) < len(want) || !equalStrings(pre[:len(want)], want) {
		t.Errorf("presence shown %v, want %v first", pre, want)
	}
	for _, p := range pre {
		if strings.HasPrefix(p, mqtt.Offline) {
			t.Errorf("presence shown %v: an offline while the terminal lived", pre)
		}
	}
	t.Logf("node %d killed mid-install; presence %v; consumer %+v", start, pre, cons.Stats())
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
