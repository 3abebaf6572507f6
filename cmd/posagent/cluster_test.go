package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/posagent/posagent/agent/acquirer"
	"github.com/posagent/posagent/agent/central/monitor"
	"github.com/posagent/posagent/agent/central/mqtt"
	"github.com/posagent/posagent/agent/config/configtest"
	"github.com/posagent/posagent/agent/sim/hostsim"
	"github.com/posagent/posagent/agent/testkit/bench"
	"github.com/posagent/posagent/agent/testkit/rig"
	"github.com/posagent/posagent/provisioning"
	"github.com/posagent/posagent/provisioning/pan"
)

// clusterTID is the terminal of the cluster test: its own, so its broker
// user is nobody else's on the shared cluster.
const clusterTID = "10000093"

// centralLog is what central (queue mode, JSON lines) showed, in order.
type centralLog struct {
	mu    sync.Mutex
	lines []centralLine
	ch    chan struct{}
}

type centralLine struct {
	Topic   string          `json:"topic"`
	Payload json.RawMessage `json:"payload"`
}

func (c *centralLog) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, l := range strings.Split(strings.TrimSpace(string(p)), "\n") {
		var line centralLine
		if json.Unmarshal([]byte(l), &line) == nil && line.Topic != "" {
			c.lines = append(c.lines, line)
		}
	}
	select {
	case c.ch <- struct{}{}:
	default:
	}
	return len(p), nil
}

func (c *centralLog) snapshot() []centralLine {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]centralLine(nil), c.lines...)
}

// until waits for cond over what central showed so far.
func (c *centralLog) until(t *testing.T, what string, cond func([]centralLine) bool) {
	t.Helper()
	deadline := time.After(90 * time.Second)
	for !cond(c.snapshot()) {
		select {
		case <-c.ch:
		case <-time.After(200 * time.Millisecond):
		case <-deadline:
			t.Fatalf("central never showed %s; it showed:\n%s", what, c.dump())
		}
	}
}

func (c *centralLog) dump() string {
	var b strings.Builder
	for _, l := range c.snapshot() {
		fmt.Fprintf(&b, "%s %s\n", l.Topic, l.Payload)
	}
	return b.String()
}

// presences are the state messages central showed, in order.
func presences(lines []centralLine) []mqtt.Presence {
	var out []mqtt.Presence
	for _, l := range lines {
		if l.Topic != mqtt.StateTopic(clusterTID) {
			continue
		}
		var p mqtt.Presence
		if json.Unmarshal(l.Payload, &p) == nil {
			out = append(out, p)
		}
	}
	return out
}

// TestClusterNodeDiesMidInstall: a real `posagent run` (pcscd + a virtual
// chip card, hostsim over TCP, a pty printer) reports to the 3-node
// RabbitMQ cluster with mqtt.urls naming every node; central follows it in
// queue mode (quorum queues, AMQP). The host holds the test sale's answer;
// meanwhile the node the terminal's TID starts it on is SIGKILLed. The
// terminal moves to another node — central sees its birth there, of the
// same session, and its heartbeats go on, so central shows it online, never
// offline: RabbitMQ publishes no Will when a node dies, and none is needed.
// Released, the install finishes on the new node and goes live; central
// has every event once (dedup by seq), 1…N without a gap, in order.
func TestClusterNodeDiesMidInstall(t *testing.T) {
	c := bench.NeedRabbitCluster(t)
	bench.NeedPCSC(t)
	reached, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	r := rig.New(t, rig.Options{OnRequest: func(kind string, _ func(int) string) {
		if kind == hostsim.KindSale {
			once.Do(func() {
				close(reached)
				select {
				case <-release:
				case <-time.After(2 * time.Minute):
				}
			})
		}
	}})
	t.Cleanup(func() {
		select {
		case <-release:
		default:
			close(release)
		}
	})
	rig.PlugCard(t, "debit")

	var pw [12]byte
	if _, err := rand.Read(pw[:]); err != nil {
		t.Fatal(err)
	}
	password := hex.EncodeToString(pw[:])
	c.AddTerminal(t, clusterTID, password)
	tmk, err := acquirer.ParseKey(rig.TMK)
	if err != nil {
		t.Fatal(err)
	}
	check, err := acquirer.AccountCheck(tmk, clusterTID, pan.MustParse(rig.DebitPAN))
	if err != nil {
		t.Fatal(err)
	}
	urls := make([]string, c.Nodes())
	for i := range urls {
		// TLS: the agent sends a password only over TLS (the nodes' server
		// certificate from the bench's CA; no client certificates there).
		urls[i] = `"ssl://` + c.MQTTTLSAddr(i) + `"`
	}
	if err := configtest.WriteEdited(r.Config, r.Config, [][2]string{
		{`  tid: "10000001"`, `  tid: "` + clusterTID + `"`},
		{"  account_check: 16669b73825af85f9eaa5dbc759d4aa358bd1e1a79d1d33559b52fadce61d318", "  account_check: " + check},
		{"  urls: []  ", "  urls: [" + strings.Join(urls, ", ") + "]  "},
		{`  username: ""`, `  username: "` + clusterTID + `"`},
		{`  password: ""  `, `  password: "` + password + `"  `},
		{`  ca_file: ""`, `  ca_file: "` + c.CAFile() + `"`},
		{"  keepalive: 30s ", "  keepalive: 5s "},
		{"  heartbeat: 30s ", "  heartbeat: 5s "},
	}); err != nil {
		t.Fatal(err)
	}
	home := mqtt.StartIndex(clusterTID, c.Nodes())

	// Central: queue mode on the nodes the terminal does not start on, its
	// topology of its own on the shared cluster.
	prefix := "posagent-node-death-" + hex.EncodeToString(pw[:4])
	var amqpURLs []string
	for i := range c.Nodes() {
		if i != home {
			amqpURLs = append(amqpURLs, c.AMQPURL(i))
		}
	}
	t.Cleanup(func() {
		// The queues hold nothing once the test read them; the consistent-
		// hash exchange, without queues, routes nothing and goes with the
		// cluster (make test-cluster starts a fresh one).
		for i := range 2 {
			for n := range c.Nodes() {
				if n != home && c.Running(n) {
					c.Ctl(t, n, "delete_queue", monitor.ShardQueue(prefix, i))
					break
				}
			}
		}
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	src, err := monitor.DialAMQP(ctx, monitor.AMQPOptions{URLs: amqpURLs, Prefix: prefix, Shards: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	central := &centralLog{ch: make(chan struct{}, 1)}
	// Central's fleet is the metrics' (safe to read while the consumer
	// folds): the presence it shows is posagent_terminals_presence.
	metrics := monitor.NewMetrics(nil)
	consumer := monitor.NewConsumer(monitor.QueueOptions{JSON: true, Out: central, Fleet: metrics})
	consumed := make(chan error, 1)
	go func() { consumed <- consumer.Run(ctx, src) }()

	type result struct {
		stdout, stderr string
		err            error
	}
	ran := make(chan result, 1)
	agentLog := &lockedBuffer{}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, binary, "run", "--config", r.Config)
		quitOnTimeout(cmd)
		var stdout bytes.Buffer
		cmd.Stdout, cmd.Stderr = io.MultiWriter(&stdout, agentLog), agentLog
		err := cmd.Run()
		ran <- result{stdout.String(), agentLog.String(), err}
	}()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("agent log:\n%s", agentLog.String())
		}
	})
	select {
	case <-reached:
	case res := <-ran:
		t.Fatalf("the install ended before its test sale: %v\n%s\n%s", res.err, res.stdout, res.stderr)
	case <-time.After(90 * time.Second):
		t.Fatal("the test sale never reached the host")
	}
	central.until(t, "the terminal online", func(ls []centralLine) bool {
		ps := presences(ls)
		return len(ps) > 0 && ps[len(ps)-1].State == mqtt.Online
	})
	session := presences(central.snapshot())[0].Session
	births := len(presences(central.snapshot()))

	c.Kill(t, home)
	// The birth on the next node, and a heartbeat after it: central hears
	// the terminal again through a surviving node, with the session it knew.
	central.until(t, "a birth after the node died", func(ls []centralLine) bool { return len(presences(ls)) > births })
	central.until(t, "a heartbeat after the new birth", func(ls []centralLine) bool {
		for i := len(ls) - 1; i >= 0 && ls[i].Topic != mqtt.StateTopic(clusterTID); i-- {
			if ls[i].Topic == mqtt.HeartbeatTopic(clusterTID) {
				return true
			}
		}
		return false
	})
	if got := presenceGauges(t, metrics); got[mqtt.Online] != 1 || got[mqtt.Offline] != 0 || got[monitor.Silent] != 0 {
		t.Errorf("central's presence with the terminal's node dead: %v, want 1 online", got)
	}
	close(release)

	var res result
	select {
	case res = <-ran:
	case <-time.After(2 * time.Minute):
		t.Fatal("posagent run never ended")
	}
	if res.err != nil || !strings.Contains(res.stdout, "step| live") {
		t.Fatalf("posagent run: %v\nstdout:\n%s\nstderr:\n%s", res.err, res.stdout, res.stderr)
	}
	// The run's last events and its shutdown presence reach central too.
	central.until(t, "the install live and the terminal's shutdown", func(ls []centralLine) bool {
		ps := presences(ls)
		return len(ps) > 0 && ps[len(ps)-1].State == mqtt.Offline && liveEvent(ls)
	})

	lines := central.snapshot()
	var seqs []uint64
	for _, l := range lines {
		if l.Topic != mqtt.EventsTopic(clusterTID) {
			continue
		}
		var st struct {
			Seq uint64 `json:"seq"`
		}
		if err := json.Unmarshal(l.Payload, &st); err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, st.Seq)
	}
	for i, s := range seqs {
		if s != uint64(i+1) {
			t.Fatalf("central's events by seq: %v — want 1…%d, each once, in order", seqs, len(seqs))
		}
	}
	ps := presences(lines)
	for i, p := range ps {
		if p.Session != session {
			t.Errorf("presence %d of session %d, want %d (one run)", i, p.Session, session)
		}
		if p.State == mqtt.Offline && i != len(ps)-1 {
			t.Errorf("central showed the terminal offline (%s) before its shutdown: %+v", p.Reason, ps)
		}
	}
	if ps[len(ps)-1].Reason == "" || strings.Contains(ps[len(ps)-1].Reason, "will") {
		t.Errorf("the last presence %+v is not the terminal's own shutdown", ps[len(ps)-1])
	}
	if out := res.stdout + res.stderr; strings.Count(out, "mqtt: connected") < 2 {
		t.Errorf("the agent's log shows no second connection:\n%s", out)
	}
	cancel()
	<-consumed
	t.Logf("central: %d events, %d presences, %+v; source reconnects %d", len(seqs), len(ps), consumer.Stats(), src.Reconnects())
}

// liveEvent reports whether central showed the terminal's live event.
func liveEvent(ls []centralLine) bool {
	for _, l := range ls {
		if l.Topic != mqtt.EventsTopic(clusterTID) {
			continue
		}
		var st provisioning.Status
		if json.Unmarshal(l.Payload, &st) == nil && st.Step == provisioning.StepLive && st.State == provisioning.StateLive {
			return true
		}
	}
	return false
}

// presenceGauges reads posagent_terminals_presence off central's registry.
func presenceGauges(t *testing.T, m *monitor.Metrics) map[string]float64 {
	t.Helper()
	mfs, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "posagent_terminals_presence" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "presence" {
					out[l.GetValue()] = m.GetGauge().GetValue()
				}
			}
		}
	}
	return out
}

// lockedBuffer is the running agent's output, readable while it runs.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
