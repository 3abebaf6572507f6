package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/posagent/posagent/agent/central/command"
	"github.com/posagent/posagent/agent/central/mqtt"
	"github.com/posagent/posagent/agent/testkit/bench"
	"github.com/posagent/posagent/provisioning"
)

func commandArgs(key string, extra ...string) []string {
	return append([]string{"command", "--key", key, "--kid", "central-2026a", "--tid", "10000001"}, extra...)
}

func commandVerifier(t *testing.T, pub string) *command.Verifier {
	dir := t.TempDir()
	return &command.Verifier{Keys: ring(t, pub), TID: "10000001", StatePath: filepath.Join(dir, "nonces"), Floor: floor(t)}
}

func TestCommandSignsAVerifiableCommand(t *testing.T) {
	priv, pub := keygen(t)
	var out, errb bytes.Buffer
	if code := run(commandArgs(priv, "--id", "c-1", "clear-unresolved", `{ "kind": "void", "stan": 12, "batch": "000003" }`), &out, &errb); code != 0 {
		t.Fatalf("command = %d: %s", code, errb.String())
	}
	c, err := commandVerifier(t, pub).Accept(bytes.TrimSpace(out.Bytes()))
	if err != nil {
		t.Fatalf("verify: %v\n%s", err, out.String())
	}
	if c.ID != "c-1" || c.Name != command.NameClearUnresolved || c.Kind != "void" || c.STAN != 12 || c.Batch != "000003" ||
		c.ExpiresAt.Sub(c.IssuedAt) != 5*time.Minute {
		t.Errorf("command = %+v", c)
	}
	out.Reset()
	if code := run(commandArgs(priv, "report-now"), &out, &errb); code != 0 {
		t.Fatalf("command = %d: %s", code, errb.String())
	}
	if c, err := commandVerifier(t, pub).Accept(bytes.TrimSpace(out.Bytes())); err != nil || !strings.HasPrefix(c.ID, "c-") {
		t.Errorf("default id: %+v, %v", c, err)
	}
	for _, c := range []struct {
		args []string
		want int
	}{
		{[]string{"command", "--tid", "10000001", "report-now"}, 2}, // no key, no kid
		{commandArgs(priv), 2},                                  // no name
		{commandArgs(priv, "format-disk"), 2},                   // not a command
		{commandArgs(priv, "retry-step", `{"step":"live"}`), 2}, // the terminal would refuse it
		{commandArgs(priv, "retry-step", `{"step":`), 2},        // not JSON
		{commandArgs(priv, "--valid", "11m", "report-now"), 2},  // too long
		{commandArgs(priv, "--wait", "1s", "report-now"), 2},    // --wait without --publish
		{commandArgs(priv, "--publish", "tcp://127.0.0.1:1", "--wait", "2s", "--resend", "0s", "report-now"), 2},
		{commandArgs(priv, "--publish", "tcp://127.0.0.1:1", "--wait", "2s", "--resend", "2s", "report-now"), 2},
		{commandArgs(priv, "--publish", "tcp://127.0.0.1:1", "--wait", "6m", "report-now"), 2}, // past --valid
		{commandArgs(pub, "report-now"), 1},                                                    // a public key is no signing key
		{commandArgs(priv, "--publish", "tcp://127.0.0.1:1", "report-now"), 1},                 // nothing listens there
		{commandArgs(priv, "report-now", "{}", "extra"), 2},                                    // three positionals
		{append(commandArgs(priv), "--id", "bad id", "report-now"), 2},                         // not an id
		{[]string{"command", "--key", priv, "--kid", "a b", "--tid", "1", "report-now"}, 2},    // not a kid
	} {
		var o, e bytes.Buffer
		if code := run(c.args, &o, &e); code != c.want {
			t.Errorf("%v = %d, want %d (%s)", c.args[1:], code, c.want, e.String())
		}
	}
}

type handler struct {
	mu    sync.Mutex
	calls []string
}

func (h *handler) record(s string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.calls = append(h.calls, s)
	return nil
}
func (h *handler) RetryStep(_ context.Context, s provisioning.Step) error {
	return h.record("retry " + string(s))
}
func (h *handler) RerunTestSale(context.Context) error { return h.record("rerun") }
func (h *handler) ReportNow(context.Context) error     { return h.record("report") }
func (h *handler) ClearUnresolved(context.Context, string, int, string) error {
	return &command.Error{Code: command.CodeFailed, Message: "not now"}
}

// posctl command --publish --wait through a TLS mosquitto with the fleet
// ACL, as central: the terminal runs the genuine command and the reply is
// printed (exit 0); one signed with another key under the same kid is
// refused, and posctl prints the refusal and exits 1.
func TestCommandPublishAndWait(t *testing.T) {
	m, passFile := centralMosquitto(t)
	priv, pub := keygen(t)
	forged, _ := keygen(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r := terminalLink(t, m)
	h := &handler{}
	startServer(t, ctx, &command.Server{TID: "10000001", Handler: h, Transport: r, Verifier: commandVerifier(t, pub), Log: quietLog()}, r)
	// The session subscribes in its OnConnect: retry until it answers.
	publish := func(key string, args ...string) (int, string) {
		var out, errb bytes.Buffer
		code := run(append(commandArgs(key, "--publish", m.TLSURL, "--ca", m.PKI.CAFile, "--user", "central",
			"--password-file", passFile, "--wait", "2s"), args...), &out, &errb)
		return code, out.String() + errb.String()
	}
	var code int
	var out string
	for range 10 {
		if code, out = publish(priv, "retry-step", `{"step":"sign-on"}`); !strings.Contains(out, "no answer") {
			break
		}
	}
	if code != 0 || !strings.Contains(out, `"ok":true`) {
		t.Fatalf("genuine = %d: %s", code, out)
	}
	if code, out = publish(forged, "report-now"); code != 1 || !strings.Contains(out, command.CodeBadSignature) {
		t.Errorf("forged = %d: %s", code, out)
	}
	if code, out = publish(priv, "clear-unresolved", `{"kind":"sale","stan":3,"batch":"000001"}`); code != 1 || !strings.Contains(out, `"ok":false`) {
		t.Errorf("refused by the handler = %d: %s", code, out)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.calls) != 1 || h.calls[0] != "retry sign-on" {
		t.Errorf("calls = %v", h.calls)
	}
}

// lossy is a terminal's link that loses the command replies it is told to
// (the reply published just as the link dropped, say).
type lossy struct {
	*mqtt.Client
	mu   sync.Mutex
	drop int // replies still to lose; < 0: all
}

func (l *lossy) Publish(ctx context.Context, topic string, retained bool, payload []byte) error {
	l.mu.Lock()
	lose := l.drop != 0
	if l.drop > 0 {
		l.drop--
	}
	l.mu.Unlock()
	if lose && topic == mqtt.ReplyTopic("10000001") {
		return nil
	}
	return l.Client.Publish(ctx, topic, retained, payload)
}

// posctl command --wait resends the same signed command until the reply
// comes: through the next --publish URL when the first is down, and the
// terminal answers a resend with the reply it gave, without running the
// command again. When the terminal no longer has that reply (it restarted
// after running the command, before its reply got out), the resend is
// refused as a replay and posctl says the command ran with a result it
// cannot know, exit 1.
func TestCommandWaitResends(t *testing.T) {
	m, passFile := centralMosquitto(t)
	priv, pub := keygen(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	r := terminalLink(t, m)
	link := &lossy{Client: r, drop: 1}
	h := &handler{}
	v := commandVerifier(t, pub)
	startServer(t, ctx, &command.Server{TID: "10000001", Handler: h, Transport: link, Verifier: v, Log: quietLog()}, r)
	calls := func() int {
		h.mu.Lock()
		defer h.mu.Unlock()
		return len(h.calls)
	}
	// Nothing listens on the first URL.
	down := "ssl://" + bench.ReserveAddr(t)
	publish := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := run(append(commandArgs(priv, "--publish", down+","+m.TLSURL, "--ca", m.PKI.CAFile, "--user", "central",
			"--password-file", passFile, "--wait", "20s", "--resend", "300ms"), args...), &out, &errb)
		return code, out.String(), errb.String()
	}
	// The session subscribes in its OnConnect, and the first reply is lost:
	// resends cover both.
	if code, out, errs := publish("retry-step", `{"step":"sign-on"}`); code != 0 || !strings.Contains(out, `"ok":true`) {
		t.Fatalf("resent after a lost reply = %d: %s %s", code, out, errs)
	}
	if n := calls(); n != 1 {
		t.Fatalf("handler ran %d times, want 1", n)
	}

	// Every reply lost, and the terminal restarts once it has run the
	// command: the restarted server has the nonce on disk and no reply.
	link.mu.Lock()
	link.drop = -1
	link.mu.Unlock()
	type result struct {
		code      int
		out, errs string
	}
	done := make(chan result, 1)
	go func() {
		code, out, errs := publish("report-now")
		done <- result{code, out, errs}
	}()
	for calls() < 2 {
		select {
		case res := <-done:
			t.Fatalf("posctl ended before the terminal ran the command: %+v", res)
		case <-time.After(20 * time.Millisecond):
		}
	}
	restarted := &command.Server{TID: "10000001", Handler: h, Transport: r, Log: quietLog(),
		Verifier: &command.Verifier{Keys: v.Keys, TID: v.TID, StatePath: v.StatePath, Floor: v.Floor}}
	if err := restarted.Listen(); err != nil {
		t.Fatal(err)
	}
	go restarted.Run(ctx)
	res := <-done
	if res.code != 1 || !strings.Contains(res.out, command.CodeReplayed) ||
		!strings.Contains(res.errs, "ran before, result unknown: check the terminal's status") {
		t.Errorf("resend after the terminal restarted = %d: %s %s", res.code, res.out, res.errs)
	}
	if n := calls(); n != 2 {
		t.Errorf("handler ran %d times, want 2 (once per command)", n)
	}

	// Without --wait: published once, through the first URL that takes it.
	var out, errb bytes.Buffer
	if code := run(commandArgs(priv, "--publish", down+","+m.TLSURL, "--ca", m.PKI.CAFile, "--user", "central",
		"--password-file", passFile, "report-now"), &out, &errb); code != 0 || !strings.Contains(out.String(), "published") {
		t.Fatalf("publish past a dead URL = %d: %s %s", code, out.String(), errb.String())
	}
	for deadline := time.Now().Add(10 * time.Second); calls() < 3 && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	if n := calls(); n != 3 {
		t.Errorf("handler ran %d times after the publish without --wait, want 3", n)
	}
}

// centralMosquitto is a TLS-only mosquitto with the fleet ACL that knows
// terminal 10000001 (password pw-t) and central, whose password is in the
// file it returns.
func centralMosquitto(t *testing.T) (*bench.Mosquitto, string) {
	t.Helper()
	m := bench.StartMosquittoWith(t, bench.MosquittoConfig{
		Users: map[string]string{"10000001": "pw-t", "central": "pw-central"},
		ACL:   bench.FleetACL, TLS: true, NoPlain: true,
	})
	passFile := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(passFile, []byte("pw-central\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return m, passFile
}

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// terminalLink is terminal 10000001's session on m, not started yet
// (subscriptions first), closed when the test ends.
func terminalLink(t *testing.T, m *bench.Mosquitto) *mqtt.Client {
	t.Helper()
	r, err := mqtt.New(mqtt.Options{URL: m.TLSURL, CAFile: m.PKI.CAFile, TID: "10000001", Username: "10000001", Password: "pw-t",
		Logger: quietLog(), RetryInterval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close(context.Background()) })
	return r
}

// startServer subscribes s, runs it until ctx ends and starts the session r.
func startServer(t *testing.T, ctx context.Context, s *command.Server, r *mqtt.Client) {
	t.Helper()
	if err := s.Listen(); err != nil {
		t.Fatal(err)
	}
	go s.Run(ctx)
	if err := r.Start(ctx); err != nil {
		t.Fatal(err)
	}
}
