//go:build !firmware

package monitor

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/posagent/posagent/agent/central/mqtt"
	"github.com/posagent/posagent/agent/central/report/reporttest"
	"github.com/posagent/posagent/agent/testkit/bench"
	"github.com/posagent/posagent/provisioning"
)

// TestMetricsInPrometheus: a real Prometheus scrapes a watch's /metrics
// while a small simulated fleet installs through a real mosquitto; its
// queries see every terminal live, one install duration per terminal, and the
// one sign-on failure a terminal reported on its way.
func TestMetricsInPrometheus(t *testing.T) {
	bench.Need(t, "prometheus")
	const n = 8
	// As BenchmarkFleet: mosquitto's default queue bound drops a fleet
	// monitor's messages.
	mq := bench.StartMosquittoWith(t, bench.MosquittoConfig{Extra: "max_queued_messages 0\nmax_inflight_messages 0"})
	m := NewMetrics(nil)
	srv, err := ServeMetrics("127.0.0.1:0", m)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	start := time.Now()
	prom := bench.StartPrometheus(t, srv.Addr())
	t.Logf("prometheus ready after %v", time.Since(start).Round(time.Millisecond))

	terms := make([]*reporttest.Terminal, n)
	for i := range terms {
		terms[i] = reporttest.Start(t, mqtt.Options{URL: mq.URL, TID: fmt.Sprintf("3000%04d", i), MID: "898310048160001", Logger: quiet()})
	}
	out := newLines()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Watch(ctx, Options{URL: mq.URL, Out: out, Fleet: m}) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Watch = %v", err)
		}
	})
	// Every birth shown: the watch is subscribed, so it misses no event
	// (events are not retained).
	deadline := time.After(wait)
	for strings.Count(out.String(), " online ") < n {
		select {
		case <-out.ch:
		case <-deadline:
			t.Fatalf("the watch saw %d of %d births:\n%s", strings.Count(out.String(), " online "), n, out.String())
		}
	}

	var wg sync.WaitGroup
	for i, r := range terms {
		steps := fleetInstall()
		if i == 0 {
			steps = withSignOnFailure(steps)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, s := range steps {
				r.Report(context.Background(), s)
			}
		}()
	}
	wg.Wait()
	for _, r := range terms {
		flush(t, r)
	}
	flushed := time.Now()

	for _, q := range []struct {
		expr string
		want float64
	}{
		{`sum(posagent_terminals{state="live"})`, n},
		{`posagent_install_duration_seconds_count`, n},
		{`posagent_failures_total{code="E_SIGNON"}`, 1},
		{`sum(posagent_failures_total)`, 1},
		{`posagent_terminals_presence{presence="online"}`, n},
		{`posagent_oldest_running_install_seconds`, 0},
		{`posagent_events_total`, float64(n*len(fleetInstall()) + 2)},
	} {
		waitQuery(t, prom, q.expr, q.want)
	}
	t.Logf("every query answered as expected %v after the last report was flushed", time.Since(flushed).Round(time.Millisecond))
}

// withSignOnFailure is an install whose first sign-on fails (no answer) and
// whose second succeeds.
func withSignOnFailure(install []provisioning.Status) []provisioning.Status {
	var out []provisioning.Status
	for _, s := range install {
		out = append(out, s)
		if s.Step == provisioning.StepSignOn && s.State == provisioning.StateRunning {
			f := s
			f.State, f.Error = provisioning.StateFailed, &provisioning.Failure{Step: s.Step, Code: "E_SIGNON", Message: "no answer"}
			retry := s
			retry.Attempt = 2
			out = append(out, f, retry)
		}
	}
	return out
}

// waitQuery polls Prometheus until expr evaluates to want; it fails after
// wait with the last answer.
func waitQuery(t *testing.T, prom *bench.Prometheus, expr string, want float64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		v, found, err := prom.Query(ctx, expr)
		if err == nil && found && v == want {
			return
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			t.Fatalf("%s: last answer %v (found %v, err %v), want %v; prometheus log:\n%s", expr, v, found, err, want, prom.Log())
		}
	}
}
