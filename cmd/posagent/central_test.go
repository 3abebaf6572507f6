package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/posagent/posagent/agent/central/command"
	"github.com/posagent/posagent/agent/central/mqtt"
	"github.com/posagent/posagent/agent/central/ticket"
	"github.com/posagent/posagent/agent/central/trust"
	"github.com/posagent/posagent/agent/config/configtest"
	"github.com/posagent/posagent/agent/testkit/bench"
	"github.com/posagent/posagent/provisioning"
)

// These tests run `posagent run` against a real mosquitto as central
// monitoring sees it: the install ticket central signs, and the commands it
// sends. mosquitto_pub and mosquitto_sub stand in for central.

const demoTID = "10000001"

// runConfig writes the example config with state in dir, reporting to url
// (none when ""), and the replacements of example lines given.
func runConfig(t *testing.T, dir, url string, edits ...[2]string) string {
	t.Helper()
	path := filepath.Join(dir, "posagent.yaml")
	base := [][2]string{{"state_dir: /var/lib/posagent", "state_dir: " + filepath.Join(dir, "state")}}
	if url != "" {
		base = append(base, [2]string{"  url: \"\"    ", "  url: \"" + url + "\"    "})
	}
	err := configtest.WriteEdited(filepath.Join("..", "..", "testdata", "posagent.example.yaml"), path, append(base, edits...))
	if err != nil {
		t.Fatal(err)
	}
	return path
}

// tlsConfig points the example config's mqtt section at m's TLS listener
// (tickets and commands need TLS) and turns on central's tickets or commands
// with the key file pub as kid central-2026a.
func tlsConfig(m *bench.Mosquitto, pub string, tickets, commands bool) [][2]string {
	return [][2]string{
		{"  url: \"\"    ", "  url: \"" + m.TLSURL + "\"    "},
		{"  ca_file: \"\"", "  ca_file: \"" + m.PKI.CAFile + "\""},
		{"  tickets: false", fmt.Sprintf("  tickets: %t", tickets)},
		{"  commands: false", fmt.Sprintf("  commands: %t", commands)},
		{"  keys: []                 # central's", "  keys: [{kid: central-2026a, public_key_file: \"" + pub + "\"}] #"},
	}
}

// clientArgs are mosquitto_pub/sub's connection flags: m's TLS listener when
// it has one, as central's tools would use.
func clientArgs(m *bench.Mosquitto) []string {
	if m.TLSPort != 0 {
		return []string{"-h", "127.0.0.1", "-p", fmt.Sprint(m.TLSPort), "--cafile", m.PKI.CAFile}
	}
	return []string{"-h", "127.0.0.1", "-p", fmt.Sprint(m.Port)}
}

// publish sends one message as central would.
func publish(t *testing.T, m *bench.Mosquitto, topic string, retained bool, payload []byte) {
	t.Helper()
	args := append(clientArgs(m), "-q", "1", "-t", topic, "-s")
	if retained {
		args = append(args, "-r")
	}
	cmd := exec.Command(bench.Need(t, "mosquitto_pub"), args...)
	cmd.Stdin = strings.NewReader(string(payload))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("mosquitto_pub: %v: %s", err, out)
	}
}

// subscribe collects every message on topic ("topic payload" lines) from
// the moment it returns: it waits for the broker's SUBACK, so what is
// published next is not missed.
func subscribe(t *testing.T, m *bench.Mosquitto, topic string) *bench.Buffer {
	t.Helper()
	w := &subscription{topic: topic, acked: make(chan struct{})}
	// -d prints the SUBACK among its debug lines; stdbuf makes the output
	// line-buffered, not 4 KiB lumps into the pipe.
	cmd := exec.Command(bench.Need(t, "stdbuf"), append([]string{"-oL", bench.Need(t, "mosquitto_sub")},
		append(clientArgs(m), "-q", "1", "-d", "-t", topic, "-v")...)...)
	cmd.Stdout = w
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	select {
	case <-w.acked:
	case <-time.After(10 * time.Second):
		t.Fatalf("mosquitto_sub %s: no SUBACK within 10 s", topic)
	}
	return &w.out
}

// subscription keeps mosquitto_sub's message lines for topic and notes its
// SUBACK; the other debug lines are dropped. Written by one goroutine (the
// command's output copier).
type subscription struct {
	topic   string
	out     bench.Buffer
	acked   chan struct{}
	once    sync.Once
	partial []byte
}

func (s *subscription) Write(p []byte) (int, error) {
	s.partial = append(s.partial, p...)
	for {
		i := bytes.IndexByte(s.partial, '\n')
		if i < 0 {
			return len(p), nil
		}
		line := s.partial[:i+1]
		s.partial = s.partial[i+1:]
		switch {
		case bytes.Contains(line, []byte("received SUBACK")):
			s.once.Do(func() { close(s.acked) })
		case bytes.HasPrefix(line, []byte(s.topic+" ")):
			s.out.Write(line)
		}
	}
}

// waitFor waits until what the process or subscriber wrote holds want.
func waitFor(t *testing.T, what string, b *bench.Buffer, want string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := b.WaitFor(ctx, want); err != nil {
		t.Fatalf("%s never showed %q:\n%s", what, want, b.String())
	}
}

func signedTicket(t *testing.T, priv []byte, edit func(*ticket.Ticket)) []byte {
	t.Helper()
	key, err := trust.ParsePrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	nonce, err := ticket.NewNonce()
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tk := ticket.Ticket{
		KID: "central-2026a", TID: demoTID, MID: "898310048990001", MerchantName: "上海示例便利店", LegalPerson: "ZHANG SAN",
		AccountCheck: demoAccountCheck, CardType: provisioning.Debit, TestAmount: 1,
		IssuedAt: now, ExpiresAt: now.Add(time.Hour), Nonce: nonce,
	}
	if edit != nil {
		edit(&tk)
	}
	b, err := ticket.Sign(tk, key)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// centralKeys makes central's signing key and a forger's (PEM), and writes
// central's public key to dir/central.pub, whose path it returns.
func centralKeys(t *testing.T, dir string) (priv, forger []byte, pubPath string) {
	t.Helper()
	priv, pub, err := trust.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	forger, _, err = trust.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	pubPath = filepath.Join(dir, "central.pub")
	if err := os.WriteFile(pubPath, pub, 0o644); err != nil {
		t.Fatal(err)
	}
	return priv, forger, pubPath
}

// demoAccountCheck is the demo card's check value under the demo TMK and
// TID (testdata/posagent.example.yaml, merchant.account_check).
const demoAccountCheck = "16669b73825af85f9eaa5dbc759d4aa358bd1e1a79d1d33559b52fadce61d318"

// agentRun is `posagent run --config cfg` started for a test: the keypad's
// stdin, the step lines and screens, the log. It is killed at the test's end
// and its log shown when the test failed.
type agentRun struct {
	cmd            *exec.Cmd
	stdin          io.WriteCloser
	stdout, stderr bench.Buffer
}

func startAgent(t *testing.T, cfg string) *agentRun {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	a := &agentRun{cmd: exec.CommandContext(ctx, binary, "run", "--config", cfg)}
	var err error
	if a.stdin, err = a.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	a.cmd.Stdout, a.cmd.Stderr = &a.stdout, &a.stderr
	if err := a.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		a.cmd.Process.Kill()
		a.cmd.Wait()
		if t.Failed() {
			t.Logf("agent's log:\n%s", a.stderr.String())
		}
	})
	return a
}

// keys types on the agent's tty keypad.
func (a *agentRun) keys(t *testing.T, keys string) {
	t.Helper()
	if _, err := io.WriteString(a.stdin, keys); err != nil {
		t.Fatal(err)
	}
}

// TestRunWaitsForSignedTicket: with central's tickets on, the parameters
// step waits for a ticket; a forged one (signed by another key) is refused
// and reported on MQTT, and the genuine one lets the install go live, its
// card bound against the ticket's account_check.
func TestRunWaitsForSignedTicket(t *testing.T) {
	m := bench.StartMosquittoWith(t, bench.MosquittoConfig{TLS: true, NoPlain: true})
	dir := t.TempDir()
	priv, forger, pubPath := centralKeys(t, dir)
	cfg := runConfig(t, dir, "", tlsConfig(m, pubPath, true, false)...)
	status := subscribe(t, m, mqtt.StatusTopic(demoTID))

	a := startAgent(t, cfg)
	waitFor(t, "agent", &a.stdout, "step| parameters      running")

	publish(t, m, mqtt.TicketTopic(demoTID), true, signedTicket(t, forger, nil))
	waitFor(t, "status topic", status, "E_TICKET_BAD_SIGNATURE")
	if strings.Contains(a.stdout.String(), "step| parameters      done") {
		t.Fatal("a forged ticket was accepted")
	}

	publish(t, m, mqtt.TicketTopic(demoTID), true, signedTicket(t, priv, nil))
	if err := a.cmd.Wait(); err != nil {
		t.Fatalf("run: %v\n%s\n%s", err, a.stdout.String(), a.stderr.String())
	}
	if !strings.Contains(a.stdout.String(), "step| live            live") {
		t.Errorf("never went live:\n%s", a.stdout.String())
	}
	if !strings.Contains(a.stderr.String(), "install ticket accepted") {
		t.Errorf("no acceptance logged:\n%s", a.stderr.String())
	}
}

// signedCommand is one of central's commands for the demo terminal, signed
// with priv (PEM) as kid central-2026a.
func signedCommand(t *testing.T, priv []byte, id, name, args string) []byte {
	t.Helper()
	return signedCommandFor(t, priv, demoTID, id, name, args)
}

// signedCommandFor is central's signed command to the terminal tid.
func signedCommandFor(t *testing.T, priv []byte, tid, id, name, args string) []byte {
	t.Helper()
	key, err := trust.ParsePrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	nonce, err := ticket.NewNonce()
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	e := command.Envelope{ID: id, Name: name, TID: tid, Nonce: nonce, KID: "central-2026a",
		IssuedAt: now, ExpiresAt: now.Add(5 * time.Minute)}
	if args != "" {
		e.Args = []byte(args)
	}
	b, err := command.Sign(e, key)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestRemoteRetry: the install stops at a rejected card with nobody at the
// keypad; central's signed retry-step command answers the question, the next
// card is read, and the reply says ok. A command for a step that has not
// failed is refused with a reason; a forged one is refused with its code and
// does nothing; the genuine one sent again (central resending through another
// node) gets its first reply again and is not run again (run again, it would
// be refused: bind-card is no longer the failed step).
func TestRemoteRetry(t *testing.T) {
	m := bench.StartMosquittoWith(t, bench.MosquittoConfig{TLS: true, NoPlain: true})
	dir := t.TempDir()
	priv, forger, pubPath := centralKeys(t, dir)
	cfg := runConfig(t, dir, "", append(tlsConfig(m, pubPath, false, true),
		[2]string{"  keypad: sim ", "  keypad: tty "},
		[2]string{"  cards: []", "  cards: [foreign, debit]"})...)
	replies := subscribe(t, m, mqtt.ReplyTopic(demoTID))

	a := startAgent(t, cfg)
	// F1, the password, "1" install, keep MID and TID, save.
	a.keys(t, "f2468\r1\r\r\r")
	waitFor(t, "agent", &a.stdout, "error=E_NOT_UNIONPAY")

	send := func(payload []byte) { publish(t, m, mqtt.CommandTopic(demoTID), false, payload) }
	send(signedCommand(t, priv, "c1", "retry-step", `{"step":"test-sale"}`))
	waitFor(t, "replies", replies, `"id":"c1"`)
	send(signedCommand(t, forger, "c0", "retry-step", `{"step":"bind-card"}`))
	waitFor(t, "replies", replies, `"id":"c0"`)
	genuine := signedCommand(t, priv, "c2", "retry-step", `{"step":"bind-card"}`)
	send(genuine)
	waitFor(t, "replies", replies, `"id":"c2"`)
	// The debit card is read now; the installer confirms it.
	waitFor(t, "agent", &a.stdout, "CONFIRM CARD")
	send(genuine) // resent
	waitFor(t, "agent", &a.stderr, "answered again (not run again)")
	a.keys(t, "\r")
	if err := a.cmd.Wait(); err != nil {
		t.Fatalf("run: %v\n%s\n%s", err, a.stdout.String(), a.stderr.String())
	}
	if !strings.Contains(a.stdout.String(), "step| live            live") {
		t.Errorf("never went live:\n%s", a.stdout.String())
	}
	type reply struct {
		OK    bool `json:"ok"`
		Error *struct{ Code, Message string }
	}
	got := map[string][]reply{}
	for _, line := range strings.Split(strings.TrimSpace(replies.String()), "\n") {
		_, payload, _ := strings.Cut(line, " ")
		var r struct {
			ID string `json:"id"`
			reply
		}
		if err := json.Unmarshal([]byte(payload), &r); err != nil {
			t.Fatalf("reply %q: %v", line, err)
		}
		got[r.ID] = append(got[r.ID], r.reply)
	}
	if r := got["c1"]; len(r) != 1 || r[0].OK || r[0].Error == nil || !strings.Contains(r[0].Error.Message, "bind-card") {
		t.Errorf("retry of a step that did not fail: %+v", r)
	}
	if r := got["c0"]; len(r) != 1 || r[0].OK || r[0].Error == nil || r[0].Error.Code != command.CodeBadSignature {
		t.Errorf("forged retry: %+v", r)
	}
	if r := got["c2"]; len(r) != 2 || !r[0].OK || !r[1].OK {
		t.Errorf("retry of the failed step, then the same bytes again: %+v", r)
	}
	if n := strings.Count(a.stdout.String(), "CONFIRM CARD"); n != 1 {
		t.Errorf("the card was asked for %d times, want 1: the resend ran the retry again", n)
	}
}

// TestReportNowAfterNewIdentity: the installer types another MID and TID
// at the menu; the agent starts again under them, and central's "report
// now", sent to the new TID, reports the new numbers. (The parameters step
// then stops: the config's merchant record is for the config's MID.)
func TestReportNowAfterNewIdentity(t *testing.T) {
	const newMID, newTID = "123456789012345", "87654321"
	m := bench.StartMosquittoWith(t, bench.MosquittoConfig{TLS: true, NoPlain: true})
	dir := t.TempDir()
	priv, _, pubPath := centralKeys(t, dir)
	cfg := runConfig(t, dir, "", append(tlsConfig(m, pubPath, false, true),
		[2]string{"  keypad: sim ", "  keypad: tty "})...)
	// Subscribed before the agent starts: nothing it publishes is missed.
	replies := subscribe(t, m, mqtt.ReplyTopic(newTID))
	events := subscribe(t, m, mqtt.EventsTopic(newTID))

	a := startAgent(t, cfg)
	// F1, the password, "1" install, the new MID and TID, save.
	a.keys(t, "f2468\r1"+newMID+"\r"+newTID+"\r\r")
	waitFor(t, "agent", &a.stdout, "agent| new terminal identity")
	// The menu again, under the new numbers: keep them.
	a.keys(t, "f2468\r1\r\r\r")
	waitFor(t, "agent", &a.stdout, "error=E_MID_MISMATCH")

	publish(t, m, mqtt.CommandTopic(newTID), false, signedCommandFor(t, priv, newTID, "r1", command.NameReportNow, "{}"))
	waitFor(t, "replies", replies, `"id":"r1"`)
	if !strings.Contains(replies.String(), `"ok":true`) {
		t.Fatalf("report-now refused: %s", replies.String())
	}
	// The report it made says it was asked for.
	waitFor(t, "events", events, `"message":"status on request`)
	var got struct {
		TID, MID, Step, Message string
	}
	for line := range strings.Lines(events.String()) {
		_, payload, _ := strings.Cut(strings.TrimSpace(line), " ")
		if json.Unmarshal([]byte(payload), &got) == nil && strings.HasPrefix(got.Message, "status on request") {
			break
		}
	}
	if got.TID != newTID || got.MID != newMID || got.Step != string(provisioning.StepParameters) {
		t.Errorf("report now reported %+v, want TID %s MID %s at the parameters step", got, newTID, newMID)
	}
}

// TestPlainTCPWithCommandsRefused: a config that takes central's commands
// (or tickets) over a plain tcp:// broker is refused at start with exit 2 and
// an error naming mqtt.url; the agent never connects to the broker.
func TestPlainTCPWithCommandsRefused(t *testing.T) {
	m := bench.StartMosquitto(t)
	dir := t.TempDir()
	_, _, pubPath := centralKeys(t, dir)
	state := subscribe(t, m, mqtt.StateTopic(demoTID))
	for _, on := range []struct {
		name              string
		tickets, commands bool
	}{{"central.commands", false, true}, {"central.tickets", true, false}} {
		cfg := runConfig(t, dir, m.URL, // plain tcp://
			[2]string{"  tickets: false", fmt.Sprintf("  tickets: %t", on.tickets)},
			[2]string{"  commands: false", fmt.Sprintf("  commands: %t", on.commands)},
			[2]string{"  keys: []                 # central's", "  keys: [{kid: central-2026a, public_key_file: \"" + pubPath + "\"}] #"})
		var stdout, stderr bytes.Buffer
		cmd := exec.Command(binary, "run", "--config", cfg)
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 2 {
			t.Fatalf("%s over tcp://: %v, want exit 2\n%s", on.name, err, stderr.String())
		}
		if msg := stderr.String(); !strings.Contains(msg, "mqtt.url: must be TLS") || !strings.Contains(msg, on.name) {
			t.Errorf("%s over tcp://: stderr %q does not name mqtt.url and %s", on.name, msg, on.name)
		}
	}
	// The broker never saw the terminal: no birth on its state topic.
	publish(t, m, mqtt.StateTopic(demoTID), false, []byte("marker"))
	waitFor(t, "state topic", state, "marker")
	if got := state.String(); strings.Contains(got, "online") {
		t.Errorf("the agent connected over tcp://: %s", got)
	}
}
