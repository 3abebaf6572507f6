package monitor

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/posagent/posagent/agent/central/mqtt"
	"github.com/posagent/posagent/agent/central/report"
	"github.com/posagent/posagent/agent/testkit/bench"
	"github.com/posagent/posagent/agent/testkit/fleet"
	"github.com/posagent/posagent/provisioning"
)

// fleetNEnv sets the fleet benchmarks' number of terminals.
const fleetNEnv = "POSAGENT_FLEET_N"

// TestMain runs this test binary as a fleet child when BenchmarkFleetCluster
// started it as one (agent/testkit/fleet).
func TestMain(m *testing.M) {
	if fleet.IsChild() {
		os.Exit(fleet.ChildMain())
	}
	os.Exit(m.Run())
}

// fleetN is POSAGENT_FLEET_N, or def.
func fleetN(b *testing.B, def int) int {
	b.Helper()
	v := os.Getenv(fleetNEnv)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		b.Fatalf("%s=%q: want a positive number", fleetNEnv, v)
	}
	return n
}

// fleetDuration is the Go duration in the environment variable env, or def
// when it is unset.
func fleetDuration(b *testing.B, env string, def time.Duration) time.Duration {
	b.Helper()
	v := os.Getenv(env)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		b.Fatalf("%s=%q: want a positive duration", env, v)
	}
	return d
}

// BenchmarkFleet: N simulated terminals in this one process each connect to a
// real mosquitto and report a whole install (every step running then done,
// then live: 15 reports); a monitor subscribed to pos/v1/+/status and
// pos/v1/+/state folds them into a Fleet and the iteration ends when it
// counts N terminals live. One iteration is one fleet install, so ns/op is
// the wall time for N terminals; terminals/s is reported too.
//
//	POSAGENT_FLEET_N=1000 go test -run '^$' -bench BenchmarkFleet -benchtime 1x ./agent/central/monitor
//
// The terminals use the in-memory queue, not the fsynced outbox: the outbox's
// own cost is measured by agent/central/outbox's benchmarks, and N outboxes fsyncing
// on one shared disk would measure the disk.
func BenchmarkFleet(b *testing.B) {
	n := fleetN(b, 100)
	// mosquitto queues at most 1000 QoS 1 messages (max_queued_messages) for
	// a subscriber that has 20 in flight, and silently drops the rest: one
	// monitor watching a fleet install gets ~16 messages per terminal, so
	// with the defaults it misses "live" reports beyond a few dozen
	// terminals and never counts the fleet complete. A central monitor's
	// broker needs the same setting (docs/mqtt.md).
	m := bench.StartMosquittoWith(b, bench.MosquittoConfig{Extra: "max_queued_messages 0\nmax_inflight_messages 0"})
	install := fleet.Install()

	for i := 0; b.Loop(); i++ {
		live := make(chan struct{})
		fleet := NewFleet()
		var mu sync.Mutex
		c := paho.NewClient(paho.NewClientOptions().AddBroker(m.URL).SetClientID(fmt.Sprintf("bench-monitor-%d", i)).
			SetCleanSession(true).SetOrderMatters(true))
		if tok := c.Connect(); !tok.WaitTimeout(wait) || tok.Error() != nil {
			b.Fatalf("monitor connect: %v", tok.Error())
		}
		var once sync.Once
		counted := map[string]bool{}
		tok := c.SubscribeMultiple(map[string]byte{"pos/v1/+/status": 1, "pos/v1/+/state": 1}, func(_ paho.Client, msg paho.Message) {
			mu.Lock()
			defer mu.Unlock()
			fleet.Apply(msg.Topic(), msg.Payload())
			// Only the terminal this message is about can have changed:
			// counting the whole fleet per message would make the monitor
			// quadratic in N.
			tid := strings.Split(msg.Topic(), "/")[2]
			if row, _ := fleet.Row(tid); row.State == provisioning.StateLive && !counted[tid] {
				counted[tid] = true
				if len(counted) >= n {
					once.Do(func() { close(live) })
				}
			}
		})
		if !tok.WaitTimeout(wait) || tok.Error() != nil {
			b.Fatalf("monitor subscribe: %v", tok.Error())
		}

		start := time.Now()
		reporters := make([]*report.Reporter, n)
		links := make([]*mqtt.Client, n)
		var wg sync.WaitGroup
		for j := range n {
			// Per-iteration TIDs: the last iteration's retained "live" must
			// not count for this one.
			link, err := mqtt.New(mqtt.Options{URL: m.URL, TID: fmt.Sprintf("%02d%06d", i%100, j), MID: "898310048160001", Logger: quiet()})
			if err != nil {
				b.Fatal(err)
			}
			r, err := report.New(report.Options{Link: link, Logger: quiet()})
			if err != nil {
				b.Fatal(err)
			}
			reporters[j] = r
			links[j] = link
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := link.Start(context.Background()); err != nil {
					b.Error(err)
					return
				}
				if err := r.Start(context.Background()); err != nil {
					b.Error(err)
					return
				}
				for _, s := range install {
					r.Report(context.Background(), s)
				}
			}()
		}
		wg.Wait()
		select {
		case <-live:
		case <-time.After(5 * time.Minute):
			mu.Lock()
			_, by := fleet.Count()
			mu.Unlock()
			b.Fatalf("monitor counted %v of %d after 5 min", by, n)
		}
		elapsed := time.Since(start)
		b.StopTimer()
		b.ReportMetric(float64(n)/elapsed.Seconds(), "terminals/s")
		b.Logf("N=%d: all live at the monitor after %v", n, elapsed.Round(time.Millisecond))
		for j, r := range reporters {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				_ = r.Close(ctx)
				_ = links[j].Close(ctx)
			}()
		}
		wg.Wait()
		c.Disconnect(50)
		b.StartTimer()
	}
}

// fleetInstall is one terminal's reports (fleet.Install), for the tests
// here that replay an install.
func fleetInstall() []provisioning.Status { return fleet.Install() }
