package report

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/posagent/posagent/agent/central/mqtt"
	"github.com/posagent/posagent/agent/central/mqtt/mqtttest"
	"github.com/posagent/posagent/agent/testkit/bench"
)

// TestFailoverToNextBroker: a terminal with three brokers starts on its
// TID's node; that node dies mid-install. The terminal connects to the next
// node, publishes its birth there, takes a command there, and the events
// reported during the gap, queued in the outbox, arrive there in seq order,
// none lost.
func TestFailoverToNextBroker(t *testing.T) {
	failover(t, mqtttest.MochiTLSACLNodes(t, 3, tid), true)
}

// The same over three plain mosquittos (no commands: they need TLS).
func TestFailoverToNextMosquitto(t *testing.T) {
	nodes := make([]mqtttest.Broker, 3)
	for i := range nodes {
		m := bench.StartMosquitto(t)
		nodes[i] = mqtttest.Broker{
			Addr: fmt.Sprintf("127.0.0.1:%d", m.Port), Scheme: "tcp",
			Terminal: func(*mqtt.Options, string) {},
			Monitor:  func() *paho.ClientOptions { return paho.NewClientOptions().AddBroker(m.URL) },
			Stop:     m.Stop,
		}
	}
	failover(t, nodes, false)
}

func failover(t *testing.T, nodes []mqtttest.Broker, commands bool) {
	urls := make([]string, len(nodes))
	watchers := make([]*subscriber, len(nodes))
	for i, n := range nodes {
		urls[i] = n.URL()
		watchers[i], _ = watcher(t, n.Monitor(), tid)
	}
	first := mqtt.StartIndex(tid, len(urls))
	next := (first + 1) % len(urls)

	var logs bench.Buffer
	ob := openOutbox(t, t.TempDir())
	r := newReporter(t, "", func(o *testOptions) {
		o.URL, o.URLs = "", urls
		nodes[0].Terminal(&o.Options, tid)
		o.Session = 9
		o.Queue = ob
		o.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	})
	cmds := make(chan mqtt.Inbound, 8)
	if commands {
		if err := r.link.Subscribe(mqtt.CommandTopic(tid), func(m mqtt.Inbound) { cmds <- m }); err != nil {
			t.Fatal(err)
		}
	}

	on := mqtttest.Presence(t, watchers[first].Until(t, "birth on the TID's node", mqtttest.IsState(tid, mqtt.Online)))
	if on.Session != 9 {
		t.Errorf("birth session = %d, want 9", on.Session)
	}
	in := statuses(8)
	reportAll(t, r, in[:3])
	collectEvents(t, watchers[first], 1, 3)
	flushed(t, r) // acknowledged: the next node must not need them
	if commands {
		command(t, nodes[first], tid, cmds, "on the first node")
	}

	nodes[first].Stop()
	reportAll(t, r, in[3:]) // queued in the outbox while no node has the terminal

	on = mqtttest.Presence(t, watchers[next].Until(t, "birth on the next node", mqtttest.IsState(tid, mqtt.Online)))
	if on.Session != 9 {
		t.Errorf("birth on the next node: session %d, want 9", on.Session)
	}
	// The next node's monitor saw nothing of the first connection: its
	// events start at the first one not acknowledged by the dead node.
	got := collectEvents(t, watchers[next], 4, 8)
	for i, m := range got {
		if want := fmt.Sprintf("report %d", i+4); m.Message != want {
			t.Errorf("event %d on the next node = %q, want %q", m.Seq, m.Message, want)
		}
	}
	if commands {
		command(t, nodes[next], tid, cmds, "on the next node")
	}
	flushed(t, r)
	if st := ob.Stats(); st.Records != 0 {
		t.Errorf("outbox holds %d records after the failover, want 0", st.Records)
	}
	for _, i := range []int{first, next} {
		if !logged(logs.String(), "mqtt: connected", "broker="+urls[i]) {
			t.Errorf("no connect logged with broker=%s:\n%s", urls[i], logs.String())
		}
	}
}

// logged reports whether one line of the text log holds msg and attr.
func logged(log, msg, attr string) bool {
	for _, line := range strings.Split(log, "\n") {
		if strings.Contains(line, `msg="`+msg+`"`) && strings.Contains(line+" ", " "+attr+" ") {
			return true
		}
	}
	return false
}

// command publishes a command to terminal id as central on node and waits
// for the terminal's subscription to deliver it.
func command(t *testing.T, node mqtttest.Broker, id string, cmds <-chan mqtt.Inbound, where string) {
	t.Helper()
	c := paho.NewClient(node.Login("central").SetClientID("central-" + node.Addr).SetAutoReconnect(false))
	if tok := c.Connect(); !tok.WaitTimeout(wait) || tok.Error() != nil {
		t.Fatalf("central connect %s: %v", where, tok.Error())
	}
	defer c.Disconnect(50)
	payload := []byte(`{"probe":"` + node.Addr + `"}`)
	if tok := c.Publish(mqtt.CommandTopic(id), 1, false, payload); !tok.WaitTimeout(wait) || tok.Error() != nil {
		t.Fatalf("command publish %s: %v", where, tok.Error())
	}
	timeout := time.After(wait)
	for {
		select {
		case m := <-cmds:
			if bytes.Equal(m.Payload, payload) {
				return
			}
		case <-timeout:
			t.Fatalf("command %s never reached the terminal", where)
		}
	}
}
