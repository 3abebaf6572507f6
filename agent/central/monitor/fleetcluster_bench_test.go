package monitor

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"text/tabwriter"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/posagent/posagent/agent/central/mqtt"
	"github.com/posagent/posagent/agent/central/report"
	"github.com/posagent/posagent/agent/testkit/bench"
	"github.com/posagent/posagent/agent/testkit/fleet"
	"github.com/posagent/posagent/provisioning"
)

// fleetRateEnv sets BenchmarkFleetCluster's arrival rate of first connects;
// fleetCentralEnv its monitor on the cluster: "queue" (the default) or
// "mqtt".
const (
	fleetRateEnv    = "POSAGENT_FLEET_RATE"
	fleetCentralEnv = "POSAGENT_FLEET_CENTRAL"
)

// BenchmarkFleetCluster: a fleet beyond one broker, in one run, printed as
// one table (make bench-fleet; POSAGENT_CLUSTER=1, POSAGENT_FLEET_N=N,
// default 1000). The N terminals run in ceil(N/7000) child processes
// (agent/testkit/fleet), each starting on the node its TID picks.
//
//   - install on one mosquitto, then on the 3-node RabbitMQ cluster: the
//     time from starting the children to the monitor counting all N live,
//     and the ratio; the RSS of the nodes with the N connected;
//   - install on the cluster with node 2 SIGKILLed when half the fleet has
//     connected, left down until the install is over: its terminals fail
//     over to the next node, every terminal must end live and the monitor
//     must get every event (tid, seq), none lost.
//
// The whole-cluster restarts are BenchmarkFleetClusterRestart's, each on a
// fresh cluster (make bench-fleet runs both).
//
// The monitor counts each (tid, seq) once. On mosquitto it is an MQTT
// subscriber of pos/v1/+/events (QoS 1); on the cluster it is queue mode,
// as central runs there (AMQPSource over every node: the shard exchange
// and its quorum queues, each run with a prefix of its own, deleted after
// it), so the node kill is survived by the monitor's own path too — or,
// with POSAGENT_FLEET_CENTRAL=mqtt, an MQTT subscriber on node 1, which
// is never killed (queue mode replicates every event three times over:
// on this bench's two cores that, not the terminals, sets how fast the
// cluster goes).
func BenchmarkFleetCluster(b *testing.B) {
	n := fleetN(b, 1000)
	cl := bench.NeedRabbitCluster(b)
	// The cluster is the benchmark's alone from the start: its figures are
	// not shared with other tests, and the node kill lands when it says.
	cl.Exclusive(b)
	m := bench.StartMosquittoWith(b, bench.MosquittoConfig{Extra: "max_queued_messages 0\nmax_inflight_messages 0"})
	user, pw, urls := fleetLogin(b, cl)
	spread := fleetSpread(b, n)
	onCluster := func(prefix string, install bool) fleet.Config {
		return fleet.Config{URLs: urls, Prefix: prefix, Username: user, Install: install, ConnectJitter: spread}
	}
	clusterCentral := func(prefix string) *central { return startQueueCentral(b, cl, prefix) }
	centralMode := "queue mode"
	switch v := os.Getenv(fleetCentralEnv); v {
	case "", "queue":
	case "mqtt":
		admin, adminPW := cl.Admin()
		clusterCentral = func(prefix string) *central { return startCentral(b, cl.MQTTURL(0), admin, adminPW, prefix) }
		centralMode = "an MQTT subscriber on node 1"
	default:
		b.Fatalf("%s=%q: want queue or mqtt", fleetCentralEnv, v)
	}
	rssAll := func() []int64 {
		var v []int64
		for i := range cl.Nodes() {
			x, err := cl.RSS(i)
			if err != nil {
				b.Fatal(err)
			}
			v = append(v, x)
		}
		return v
	}

	var rows []string
	row := func(format string, args ...any) {
		// Printed at once too: a run that fails later keeps what it measured.
		r := fmt.Sprintf(format, args...)
		fmt.Printf("fleet: N=%d %s\n", n, strings.ReplaceAll(r, "\t", " | "))
		rows = append(rows, r)
	}
	for b.Loop() {
		mos := fleetInstallRun(b, fleet.Config{URLs: []string{m.URL}, Prefix: "71", Install: true, ConnectJitter: spread}, n,
			"", startCentral(b, m.URL, "", "", "71"), nil, nil)
		row("install, 1 mosquitto\t%d\t%.1f s (acked %.1f s)\t%.0f/s\t%d\t%d", mos.procs, mos.live.Seconds(), mos.acked.Seconds(), float64(n)/mos.live.Seconds(), mos.lost, mos.dups)

		idle := rssAll()
		var rss []int64
		clu := fleetInstallRun(b, onCluster("72", true), n, pw, clusterCentral("72"), nil, func() { rss = rssAll() })
		fmt.Printf("fleet: N=%d RabbitMQ RSS idle %s, with the fleet connected %s\n", n, mib(idle), mib(rss))
		row("install, 3-node RabbitMQ\t%d\t%.1f s (acked %.1f s)\t%.0f/s\t%d\t%d", clu.procs, clu.live.Seconds(), clu.acked.Seconds(), float64(n)/clu.live.Seconds(), clu.lost, clu.dups)

		var killedAt time.Duration
		kill := fleetInstallRun(b, onCluster("73", true), n, pw, clusterCentral("73"), func(f *fleet.Fleet) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			if err := f.Wait(ctx, func(t fleet.Totals) bool { return t.Connects >= int64(n/2) }); err != nil {
				b.Fatal(err)
			}
			killedAt = time.Since(f.Started)
			cl.Kill(b, 1) // down until the install is over: its terminals fail over
		}, nil)
		cl.Start(b, 1)
		row("install, node 2 SIGKILLed at %.1f s\t%d\t%.1f s (acked %.1f s)\t%.0f/s\t%d\t%d", killedAt.Seconds(), kill.procs, kill.live.Seconds(), kill.acked.Seconds(), float64(n)/kill.live.Seconds(), kill.lost, kill.dups)
		if kill.lost != 0 {
			b.Errorf("node kill: %d events lost", kill.lost)
		}

		b.ReportMetric(mos.live.Seconds(), "s-mosquitto")
		b.ReportMetric(clu.live.Seconds(), "s-cluster")
		b.ReportMetric(kill.live.Seconds(), "s-cluster-kill")
		b.ReportMetric(float64(kill.lost), "lost-events")

		var grown int64
		for i := range rss {
			grown += rss[i] - idle[i]
		}
		w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintf(w, "\nfleet of N=%d terminals in %d processes, first connects spread over %v; an install is %d events, all counted by (tid, seq) at the monitor (mosquitto: an MQTT subscriber; cluster: %s)\n",
			n, mos.procs, spread, len(fleet.Install()), centralMode)
		fmt.Fprintf(w, "run\tprocs\tall live\trate\tlost\tdup\n")
		for _, r := range rows {
			fmt.Fprintln(w, r)
		}
		fmt.Fprintf(w, "cluster / mosquitto\t\t%.2f×\t\t\t\n", clu.live.Seconds()/mos.live.Seconds())
		fmt.Fprintf(w, "RabbitMQ RSS, idle → N connected\t\t%s → %s (+%.2f MB per connection)\t\t\t\n", mib(idle), mib(rss), float64(grown)/float64(n)/1e6)
		w.Flush()
		rows = nil
	}
}

type installResult struct {
	procs      int
	live       time.Duration // from the children's start to the last terminal live at the monitor
	acked      time.Duration // from the children's start to the last install acknowledged by the broker
	lost, dups int
}

// fleetInstallRun installs n terminals with cfg while c counts them, runs
// during (when not nil) once the fleet is launched, and waits for all n
// live, then for every event or a 10 s silence; installed (when not nil)
// runs then, before the fleet is closed.
func fleetInstallRun(b *testing.B, cfg fleet.Config, n int, password string, c *central, during func(*fleet.Fleet), installed func()) installResult {
	b.Helper()
	f := fleet.Launch(b, cfg, n, password)
	ctx, cancel := context.WithTimeout(context.Background(), cfg.ConnectJitter+10*time.Minute)
	defer cancel()
	acked := make(chan time.Time, 1)
	go func() {
		// When the broker has acknowledged every terminal's whole install:
		// set against the monitor's time, it tells the brokers' part from
		// the monitor's.
		if f.Wait(ctx, func(t fleet.Totals) bool { return t.Installed >= int64(n) }) == nil {
			acked <- time.Now()
		}
		close(acked)
	}()
	// Progress every 30 s: a run that stalls shows where (terminals not
	// connecting, or connected and their events not arriving).
	progress := time.NewTicker(30 * time.Second)
	defer progress.Stop()
	go func() {
		for {
			select {
			case <-progress.C:
			case <-ctx.Done():
				return
			}
			c.mu.Lock()
			live := c.live
			c.mu.Unlock()
			got, dups := c.counts()
			fmt.Printf("fleet: N=%d prefix %s at %.0f s: live %d, events %d, dup %d; children %+v\n",
				n, cfg.Prefix, time.Since(f.Started).Seconds(), live, got, dups, f.Totals())
		}
	}()
	if during != nil {
		during(f)
	}
	liveAt, err := c.waitLive(ctx, n)
	if err != nil {
		// Printed at once: a benchmark's log comes out only at its end,
		// and a cleanup that hangs on a broken cluster would keep it.
		got, dups := c.counts()
		fmt.Printf("fleet: N=%d prefix %s FAILED after %.0f s: %v; events %d, dup %d; children %+v\n",
			n, cfg.Prefix, time.Since(f.Started).Seconds(), err, got, dups, f.Totals())
		b.Fatal(err)
	}
	// Every terminal's live event is its last one, and a reporter sends in
	// order, so by now each event was acknowledged by the broker; one not at
	// the monitor yet is in flight or lost: a silence of 10 s says lost.
	want := n * len(fleet.Install())
	c.waitEvents(want, 10*time.Second)
	ackedAt, ok := <-acked
	if !ok {
		b.Fatalf("the children did not count %d installs acknowledged: %+v", n, f.Totals())
	}
	got, dups := c.counts()
	if installed != nil {
		installed()
	}
	if err := f.Close(); err != nil {
		b.Error(err)
	}
	c.close()
	return installResult{procs: f.Procs, live: liveAt.Sub(f.Started), acked: ackedAt.Sub(f.Started), lost: want - got, dups: dups}
}

// BenchmarkFleetClusterRestart: whole-cluster restarts (POSAGENT_CLUSTER=1,
// POSAGENT_FLEET_N=N, POSAGENT_FLEET_RATE): N terminals connect (no
// install), every node is stopped, all are started again, and the children
// count their CONNACKs per wall-clock second until all N are back. With
// the agent's full-jitter backoff ("jitter") and without it ("nojitter":
// the same doubling, every wait at its window's top), in the order
// POSAGENT_FLEET_RESTARTS gives (a comma list, default "jitter,nojitter"),
// all on the cluster it is given. make bench-fleet-restart runs each kind
// on a fresh cluster instead, so that a run that churns (connects accepted
// and dropped again, registrations queued) leaves nothing to the next.
func BenchmarkFleetClusterRestart(b *testing.B) {
	n := fleetN(b, 1000)
	cl := bench.NeedRabbitCluster(b)
	cl.Exclusive(b)
	user, pw, urls := fleetLogin(b, cl)
	spread := fleetSpread(b, n)
	order := "jitter,nojitter"
	if v := os.Getenv("POSAGENT_FLEET_RESTARTS"); v != "" {
		order = v
	}
	// The client's backoff cap (0: the agent's default, a minute), and how
	// long to watch the fleet come back after the start (without jitter
	// 10,000 took 505 s).
	capWait := fleetDuration(b, "POSAGENT_FLEET_RECONNECT_MAX", 0)
	within := fleetDuration(b, "POSAGENT_FLEET_BACK_WITHIN", 10*time.Minute)
	for b.Loop() {
		for i, kind := range strings.Split(order, ",") {
			cfg := fleet.Config{URLs: urls, Prefix: fmt.Sprintf("8%d", i), Username: user, ConnectJitter: spread, ReconnectMax: capWait}
			switch kind {
			case "jitter":
			case "nojitter":
				cfg.NoJitter = true
			default:
				b.Fatalf("POSAGENT_FLEET_RESTARTS: %q is neither jitter nor nojitter", kind)
			}
			r := fleetRestartRun(b, cl, cfg, n, pw, within)
			fmt.Printf("fleet: N=%d restart %d (stop %.1f s, start %.1f s), %s, cap %v | %d procs | %d back %.1f s from the start (watched %v) | peak %d/s\n",
				n, i+1, r.down.Seconds(), r.up.Seconds(), kind, cmp.Or(capWait, mqtt.DefaultReconnectMax), r.procs, r.backN, r.back.Seconds(), within, r.peak)
		}
	}
}

// fleetLogin adds the fleet's user to cl (one for every simulated
// terminal: the bench measures brokers, not ACLs) and returns it with the
// nodes' MQTT URLs.
func fleetLogin(b *testing.B, cl *bench.RabbitCluster) (user, password string, urls []string) {
	b.Helper()
	user, password = "fleet-"+randHex(b), randHex(b)
	cl.AddUser(b, user, password, ".*", ".*", ".*")
	for i := range cl.Nodes() {
		urls = append(urls, cl.MQTTURL(i))
	}
	return user, password, urls
}

// fleetSpread is how long n first connects are spread over: n/rate, rate
// being POSAGENT_FLEET_RATE (default 100 connects/s). Faster arrivals than
// the cluster can register client IDs collapse it on a busy machine: with
// 10,000 terminals connecting at once, or at 500/s, a 3.10 node here piled
// up thousands of CLOSE-WAIT sockets of clients that had timed out and
// retried elsewhere, reached its file descriptor alarm (and once 15 GB of
// RSS), and the fleet stopped converging.
func fleetSpread(b *testing.B, n int) time.Duration {
	b.Helper()
	rate := 100
	if v := os.Getenv(fleetRateEnv); v != "" {
		var err error
		if rate, err = strconv.Atoi(v); err != nil || rate <= 0 {
			b.Fatalf("%s=%q: want a positive number of connects per second", fleetRateEnv, v)
		}
	}
	return time.Duration(n) * time.Second / time.Duration(rate)
}

type restartResult struct {
	procs int
	// down: stopping every node; up: starting them all; back: from the
	// moment the start began to all n connected.
	down, up, back time.Duration
	backN          int64 // connected at the end (n unless the watch was not long enough)
	peak           int64 // connects in the busiest wall-clock second
}

// fleetRestartRun connects n terminals (no install), stops every node of
// the cluster at once, starts them all again, and waits for all n to be
// connected again.
func fleetRestartRun(b *testing.B, cl *bench.RabbitCluster, cfg fleet.Config, n int, password string, within time.Duration) restartResult {
	b.Helper()
	f := fleet.Launch(b, cfg, n, password)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute+within)
	defer cancel()
	if err := f.Wait(ctx, func(t fleet.Totals) bool { return t.Connected() >= int64(n) }); err != nil {
		b.Fatal(err)
	}
	t0 := time.Now()
	cl.StopAll(b)
	// Every connection must have been counted lost: otherwise "back" below
	// would count connections that never went away.
	if err := f.Wait(ctx, func(t fleet.Totals) bool { return t.Connected() == 0 }); err != nil {
		b.Fatalf("after stopping every node: %v", err)
	}
	t1 := time.Now()
	cl.StartAll(b)
	t2 := time.Now()
	// Not all back within the watch is a figure too (and the run goes on).
	wctx, wcancel := context.WithTimeout(ctx, within)
	go func() {
		// Progress: a fleet that churns (connects accepted and lost again)
		// looks different from one still waiting out its backoff.
		tick := time.NewTicker(30 * time.Second)
		defer tick.Stop()
		for {
			select {
			case <-tick.C:
				fmt.Printf("fleet: N=%d prefix %s restart at %.0f s from the start: %+v\n", n, cfg.Prefix, time.Since(t1).Seconds(), f.Totals())
			case <-wctx.Done():
				return
			}
		}
	}()
	err := f.Wait(wctx, func(t fleet.Totals) bool { return t.Connected() >= int64(n) })
	wcancel()
	t3 := time.Now()
	backN := f.Totals().Connected()
	if err != nil {
		b.Logf("after starting the nodes again: %v", err)
	}
	peak := slices.Max(f.ConnectsPerSecond(t1))
	back := t3.Sub(t1)
	if err := f.Close(); err != nil {
		b.Error(err)
	}
	return restartResult{procs: f.Procs, down: t1.Sub(t0), up: t2.Sub(t1), back: back, backN: backN, peak: peak}
}

// central is the benchmark's monitor: it counts each (tid, seq) of the
// TIDs with its prefix once, and the terminals whose live event came.
type central struct {
	prefix  string
	stop    func()
	mu      sync.Mutex
	seen    map[string]uint64 // tid → bit seq-1 for each event seen (an install has 15)
	events  int
	dups    int
	live    int
	liveAt  time.Time // when the last of the fleet came live
	lost    error     // the monitor's connection, lost
	changed chan struct{}
}

func newCentral(prefix string) *central {
	return &central{prefix: prefix, seen: map[string]uint64{}, changed: make(chan struct{})}
}

// startCentral is an MQTT subscriber of pos/v1/+/events at QoS 1.
func startCentral(b *testing.B, url, user, password, prefix string) *central {
	b.Helper()
	c := newCentral(prefix)
	o := paho.NewClientOptions().AddBroker(url).SetClientID("bench-central-" + prefix + "-" + randHex(b)).
		SetUsername(user).SetPassword(password).SetCleanSession(true).SetOrderMatters(true).SetAutoReconnect(false).
		// A busy node answers pings late; the default 10 s ping timeout
		// dropped the monitor (and its count) mid-install.
		SetKeepAlive(time.Minute).SetPingTimeout(time.Minute).
		SetConnectionLostHandler(func(_ paho.Client, err error) { c.fail(err) })
	client := paho.NewClient(o)
	// A minute: right after a fleet of thousands closed, a node takes a
	// while to answer a new connection.
	if tok := client.Connect(); !tok.WaitTimeout(time.Minute) || tok.Error() != nil {
		b.Fatalf("central connect %s: %v", url, tok.Error())
	}
	c.stop = func() { client.Disconnect(50) }
	b.Cleanup(c.close)
	// Two minutes: right after 10,000 terminals closed, a 3.10 node took
	// over 10 s to answer this SUBSCRIBE (it deregisters their client IDs
	// through Raft first), which failed a run before its node kill.
	tok := client.Subscribe("pos/v1/+/events", 1, func(_ paho.Client, m paho.Message) { c.apply(m.Topic(), m.Payload()) })
	if !tok.WaitTimeout(2 * time.Minute) {
		b.Fatalf("central subscribe %s: no SUBACK in 2 minutes", url)
	}
	if tok.Error() != nil {
		b.Fatalf("central subscribe %s: %v", url, tok.Error())
	}
	return c
}

// startQueueCentral is queue mode over every node of cl: its topology is
// declared before the fleet starts, so it misses nothing, and deleted when
// the benchmark ends (amq.topic would go on routing every later run's
// events into it).
func startQueueCentral(b *testing.B, cl *bench.RabbitCluster, prefix string) *central {
	b.Helper()
	c := newCentral(prefix)
	var urls []string
	for i := range cl.Nodes() {
		urls = append(urls, cl.AMQPURL(i))
	}
	qprefix := "bench-fleet-" + prefix + "-" + randHex(b)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	src, err := DialAMQP(ctx, AMQPOptions{URLs: urls, Prefix: qprefix, Prefetch: 1024})
	cancel()
	if err != nil {
		b.Fatalf("central (queue mode): %v", err)
	}
	rctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			d, err := src.Next(rctx)
			if err != nil {
				if rctx.Err() == nil {
					c.fail(err)
				}
				return
			}
			if strings.HasSuffix(d.Topic, "/events") {
				c.apply(d.Topic, d.Payload)
			}
			// A failed ack is not a loss: the queue delivers the event
			// again, and apply counts it once.
			_ = d.Ack()
		}
	}()
	c.stop = func() {
		stop()
		<-done
		_ = src.Close()
	}
	b.Cleanup(c.close)
	b.Cleanup(func() { deleteTopology(b, cl, qprefix, DefaultShards) })
	return c
}

// deleteTopology deletes a queue-mode prefix's exchange and queues through
// the first node that answers, within a minute (a cluster the run broke
// may not answer at all: the benchmark says so and ends).
func deleteTopology(b *testing.B, cl *bench.RabbitCluster, prefix string, shards int) {
	done := make(chan error, 1)
	go func() { done <- tryDeleteTopology(cl, prefix, shards) }()
	select {
	case err := <-done:
		if err != nil {
			b.Errorf("queue mode %s: %v", prefix, err)
		}
	case <-time.After(time.Minute):
		b.Errorf("queue mode %s: not deleted within a minute (delete it by hand, or take the cluster down)", prefix)
	}
}

func tryDeleteTopology(cl *bench.RabbitCluster, prefix string, shards int) error {
	var errs []error
	for i := range cl.Nodes() {
		if !cl.Running(i) {
			continue
		}
		conn, err := amqp.Dial(cl.AMQPURL(i))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		defer conn.Close()
		ch, err := conn.Channel()
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for q := range shards {
			if _, err := ch.QueueDelete(ShardQueue(prefix, q), false, false, false); err != nil {
				return fmt.Errorf("delete %s: %w", ShardQueue(prefix, q), err)
			}
		}
		if err := ch.ExchangeDelete(prefix, false, false); err != nil {
			return fmt.Errorf("delete exchange %s: %w", prefix, err)
		}
		return nil
	}
	return fmt.Errorf("no node to delete it on: %w", errors.Join(errs...))
}

func (c *central) fail(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.lost == nil {
		c.lost = err
	}
	c.notifyLocked()
}

func (c *central) apply(topic string, payload []byte) {
	tid := strings.TrimSuffix(strings.TrimPrefix(topic, "pos/v1/"), "/events")
	if !strings.HasPrefix(tid, c.prefix) {
		return
	}
	var msg report.Message
	if json.Unmarshal(payload, &msg) != nil || msg.Seq == 0 || msg.Seq > 64 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	bit := uint64(1) << (msg.Seq - 1)
	if c.seen[tid]&bit != 0 {
		c.dups++
		return
	}
	c.seen[tid] |= bit
	c.events++
	if msg.Status.State == provisioning.StateLive {
		c.live++
		c.liveAt = time.Now()
	}
	c.notifyLocked()
}

func (c *central) notifyLocked() {
	close(c.changed)
	c.changed = make(chan struct{})
}

// waitLive returns when the last of n terminals came live.
func (c *central) waitLive(ctx context.Context, n int) (time.Time, error) {
	for {
		c.mu.Lock()
		live, at, lost, ch := c.live, c.liveAt, c.lost, c.changed
		c.mu.Unlock()
		if live >= n {
			return at, nil
		}
		if lost != nil {
			return time.Time{}, fmt.Errorf("central: connection lost with %d of %d live: %v", live, n, lost)
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return time.Time{}, fmt.Errorf("central: %d of %d live: %w", live, n, ctx.Err())
		}
	}
}

// waitEvents returns once want events came, or none for quiet.
func (c *central) waitEvents(want int, quiet time.Duration) {
	for {
		c.mu.Lock()
		got, ch := c.events, c.changed
		c.mu.Unlock()
		if got >= want {
			return
		}
		select {
		case <-ch:
		case <-time.After(quiet):
			return
		}
	}
}

func (c *central) counts() (events, dups int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.events, c.dups
}

func (c *central) close() {
	c.mu.Lock()
	stop := c.stop
	c.stop = nil
	c.mu.Unlock()
	if stop != nil {
		stop()
	}
}

func randHex(b *testing.B) string {
	b.Helper()
	r := make([]byte, 6)
	if _, err := rand.Read(r); err != nil {
		b.Fatal(err)
	}
	return hex.EncodeToString(r)
}

// mib formats byte counts as "a + b + c MiB".
func mib(v []int64) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = fmt.Sprintf("%.0f", float64(x)/(1<<20))
	}
	return strings.Join(s, " + ") + " MiB"
}
