package packaging

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/posagent/posagent/agent/central/mqtt/mqtttest"
	"github.com/posagent/posagent/agent/testkit/bench"
)

// shippedACL is the broker ACL the project ships for the fleet's mosquitto.
// The test brokers of every other package run bench.FleetACL: it must be
// this file, byte for byte.
func shippedACL(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "scripts", "packaging", "mosquitto-acl"))
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != bench.FleetACL {
		t.Error("bench.FleetACL differs from scripts/packaging/mosquitto-acl")
	}
	return string(b)
}

type seen struct {
	mu   sync.Mutex
	msgs []string // "topic payload"
}

func (s *seen) add(topic string, payload []byte, _ bool) {
	s.mu.Lock()
	s.msgs = append(s.msgs, topic+" "+string(payload))
	s.mu.Unlock()
}

func (s *seen) has(want string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, m := range s.msgs {
		if m == want {
			return true
		}
	}
	return false
}

func (s *seen) until(t *testing.T, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !s.has(want) {
		if time.Now().After(deadline) {
			s.mu.Lock()
			t.Fatalf("never saw %q; saw %q", want, s.msgs)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Through mosquitto with the shipped ACL: a terminal writes its own state,
// heartbeat, status, events and command replies and reads its own ticket and commands,
// but cannot write its own cmd or ticket topic (only central can), and
// cannot touch another terminal's topics.
func TestShippedACL(t *testing.T) {
	const a, b = "10000001", "10000002"
	m := bench.StartMosquittoWith(t, bench.MosquittoConfig{
		Users: map[string]string{a: "pw-" + a, b: "pw-" + b, "central": "pw-central", "monitor": "pw-monitor"},
		ACL:   shippedACL(t),
	})
	n := 0
	login := func(user string, on *seen, topics ...string) *mqtttest.Client {
		n++
		c := mqtttest.Dial(t, mqtttest.Login{URL: m.URL, ClientID: fmt.Sprintf("%s-acl-%d", user, n), User: user, Password: "pw-" + user})
		for _, topic := range topics {
			c.Subscribe(t, topic, on.add)
		}
		return c
	}
	pub := func(c *mqtttest.Client, topic, payload string, retained bool) {
		t.Helper()
		// QoS 1: mosquitto acknowledges a publish its ACL drops (MQTT 3.1.1
		// cannot refuse), so the PUBACK orders it before what follows.
		c.Publish(t, topic, retained, []byte(payload))
	}
	var monitor, termA seen
	login("monitor", &monitor, "pos/v1/#")
	ca := login(a, &termA, "pos/v1/"+a+"/cmd", "pos/v1/"+a+"/ticket", "pos/v1/"+a+"/state", "pos/v1/"+b+"/#")
	cb := login(b, &seen{})
	central := login("central", &seen{})

	// What the terminal needs.
	for _, topic := range []string{"state", "heartbeat", "status", "events", "cmd/reply"} {
		pub(ca, "pos/v1/"+a+"/"+topic, "own", false)
		monitor.until(t, "pos/v1/"+a+"/"+topic+" own")
	}
	termA.until(t, "pos/v1/"+a+"/state own") // it reads its own state (stale Wills)
	// What it must not do: write its own cmd or ticket, or anything of B's.
	pub(ca, "pos/v1/"+a+"/cmd", "forged by A", false)
	pub(ca, "pos/v1/"+a+"/ticket", "forged by A", true)
	pub(cb, "pos/v1/"+a+"/cmd", "forged by B", false)
	pub(cb, "pos/v1/"+a+"/status", "forged by B", false)
	pub(cb, "pos/v1/"+b+"/cmd", "forged by B", false)
	pub(cb, "pos/v1/"+b+"/status", "B's own", false)
	// Central writes both; the terminal reads them.
	pub(central, "pos/v1/"+a+"/cmd", "from central", false)
	pub(central, "pos/v1/"+a+"/ticket", "from central", true)
	termA.until(t, "pos/v1/"+a+"/cmd from central")
	termA.until(t, "pos/v1/"+a+"/ticket from central")
	monitor.until(t, "pos/v1/"+a+"/ticket from central")
	monitor.until(t, "pos/v1/"+b+"/status B's own")
	for _, s := range []*seen{&monitor, &termA} {
		s.mu.Lock()
		for _, msg := range s.msgs {
			if strings.Contains(msg, "forged") {
				t.Errorf("delivered: %s", msg)
			}
			if strings.HasPrefix(msg, "pos/v1/"+b+"/") && s == &termA {
				t.Errorf("A read B's %s", msg)
			}
		}
		s.mu.Unlock()
	}
	// Nothing forged stayed retained either.
	var late seen
	login("monitor", &late, "pos/v1/"+a+"/ticket")
	pub(central, "pos/v1/"+a+"/cmd", "marker", false)
	time.Sleep(100 * time.Millisecond)
	late.mu.Lock()
	defer late.mu.Unlock()
	if len(late.msgs) != 1 || late.msgs[0] != "pos/v1/"+a+"/ticket from central" {
		t.Errorf("retained ticket = %q", late.msgs)
	}
}
