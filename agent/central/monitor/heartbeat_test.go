package monitor

import (
	"context"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/posagent/posagent/agent/central/mqtt"
)

// Live MQTT: Watch subscribes the heartbeat topic, shows a heartbeat in JSON
// mode, and announces the terminal silent once the injected clock is past
// three intervals.
func TestWatchHeartbeatThenSilent(t *testing.T) {
	b := startBroker(t)
	clk := &clock{now: time.Date(2025, 1, 2, 10, 0, 0, 0, time.UTC)}
	out := newLines()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- Watch(ctx, Options{URL: b.URL(), JSON: true, Out: out, Now: clk.Now}) }()

	c := paho.NewClient(paho.NewClientOptions().AddBroker(b.URL()).SetClientID("beat"))
	if tok := c.Connect(); !tok.WaitTimeout(wait) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	defer c.Disconnect(50)
	// A retained birth reaches Watch whenever it subscribes: once it is
	// shown, the subscription is in place and one QoS 0 heartbeat will do
	// (a second one, arriving after the clock moved, would end the silence).
	if tok := c.Publish(mqtt.StateTopic(tid), 1, true, presencePayload(mqtt.Online, 5)); !tok.WaitTimeout(wait) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	out.waitFor(t, `"topic":"pos/v1/10000001/state"`)
	if tok := c.Publish(mqtt.HeartbeatTopic(tid), 0, false, hbPayload(5, 1, 30)); !tok.WaitTimeout(wait) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	out.waitFor(t, `"topic":"pos/v1/10000001/heartbeat"`)
	clk.Add(91 * time.Second)
	out.waitFor(t, `{"presence":"silent","tid":"10000001","session":5,"last_seen":"2025-01-02T10:00:00Z","interval_s":30}`)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestWatchTIDPrefix(t *testing.T) {
	b := startBroker(t)
	terminal(t, b.URL(), "10000001", install()[0])
	terminal(t, b.URL(), "20000001", install()[0])
	out := watchOnce(t, Options{URL: b.URL(), TIDPrefix: "1"})
	if !strings.Contains(out, "10000001 status") || strings.Contains(out, "20000001") {
		t.Errorf("--tid-prefix 1 snapshot:\n%s", out)
	}
	for _, o := range []Options{{TIDPrefix: "1/"}, {TIDPrefix: "+"}, {TID: tid, TIDPrefix: "1"}} {
		o.URL = b.URL()
		if err := Watch(context.Background(), o); err == nil {
			t.Errorf("Watch accepted TID %q with prefix %q", o.TID, o.TIDPrefix)
		}
	}
}

func TestHasTIDPrefix(t *testing.T) {
	for _, tc := range []struct {
		topic, prefix string
		want          bool
	}{
		{"pos/v1/10000001/events", "", true},
		{"pos/v1/10000001/events", "1000", true},
		{"pos/v1/10000001/events", "10000001", true},
		{"pos/v1/10000001/events", "2", false},
		{"pos/v1/1/events", "10", false},
		{"other/10000001/events", "1", false},
	} {
		if got := hasTIDPrefix(tc.topic, tc.prefix); got != tc.want {
			t.Errorf("hasTIDPrefix(%q, %q) = %v", tc.topic, tc.prefix, got)
		}
	}
}

func TestTopicOfRoutingKey(t *testing.T) {
	// The MQTT plugin swaps '/' and '.' between topics and routing keys.
	for key, topic := range map[string]string{
		"pos.v1.10000001.events":    "pos/v1/10000001/events",
		"pos.v1.10000001.heartbeat": "pos/v1/10000001/heartbeat",
		"pos.v1.a/b.state":          "pos/v1/a.b/state",
	} {
		if got := TopicOfRoutingKey(key); got != topic {
			t.Errorf("TopicOfRoutingKey(%q) = %q, want %q", key, got, topic)
		}
	}
}
