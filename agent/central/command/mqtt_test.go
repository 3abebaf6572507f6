package command

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/posagent/posagent/agent/central/mqtt"
	"github.com/posagent/posagent/agent/testkit/bench"
)

const wait = 10 * time.Second

// Through a TLS-only mosquitto with passwords and the fleet ACL: central's
// genuine signed commands to this terminal are run and answered on its reply
// topic; a forged one (another key), an unsigned one and a replay of a
// genuine one are refused with their codes in the reply; malformed ones get
// an error reply; a command to another terminal never reaches this one's
// handler, and another terminal cannot command this one (the ACL drops it).
func TestCommandsThroughMosquitto(t *testing.T) {
	const other = "10000002"
	m := bench.StartMosquittoWith(t, bench.MosquittoConfig{
		Users: map[string]string{tid: "pw-" + tid, other: "pw-" + other, "central": "pw-central"},
		ACL:   bench.FleetACL, TLS: true, NoPlain: true,
	})
	link, err := mqtt.New(mqtt.Options{URL: m.TLSURL, CAFile: m.PKI.CAFile, TID: tid, Username: tid, Password: "pw-" + tid,
		Logger: quiet(), RetryInterval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	h := &fakeHandler{}
	s := &Server{TID: tid, Handler: h, Transport: link, Log: quiet(), Verifier: verifierIn(t, t.TempDir(), time.Now())}
	s.Verifier.Now = nil // the real clock
	if err := s.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go s.Run(ctx)
	if err := link.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cctx, ccancel := context.WithTimeout(context.Background(), wait)
		defer ccancel()
		_ = link.Close(cctx)
	}()

	replies := make(chan Reply, 16)
	login := func(user string) paho.Client {
		c := paho.NewClient(paho.NewClientOptions().AddBroker(m.TLSURL).SetTLSConfig(m.PKI.ClientTLS(t, "")).
			SetClientID(user + "-cmd-test").SetUsername(user).SetPassword("pw-" + user))
		if tok := c.Connect(); !tok.WaitTimeout(wait) || tok.Error() != nil {
			t.Fatal(tok.Error())
		}
		t.Cleanup(func() { c.Disconnect(50) })
		return c
	}
	central := login("central")
	if tok := central.Subscribe(mqtt.ReplyTopic(tid), 1, func(_ paho.Client, msg paho.Message) {
		var rep Reply
		if err := json.Unmarshal(msg.Payload(), &rep); err != nil {
			t.Errorf("reply is not JSON: %q", msg.Payload())
		}
		replies <- rep
	}); !tok.WaitTimeout(wait) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	// The session subscribes in its OnConnect: wait for its birth, which it
	// publishes after subscribing on the same connection.
	online := make(chan struct{}, 1)
	if tok := central.Subscribe(mqtt.StateTopic(tid), 1, func(paho.Client, paho.Message) {
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
	// reply it already has (the same reply again). A replayed command gets
	// a reply of its own under the same id, which is not a duplicate.
	answered := map[string]bool{}
	next := func() Reply {
		t.Helper()
		timeout := time.After(wait)
		for {
			select {
			case rep := <-replies:
				key := fmt.Sprintf("%+v", rep)
				if rep.Error != nil {
					key += fmt.Sprintf("%+v", *rep.Error)
				}
				if answered[key] {
					continue
				}
				answered[key] = true
				return rep
			case <-timeout:
				t.Fatal("no reply")
				return Reply{}
			}
		}
	}
	send := func(c paho.Client, topic, payload string) {
		t.Helper()
		if tok := c.Publish(topic, 1, false, payload); !tok.WaitTimeout(wait) || tok.Error() != nil {
			t.Fatal(tok.Error())
		}
	}

	now := time.Now()
	signed := func(key ed25519.PrivateKey, id, name, args, to string) string {
		e := envelope(t, id, name, args)
		e.TID, e.IssuedAt, e.ExpiresAt = to, now, now.Add(5*time.Minute)
		return string(signEnv(t, e, key))
	}
	_, forger, _ := ed25519.GenerateKey(nil)

	send(login(other), mqtt.CommandTopic(tid), signed(testKey, "from-other", NameRerunTestSale, "", tid)) // ACL drops it
	send(central, mqtt.CommandTopic(other), signed(testKey, "elsewhere", NameRerunTestSale, "", other))
	genuine := signed(testKey, "1", NameRetryStep, `{"step":"sign-on"}`, tid)
	send(central, mqtt.CommandTopic(tid), genuine)
	if rep := next(); rep.ID != "1" || !rep.OK {
		t.Errorf("reply 1 = %+v", rep)
	}
	send(central, mqtt.CommandTopic(tid), signed(forger, "2", NameRerunTestSale, "", tid))
	if rep := next(); rep.ID != "2" || rep.OK || rep.Error.Code != CodeBadSignature {
		t.Errorf("forged: reply = %+v", rep)
	}
	send(central, mqtt.CommandTopic(tid), genuine)
	if rep := next(); rep.ID != "1" || rep.OK || rep.Error.Code != CodeReplayed {
		t.Errorf("replayed: reply = %+v", rep)
	}
	send(central, mqtt.CommandTopic(tid), `{"id":"3","name":"rerun-test-sale"}`)
	if rep := next(); rep.ID != "3" || rep.OK || rep.Error.Code != CodeUnsigned {
		t.Errorf("unsigned: reply = %+v", rep)
	}
	send(central, mqtt.CommandTopic(tid), "\x00\xff not json")
	if rep := next(); rep.OK || rep.Error.Code != CodeMalformed {
		t.Errorf("garbage: reply = %+v", rep)
	}
	send(central, mqtt.CommandTopic(tid), signed(testKey, "4", NameReportNow, "", tid))
	if rep := next(); rep.ID != "4" || !rep.OK {
		t.Errorf("reply 4 = %+v", rep)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.calls) != 2 || h.calls[0] != "retry sign-on" || h.calls[1] != "report" {
		t.Errorf("handler calls = %v, want only this terminal's genuine commands, once", h.calls)
	}
}
