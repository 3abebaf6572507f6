package ticket

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/posagent/posagent/agent/central/mqtt"
	"github.com/posagent/posagent/agent/central/report"
	"github.com/posagent/posagent/agent/testkit/bench"
	"github.com/posagent/posagent/provisioning"
)

const wait = 10 * time.Second

func client(t *testing.T, m *bench.Mosquitto, user string, handler paho.MessageHandler, topics ...string) paho.Client {
	t.Helper()
	c := paho.NewClient(paho.NewClientOptions().AddBroker(m.TLSURL).SetTLSConfig(m.PKI.ClientTLS(t, "")).
		SetClientID(user + "-test").SetUsername(user).SetPassword("pw-" + user).SetCleanSession(true))
	if tok := c.Connect(); !tok.WaitTimeout(wait) || tok.Error() != nil {
		t.Fatalf("%s connect: %v", user, tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(50) })
	for _, topic := range topics {
		if tok := c.Subscribe(topic, 1, handler); !tok.WaitTimeout(wait) || tok.Error() != nil {
			t.Fatal(tok.Error())
		}
	}
	return c
}

func publish(t *testing.T, c paho.Client, topic string, payload []byte) {
	t.Helper()
	if tok := c.Publish(topic, 1, true, payload); !tok.WaitTimeout(wait) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
}

// The ticket goes from central to the terminal through a TLS-only mosquitto
// with passwords and the fleet ACL: a forged one is refused and the refusal
// reaches monitoring while the step keeps waiting; the genuine one is
// accepted; after a restart an older genuine ticket is refused as superseded.
func TestTicketThroughMosquitto(t *testing.T) {
	m := bench.StartMosquittoWith(t, bench.MosquittoConfig{
		Users: map[string]string{tid: "pw-" + tid, "central": "pw-central", "monitor": "pw-monitor"},
		ACL:   bench.FleetACL, TLS: true, NoPlain: true,
	})
	pub, priv := keys(t)
	_, forger := keys(t)
	now := time.Now()
	central := client(t, m, "central", nil)
	publish(t, central, mqtt.TicketTopic(tid), sign(t, sample(nonce(1), now.Add(-time.Hour)), forger))

	refusals := make(chan string, 16)
	client(t, m, "monitor", func(_ paho.Client, msg paho.Message) {
		var st report.Message
		if json.Unmarshal(msg.Payload(), &st) == nil && st.Error != nil {
			refusals <- st.Error.Code
		}
	}, mqtt.EventsTopic(tid))

	dir := t.TempDir()
	run := func(t *testing.T) (*Source, func()) {
		quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
		link, err := mqtt.New(mqtt.Options{URL: m.TLSURL, CAFile: m.PKI.CAFile, TID: tid, MID: mid, Username: tid, Password: "pw-" + tid,
			Logger: quiet, RetryInterval: 50 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		r, err := report.New(report.Options{Link: link, Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		src := &Source{Verifier: &Verifier{Keys: ring(t, pub), TID: tid, StatePath: dir + "/ticket-state.json", Floor: floor(t, dir)}, Reporter: r,
			Log: quiet}
		if err := src.Listen(link); err != nil {
			t.Fatal(err)
		}
		if err := link.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		if err := r.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		return src, func() {
			ctx, cancel := context.WithTimeout(context.Background(), wait)
			defer cancel()
			_ = r.Close(ctx)
			_ = link.Close(ctx)
		}
	}
	params := func(src *Source) <-chan error {
		done := make(chan error, 1)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 3*wait)
			defer cancel()
			m, err := src.Parameters(ctx, provisioning.Terminal{TID: tid, MID: mid})
			if err == nil && m.MID != mid {
				err = fmt.Errorf("merchant %+v", m)
			}
			done <- err
		}()
		return done
	}

	// recv bounds every wait, so a regression fails instead of hanging.
	recv := func(ch <-chan string) string {
		t.Helper()
		select {
		case v := <-ch:
			return v
		case <-time.After(wait):
			t.Fatal("no refusal reported")
			return ""
		}
	}
	finished := func(ch <-chan error) error {
		t.Helper()
		select {
		case err := <-ch:
			return err
		case <-time.After(3 * wait):
			t.Fatal("Parameters did not return")
			return nil
		}
	}
	src, stop := run(t)
	done := params(src)
	if code := recv(refusals); code != CodeBadSignature {
		t.Fatalf("first refusal = %s, want %s", code, CodeBadSignature)
	}
	older := sign(t, sample(nonce(2), now.Add(-time.Hour)), priv)
	genuine := sign(t, sample(nonce(3), now.Add(-time.Minute)), priv)
	publish(t, central, mqtt.TicketTopic(tid), genuine)
	if err := finished(done); err != nil {
		t.Fatalf("Parameters = %v", err)
	}
	stop()

	// Restart: the older ticket is replayed to the terminal.
	publish(t, central, mqtt.TicketTopic(tid), older)
	src, stop = run(t)
	defer stop()
	done = params(src)
	if code := recv(refusals); code != CodeSuperseded {
		t.Fatalf("refusal after restart = %s, want %s", code, CodeSuperseded)
	}
	publish(t, central, mqtt.TicketTopic(tid), genuine) // the accepted one again: fine
	if err := finished(done); err != nil {
		t.Fatalf("Parameters with the accepted ticket redelivered = %v", err)
	}
}
