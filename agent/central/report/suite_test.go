package report

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/posagent/posagent/agent/central/mqtt"
	"github.com/posagent/posagent/agent/central/mqtt/mqtttest"
)

// The core suites run against five brokers (mqtttest): a mosquitto locked
// down as in production (TLS with client certificates, a password file and
// the fleet ACL), the embedded mochi broker locked down the same way, mochi
// open (plain, anonymous), as the demo runs it, and a node of the 3-node
// RabbitMQ cluster locked down with topic permissions, plain and over TLS
// (make test-cluster; skipped without POSAGENT_CLUSTER=1).
//
// Each case takes a fresh TID (mqtttest.NewTID): the cluster is shared by
// every package testing at once, and its retained messages outlive a run.

// benchFunc starts a broker that knows the terminals tids.
type benchFunc func(t *testing.T, tids ...string) mqtttest.Broker

func mosquittoBench(t *testing.T, tids ...string) mqtttest.Broker {
	return mqtttest.MosquittoTLSACL(t, tids...)
}
func mochiSecureBench(t *testing.T, tids ...string) mqtttest.Broker {
	return mqtttest.MochiTLSACL(t, tids...)
}
func mochiBench(t *testing.T, _ ...string) mqtttest.Broker { return mqtttest.MochiOpen(t) }

// On the cluster the terminal and the monitor share a node: RabbitMQ keeps
// a retained status on the node that received it, for exact-topic
// subscribers there (central reads the whole cluster in queue mode,
// agent/central/monitor). An outage is that node's SIGKILL; the other nodes
// live on.
func rabbitBench(t *testing.T, tids ...string) mqtttest.Broker {
	return mqtttest.RabbitCluster(t, 0, tids...)
}
func rabbitTLSBench(t *testing.T, tids ...string) mqtttest.Broker {
	return mqtttest.RabbitClusterTLS(t, 2, tids...)
}

// watcher is mqtttest.Watch on terminal id's topics for the reporter's
// tests, which collect events from it.
func watcher(t *testing.T, co *paho.ClientOptions, id string) (*subscriber, <-chan struct{}) {
	t.Helper()
	s, subscribed := mqtttest.Watch(t, co, topicsOf(id)...)
	return &subscriber{Subscriber: s, tid: id}, subscribed
}

// The reporter on the session, through each broker: the retained state and
// status for a late monitor, and no report lost to a SIGKILL or an outage.
func TestCoreSuiteMosquittoTLSACL(t *testing.T)  { coreSuite(t, mosquittoBench) }
func TestCoreSuiteMochiTLSACL(t *testing.T)      { coreSuite(t, mochiSecureBench) }
func TestCoreSuiteMochiOpen(t *testing.T)        { coreSuite(t, mochiBench) }
func TestCoreSuiteRabbitCluster(t *testing.T)    { coreSuite(t, rabbitBench) }
func TestCoreSuiteRabbitClusterTLS(t *testing.T) { coreSuite(t, rabbitTLSBench) }

func coreSuite(t *testing.T, start benchFunc) {
	// Each case's terminal is its own (the TID shadows the package's).
	t.Run("BirthAndRetainedStatusForLateSubscriber", func(t *testing.T) {
		tid := mqtttest.NewTID(t)
		b := start(t, tid)
		r := newReporter(t, b.URL(), func(o *testOptions) { b.Terminal(&o.Options, tid); o.Session = 7 })
		in := statuses(4)
		for _, st := range in {
			r.Report(context.Background(), st)
		}
		flushed(t, r)
		s, _ := watcher(t, b.Monitor(), tid)
		st := s.Until(t, "retained state", mqtttest.RetainedOn(mqtt.StateTopic(tid)))
		if p := mqtttest.Presence(t, st); p.State != mqtt.Online || p.Session != 7 || p.TID != tid {
			t.Errorf("retained state = %+v, want online session 7", p)
		}
		m := message(t, s.Until(t, "retained status", mqtttest.RetainedOn(mqtt.StatusTopic(tid))))
		if m.Seq != 4 || m.Message != "report 4" {
			t.Errorf("retained status = seq %d %q, want seq 4", m.Seq, m.Message)
		}
		s.noFullPAN(t)
	})

	// The agent is SIGKILLed while the broker is down, after Report returned
	// for every status; the broker comes back, the agent restarts on the same
	// outbox, and the monitor gets every event, in order, none missing.
	t.Run("SIGKILLWhileBrokerDownLosesNothing", func(t *testing.T) {
		if testing.Short() {
			t.Skip("runs a child process")
		}
		const n = 7
		tid := mqtttest.NewTID(t)
		b := start(t, tid)
		b.Stop()
		dir := t.TempDir()
		var o mqtt.Options
		b.Terminal(&o, tid)
		cmd := exec.Command(os.Args[0], "-test.run=^TestKillChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), killDirEnv+"="+dir, killNEnv+"="+strconv.Itoa(n), killURLEnv+"="+b.URL(), killTIDEnv+"="+tid,
			"POSAGENT_WILL_USER="+o.Username, "POSAGENT_WILL_PASS="+o.Password,
			"POSAGENT_WILL_CA="+o.CAFile, "POSAGENT_WILL_CERT="+o.CertFile, "POSAGENT_WILL_KEY="+o.KeyFile)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
		ready := make(chan bool, 1)
		go func() {
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				if sc.Text() == killReady {
					ready <- true
				}
			}
			ready <- false
		}()
		select {
		case ok := <-ready:
			if !ok {
				t.Fatal("the child ended before reporting")
			}
		case <-time.After(2 * wait):
			t.Fatal("the child did not report in time")
		}
		if err := cmd.Process.Kill(); err != nil { // SIGKILL
			t.Fatal(err)
		}
		_ = cmd.Wait()

		b.Restart()
		s, _ := watcher(t, b.Monitor(), tid)
		ob := openOutbox(t, dir)
		newReporter(t, b.URL(), func(o *testOptions) { b.Terminal(&o.Options, tid); o.Queue = ob })
		got := collectEvents(t, s, 1, n)
		for i, m := range got {
			if want := fmt.Sprintf("report %d", i+1); m.Message != want {
				t.Errorf("event %d = %q, want %q", i, m.Message, want)
			}
		}
	})

	// The broker is killed mid-flow and restarted after the rest of the
	// reports were made. The outage here lasts as long as the test needs
	// (well under a second); TestMosquittoThirtySecondOutage holds the
	// broker down for the full 30 s once.
	t.Run("BrokerKilledMidFlowShortOutageLosesNothingInOrder", func(t *testing.T) {
		outageMidFlow(t, start, 0)
	})
}

// TestMosquittoThirtySecondOutage: the broker is down for 30 s in the middle
// of an install, and every event arrives afterwards, in order, none missing.
func TestMosquittoThirtySecondOutage(t *testing.T) {
	outageMidFlow(t, mosquittoBench, 30*time.Second)
}

// outageMidFlow reports 4 events, stops the broker, reports 6 more while it
// is down, keeps it down for outage, restarts it, and checks the monitor gets
// events 5 to 10 in order.
func outageMidFlow(t *testing.T, start benchFunc, outage time.Duration) {
	tid := mqtttest.NewTID(t)
	b := start(t, tid)
	g := mqtttest.StartGate(t, b.Addr)
	s, subscribed := watcher(t, b.Monitor(), tid)
	r := newReporter(t, g.URL(b.Scheme), func(o *testOptions) { b.Terminal(&o.Options, tid) })
	in := statuses(10)
	for _, st := range in[:4] {
		r.Report(context.Background(), st)
	}
	collectEvents(t, s, 1, 4)

	g.Set(false) // the terminal must not come back before the monitor
	b.Stop()
	down := time.Now()
	reportAll(t, r, in[4:])
	time.Sleep(outage - time.Since(down))
	b.Restart()
	select {
	case <-subscribed:
	case <-time.After(wait):
		t.Fatal("monitor did not resubscribe")
	}
	g.Set(true)
	// After a long outage the next attempt may be a backoff step away (the
	// test's cap is short; the agent's is a minute).
	collectEventsWithin(t, s, 5, 10, wait+time.Minute)
	s.noFullPAN(t)
}

func flushed(t *testing.T, r *terminal) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
}
