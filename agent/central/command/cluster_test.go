package command

import (
	"context"
	"encoding/json"
	"sync/atomic"
	"testing"
	"time"

	"github.com/posagent/posagent/agent/central/mqtt"
	"github.com/posagent/posagent/agent/central/mqtt/mqtttest"
)

// countingTransport counts the commands delivered to the server.
type countingTransport struct {
	*mqtt.Client
	delivered atomic.Int32
}

func (c *countingTransport) Subscribe(topic string, fn func(mqtt.Inbound)) error {
	return c.Client.Subscribe(topic, func(m mqtt.Inbound) { c.delivered.Add(1); fn(m) })
}

// On the 3-node cluster, central (node 0) sends a command as the node the
// terminal is on dies: the first send goes to the dead node's subscription,
// the terminal moves to another node, a resend of the same signed bytes
// reaches it there, the handler runs once, and central gets the reply
// (resends that arrive after the first are answered from the server's
// memory: TestResendGetsTheSameReply).
func TestClusterCommandWhileTerminalsNodeDies(t *testing.T) {
	// A terminal that starts on node 1 or 2, not on central's node 0.
	tid := mqtttest.NewTID(t)
	for mqtt.StartIndex(tid, 3) == 0 {
		tid = mqtttest.NewTID(t)
	}
	nodes := mqtttest.RabbitClusterNodes(t, true, tid)
	termNode := mqtt.StartIndex(tid, 3)
	o := mqtt.Options{Logger: quiet(), RetryInterval: 50 * time.Millisecond, ReconnectMax: time.Second,
		Keepalive: 2 * time.Second}
	nodes[0].Terminal(&o, tid)
	for _, n := range nodes {
		o.URLs = append(o.URLs, n.URL())
	}
	// Central's monitor on node 0, listening before the terminal starts: a
	// live birth crosses nodes (a retained one would stay on the
	// terminal's).
	mon, _ := mqtttest.Watch(t, nodes[0].Monitor(), mqtt.StateTopic(tid))
	mon.Patience = 30 * time.Second
	var tr *countingTransport
	h := &fakeHandler{}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	liveServer(t, ctx, o, tid, h, func(c *mqtt.Client) Transport { tr = &countingTransport{Client: c}; return tr })
	mon.Until(t, "the terminal's birth", mqtttest.IsState(tid, mqtt.Online))

	now := time.Now()
	e := envelope(t, "moved", NameRetryStep, `{"step":"sign-on"}`)
	e.TID, e.IssuedAt, e.ExpiresAt = tid, now, now.Add(5*time.Minute)
	payload := signEnv(t, e, testKey)
	nodes[termNode].Stop()

	po := nodes[0].Login("central")
	co := mqtt.SendOptions{URL: nodes[0].URL(), Username: po.Username, Password: po.Password, CAFile: o.CAFile,
		Topic: mqtt.CommandTopic(tid), Payload: payload}
	b, sent, err := mqtt.RequestResending(ctx, co, mqtt.Resend{URLs: []string{nodes[0].URL()}, Every: 250 * time.Millisecond},
		mqtt.ReplyTopic(tid), func(b []byte) bool {
			var r Reply
			return json.Unmarshal(b, &r) == nil && r.ID == "moved"
		})
	if err != nil {
		t.Fatalf("no reply through the node's death: %v", err)
	}
	var r Reply
	if err := json.Unmarshal(b, &r); err != nil || !r.OK {
		t.Fatalf("reply = %s", b)
	}
	// Resends that are still on their way are answered, not run.
	time.Sleep(time.Second)
	h.mu.Lock()
	calls := append([]string(nil), h.calls...)
	h.mu.Unlock()
	t.Logf("terminal started on node %d; %d sends, %d delivered to the terminal", termNode, sent, tr.delivered.Load())
	if len(calls) != 1 || calls[0] != "retry sign-on" {
		t.Errorf("handler calls = %v, want the command once", calls)
	}
	if sent < 2 {
		t.Errorf("the reply came after %d sends: the first send reached the terminal's dead node's subscription?", sent)
	}
}
