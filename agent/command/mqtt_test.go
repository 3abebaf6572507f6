package command

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/posagent/posagent/agent/report"
	"github.com/posagent/posagent/agent/testbench"
)

const wait = 10 * time.Second

// Through a mosquitto with the fleet ACL: central's commands to this terminal
// are answered on its reply topic, malformed ones with an error reply; a
// command to another terminal never reaches this one's handler, and another
// terminal cannot command this one (the ACL drops it).
func TestCommandsThroughMosquitto(t *testing.T) {
	const other = "10000002"
	m := testbench.StartMosquittoWith(t, testbench.MosquittoConfig{
		Users: map[string]string{tid: "pw-" + tid, other: "pw-" + other, "central": "pw-central"},
		ACL:   testbench.FleetACL,
	})
	r, err := report.New(report.Options{URL: m.URL, TID: tid, Username: tid, Password: "pw-" + tid, Logger: quiet(), RetryInterval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	h := &fakeHandler{}
	s := &Server{TID: tid, Handler: h, Transport: r, Log: quiet()}
	if err := s.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go s.Run(ctx)
	if err := r.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cctx, ccancel := context.WithTimeout(context.Background(), wait)
		defer ccancel()
		_ = r.Close(cctx)
	}()

	replies := make(chan Reply, 16)
	login := func(user string) mqtt.Client {
		c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(m.URL).SetClientID(user + "-cmd-test").
			SetUsername(user).SetPassword("pw-" + user))
		if tok := c.Connect(); !tok.WaitTimeout(wait) || tok.Error() != nil {
			t.Fatal(tok.Error())
		}
		t.Cleanup(func() { c.Disconnect(50) })
		return c
	}
	central := login("central")
	if tok := central.Subscribe(report.ReplyTopic(tid), 1, func(_ mqtt.Client, msg mqtt.Message) {
		var rep Reply
		if err := json.Unmarshal(msg.Payload(), &rep); err != nil {
			t.Errorf("reply is not JSON: %q", msg.Payload())
		}
		replies <- rep
	}); !tok.WaitTimeout(wait) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	// The reporter subscribes in its OnConnect: wait for its birth, which it
	// publishes after subscribing on the same connection.
	online := make(chan struct{}, 1)
	if tok := central.Subscribe(report.StateTopic(tid), 1, func(mqtt.Client, mqtt.Message) {
		select {
		case online <- struct{}{}:
		default:
		}
	}); !tok.WaitTimeout(wait) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	select {
	case <-online:
	case <-time.After(wait):
		t.Fatal("terminal not online")
	}
	// Replies are QoS 1, at least once (docs/mqtt.md): central drops a
	// reply to a command it already has the answer to.
	answered := map[string]bool{}
	next := func() Reply {
		t.Helper()
		timeout := time.After(wait)
		for {
			select {
			case rep := <-replies:
				if answered[rep.ID] {
					continue
				}
				answered[rep.ID] = true
				return rep
			case <-timeout:
				t.Fatal("no reply")
				return Reply{}
			}
		}
	}
	send := func(c mqtt.Client, topic, payload string) {
		t.Helper()
		if tok := c.Publish(topic, 1, false, payload); !tok.WaitTimeout(wait) || tok.Error() != nil {
			t.Fatal(tok.Error())
		}
	}

	send(login(other), report.CommandTopic(tid), `{"id":"forged","name":"rerun-test-sale"}`) // ACL drops it
	send(central, report.CommandTopic(other), `{"id":"elsewhere","name":"rerun-test-sale"}`)
	send(central, report.CommandTopic(tid), `{"id":"1","name":"retry-step","args":{"step":"sign-on"}}`)
	if rep := next(); rep.ID != "1" || !rep.OK {
		t.Errorf("reply 1 = %+v", rep)
	}
	send(central, report.CommandTopic(tid), `{"id":"2","name":"retry-step","args":{"step":"moon"}}`)
	if rep := next(); rep.ID != "2" || rep.OK || rep.Error.Code != CodeBadArgs {
		t.Errorf("reply 2 = %+v", rep)
	}
	send(central, report.CommandTopic(tid), "\x00\xff not json")
	if rep := next(); rep.OK || rep.Error.Code != CodeMalformed {
		t.Errorf("reply 3 = %+v", rep)
	}
	send(central, report.CommandTopic(tid), `{"id":"4","name":"report-now"}`)
	if rep := next(); rep.ID != "4" || !rep.OK {
		t.Errorf("reply 4 = %+v", rep)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.calls) != 2 || h.calls[0] != "retry sign-on" || h.calls[1] != "report" {
		t.Errorf("handler calls = %v, want only this terminal's valid commands", h.calls)
	}
}
