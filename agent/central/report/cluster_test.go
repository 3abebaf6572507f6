package report

import (
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/posagent/posagent/agent/central/mqtt"
	"github.com/posagent/posagent/agent/central/mqtt/mqtttest"
	"github.com/posagent/posagent/agent/testkit/bench"
)

// TestClusterNodeDeathLosesNothing is TestFailoverToNextBroker on the
// 3-node RabbitMQ cluster (TLS), where the nodes are one broker: a monitor
// on the third node, which lives on, follows the whole install across the
// death of the terminal's node.
//
// On RabbitMQ 3.10 the terminal does not finish on another node while its
// node is down: its QoS 1 subscriptions live in a queue on that node, and
// every connection it makes elsewhere is closed at its first SUBSCRIBE
// (mqtttest's TestClusterQoS1SubscriptionWaitsForItsNode). So the node comes
// back here, as an operator's restart would bring it, and what the test
// checks is what the cluster guarantees through the death: RabbitMQ
// publishes no Will when the client's node dies, so presence goes through
// the heartbeat and the birth — beats of session 9 stop, the next presence
// is the birth with the same session (no offline state in between), and the
// beats go on counting; the events reported meanwhile arrive after the ones
// before, in seq order, none lost; and a command central publishes on the
// third node reaches the terminal before and after.
func TestClusterNodeDeathLosesNothing(t *testing.T) {
	tid := mqtttest.NewTID(t)
	nodes := mqtttest.RabbitClusterNodes(t, true, tid)
	urls := make([]string, len(nodes))
	for i, n := range nodes {
		urls[i] = n.URL()
	}
	first := mqtt.StartIndex(tid, len(urls))
	third := (first + 2) % len(urls)
	s, _ := mqtttest.Watch(t, nodes[third].Monitor(), append(topicsOf(tid), mqtt.HeartbeatTopic(tid))...)
	mon := &subscriber{Subscriber: s, tid: tid}

	const interval = 200 * time.Millisecond
	var logs bench.Buffer
	ob := openOutbox(t, t.TempDir())
	r := newReporter(t, "", func(o *testOptions) {
		o.URL, o.URLs = "", urls
		nodes[0].Terminal(&o.Options, tid)
		o.Session = 9
		o.Heartbeat = interval
		// A connection made while the dead node boots can hang at its first
		// SUBSCRIBE (the queue's home is not serving yet) until paho's ping
		// times out: keepalive + 10 s. A short keepalive bounds that.
		o.Keepalive = 2 * time.Second
		o.Queue = ob
		o.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	})
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("the terminal's log:\n%s", logs.String())
		}
	})
	cmds := make(chan mqtt.Inbound, 8)
	if err := r.link.Subscribe(mqtt.CommandTopic(tid), func(m mqtt.Inbound) { cmds <- m }); err != nil {
		t.Fatal(err)
	}

	isBeat := func(m mqtttest.Msg) bool { return m.Topic == mqtt.HeartbeatTopic(tid) }
	beat := func(m mqtttest.Msg) mqtt.Heartbeat {
		t.Helper()
		var hb mqtt.Heartbeat
		if err := json.Unmarshal(m.Payload, &hb); err != nil {
			t.Fatalf("heartbeat %q: %v", m.Payload, err)
		}
		if hb.TID != tid || hb.Session != 9 {
			t.Errorf("heartbeat %+v, want tid %s session 9", hb, tid)
		}
		return hb
	}

	if on := mqtttest.Presence(t, mon.Until(t, "birth on the TID's node", mqtttest.IsState(tid, mqtt.Online))); on.Session != 9 {
		t.Errorf("birth session = %d, want 9", on.Session)
	}
	in := statuses(8)
	reportAll(t, r, in[:3])
	collectEvents(t, mon, 1, 3)
	flushed(t, r)
	before := beat(mon.Until(t, "a heartbeat through the first node", isBeat))
	command(t, nodes[third], tid, cmds, "through the third node, before the node's death")

	nodes[first].Stop()
	killed := time.Now()
	reportAll(t, r, in[3:]) // queued in the outbox while no node has the terminal
	nodes[first].Restart()
	back := time.Since(killed)

	// The next presence after the node's death is the birth: RabbitMQ
	// published no Will for the dead node's client.
	// Every wait until the terminal is settled allows for hung connections
	// (see Keepalive above), three in a row.
	hung := 3 * (2*time.Second + 10*time.Second)
	mon.Patience = hung
	st := mon.Until(t, "the presence after the node's death", func(m mqtttest.Msg) bool { return m.Topic == mqtt.StateTopic(tid) })
	mon.Patience = 0
	if p := mqtttest.Presence(t, st); p.State != mqtt.Online || p.Session != 9 {
		t.Fatalf("first presence after the node's death = %+v, want the birth of session 9", p)
	}
	birth := time.Since(killed)
	got := collectEventsWithin(t, mon, 4, 8, hung)
	for i, m := range got {
		if m.Message != in[3+i].Message {
			t.Errorf("event %d after the node's death = %q, want %q", m.Seq, m.Message, in[3+i].Message)
		}
	}
	// Beats go on counting in the same session: the monitor tells "the
	// node died and the terminal reconnected" from "the terminal restarted".
	var after mqtt.Heartbeat
	mon.Patience = hung
	for after.Beat <= before.Beat {
		after = beat(mon.Until(t, "a heartbeat after the node's death", isBeat))
	}
	mon.Patience = 0
	command(t, nodes[third], tid, cmds, "through the third node, after the node's death")
	flushed(t, r)
	if st := ob.Stats(); st.Records != 0 {
		t.Errorf("outbox holds %d records after the failover, want 0", st.Records)
	}
	t.Logf("node %d killed; back after %v; birth after %v; beats %d then %d (interval %v); %d connections refused meanwhile",
		first, back.Round(time.Millisecond), birth.Round(time.Millisecond), before.Beat, after.Beat, interval,
		strings.Count(logs.String(), "subscribe failed"))
}
