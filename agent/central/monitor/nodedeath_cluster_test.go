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
// offline, then online again with the same session — or straight back online
// when the terminal got a working connection elsewhere first (a reconnect
// before the kill can leave its subscription queue on another node).
//
// RabbitMQ 3.10 does not let the terminal finish on another node while the
// node holding its QoS 1 subscription queue is down (mqtttest's
// TestClusterQoS1SubscriptionWaitsForItsNode), so the node is restarted
// once the silence (or the birth) is shown, and the terminal finishes on
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

	// What was shown so far (a birth, or two if the session reconnected
	// before the kill: under load that happens) is before the death.
	_, shown := out.snapshot()
	k := len(shown)
	c.Kill(t, start)
	for i := before + 1; i <= total; i++ {
		reportStep(term, i) // queued while no node has the terminal
	}
	// Silence: no heartbeat for SilentAfter intervals on the consumer's
	// clock. A beat sent just before the kill may still be on its way and
	// restart the count, so the clock moves again until it is announced —
	// or until the terminal is back online without its node (its connection
	// and subscriptions were elsewhere: then it had nothing to be silent for).
	after := func(pre []string) []string { return pre[min(k, len(pre)):] }
	settled := func(_ []uint64, pre []string) bool { return len(after(pre)) > 0 }
	for i := 0; !settled(out.snapshot()); i++ {
		if i == 20 {
			_, pre := out.snapshot()
			t.Fatalf("neither silence nor a birth shown after the node's death; presence %v", pre)
		}
		tick <- clk.advance((SilentAfter + 1) * interval)
		out.until(time.Second, settled)
	}
	c.Start(t, start)
	if !out.until(clusterWait, func(seq []uint64, _ []string) bool { return len(seq) >= total }) {
		seq, _ := out.snapshot()
		t.Fatalf("after the node's return: events %v, want 1..%d", seq, total)
	}
	// The presence shown after the death: silent while nothing is heard,
	// then online again in the same session, and never offline (no Will
	// came, and none should: the terminal did not go).
	backOnline := func(_ []uint64, pre []string) bool {
		p := after(pre)
		return len(p) > 0 && p[len(p)-1] == "online:5"
	}
	if !out.until(clusterWait, backOnline) {
		_, pre := out.snapshot()
		t.Errorf("presence shown %v (the kill after %d): not online again", pre, k)
	}
	seq, pre := out.snapshot()
	inOrder(t, "queue mode", tid, seq, total)
	for _, p := range pre {
		if p != Silent && p != "online:5" {
			t.Errorf("presence shown %v: %s while the terminal lived", pre, p)
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
