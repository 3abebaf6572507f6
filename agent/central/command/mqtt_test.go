package command

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/posagent/posagent/agent/central/mqtt"
	"github.com/posagent/posagent/agent/central/mqtt/mqtttest"
)

const wait = 10 * time.Second

// Through a TLS-only mosquitto with passwords, client certificates and the
// fleet ACL: the command suite (commandSuite).
func TestCommandsThroughMosquitto(t *testing.T) {
	tid, other := mqtttest.NewTID(t), mqtttest.NewTID(t)
	b := mqtttest.MosquittoTLSACL(t, tid, other)
	commandSuite(t, b, b, tid, other)
}

// The same on the 3-node RabbitMQ cluster over TLS, the terminal on node 1
// and central on node 0: the cluster routes commands and replies between
// nodes (terminal subscriptions at QoS 0, as the agent's).
func TestClusterCommandsAcrossNodes(t *testing.T) {
	tid, other := mqtttest.NewTID(t), mqtttest.NewTID(t)
	nodes := mqtttest.RabbitClusterNodes(t, true, tid, other)
	commandSuite(t, nodes[1], nodes[0], tid, other)
}

// commandSuite: the terminal tid on termBroker, central on centralBroker.
// Central's genuine signed commands to this terminal are run and answered on
// its reply topic, and the same signed bytes sent again get the same reply
// without running again; a forged one (another key), an unsigned one and one
// that reuses an accepted nonce are refused with their codes in the reply;
// malformed ones get an error reply; a command to another terminal never
// reaches this one's handler, and another terminal cannot command this one
// (the ACL drops it).
func commandSuite(t *testing.T, termBroker, centralBroker mqtttest.Broker, tid, other string) {
	o := mqtt.Options{Logger: quiet(), RetryInterval: 50 * time.Millisecond}
	termBroker.Terminal(&o, tid)
	o.URL = termBroker.URL()
	h := &fakeHandler{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// The session subscribes in its OnConnect and publishes its birth after
	// that, on the same connection: central waits for it, listening before
	// the terminal starts (on a cluster a retained birth stays on the
	// terminal's node; a live one reaches every node).
	mon, _ := mqtttest.Watch(t, centralBroker.Monitor(), mqtt.StateTopic(tid))
	mon.Patience = 30 * time.Second
	liveServer(t, ctx, o, tid, h, func(c *mqtt.Client) Transport { return c })

	replies := make(chan Reply, 16)
	login := func(b mqtttest.Broker, user string) paho.Client {
		c := paho.NewClient(b.Login(user).SetClientID(user + "-cmd-" + mqtttest.NewTID(t)))
		if tok := c.Connect(); !tok.WaitTimeout(wait) || tok.Error() != nil {
			t.Fatal(tok.Error())
		}
		t.Cleanup(func() { c.Disconnect(50) })
		return c
	}
	central := login(centralBroker, "central")
	if tok := central.Subscribe(mqtt.ReplyTopic(tid), 1, func(_ paho.Client, msg paho.Message) {
		var rep Reply
		if err := json.Unmarshal(msg.Payload(), &rep); err != nil {
			t.Errorf("reply is not JSON: %q", msg.Payload())
		}
		replies <- rep
	}); !tok.WaitTimeout(wait) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	mon.Until(t, "the terminal's birth", mqtttest.IsState(tid, mqtt.Online))
	// Each command here gets one reply: central's subscription and the
	// terminal's link stay up, so nothing is delivered twice.
	next := func() Reply {
		t.Helper()
		select {
		case rep := <-replies:
			return rep
		case <-time.After(wait):
			t.Fatal("no reply")
			return Reply{}
		}
	}
	send := func(c paho.Client, topic, payload string) {
		t.Helper()
		if tok := c.Publish(topic, 1, false, payload); !tok.WaitTimeout(wait) || tok.Error() != nil {
			t.Fatal(tok.Error())
		}
	}

	now := time.Now()
	signedEnv := func(key ed25519.PrivateKey, e Envelope, to string) string {
		e.TID, e.IssuedAt, e.ExpiresAt = to, now, now.Add(5*time.Minute)
		return string(signEnv(t, e, key))
	}
	signed := func(key ed25519.PrivateKey, id, name, args, to string) string {
		return signedEnv(key, envelope(t, id, name, args), to)
	}
	_, forger, _ := ed25519.GenerateKey(nil)

	// The ACL drops it: mosquitto acknowledges and discards it, RabbitMQ
	// closes the other terminal's connection.
	login(termBroker, other).Publish(mqtt.CommandTopic(tid), 1, false, signed(testKey, "from-other", NameRerunTestSale, "", tid)).WaitTimeout(wait)
	send(central, mqtt.CommandTopic(other), signed(testKey, "elsewhere", NameRerunTestSale, "", other))
	genuineEnv := envelope(t, "1", NameRetryStep, `{"step":"sign-on"}`)
	genuine := signedEnv(testKey, genuineEnv, tid)
	send(central, mqtt.CommandTopic(tid), genuine)
	if rep := next(); rep.ID != "1" || !rep.OK {
		t.Errorf("reply 1 = %+v", rep)
	}
	send(central, mqtt.CommandTopic(tid), signed(forger, "2", NameRerunTestSale, "", tid))
	if rep := next(); rep.ID != "2" || rep.OK || rep.Error.Code != CodeBadSignature {
		t.Errorf("forged: reply = %+v", rep)
	}
	send(central, mqtt.CommandTopic(tid), genuine)
	if rep := next(); rep.ID != "1" || !rep.OK {
		t.Errorf("sent again: reply = %+v, want the first reply again", rep)
	}
	reused := genuineEnv
	reused.ID = "1b"
	send(central, mqtt.CommandTopic(tid), signedEnv(testKey, reused, tid))
	if rep := next(); rep.ID != "1b" || rep.OK || rep.Error.Code != CodeReplayed {
		t.Errorf("accepted nonce in a new command: reply = %+v", rep)
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
	select {
	case rep := <-replies:
		t.Errorf("a reply no command asked for: %+v", rep)
	default:
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.calls) != 2 || h.calls[0] != "retry sign-on" || h.calls[1] != "report" {
		t.Errorf("handler calls = %v, want only this terminal's genuine commands, once", h.calls)
	}
}
