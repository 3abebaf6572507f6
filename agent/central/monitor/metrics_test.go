//go:build !firmware

package monitor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/posagent/posagent/agent/central/mqtt"
	"github.com/posagent/posagent/agent/central/report"
	"github.com/posagent/posagent/provisioning"
)

var t0 = time.Date(2025, 1, 2, 10, 0, 0, 0, time.UTC)

// msg is one message of the schema, as the broker delivers it.
type msg struct {
	topic   string
	payload []byte
}

func report1(kind, tid string, seq uint64, s provisioning.Status) msg {
	s.TID = tid
	b, err := json.Marshal(report.Message{Seq: seq, Status: s})
	if err != nil {
		panic(err)
	}
	return msg{"pos/v1/" + tid + "/" + kind, b}
}

// event and status are one report on the events and on the status topic.
func event(tid string, seq uint64, s provisioning.Status) msg { return report1("events", tid, seq, s) }
func status(tid string, seq uint64, s provisioning.Status) msg {
	return report1("status", tid, seq, s)
}

func presence(tid, state string, session uint64) msg {
	b, _ := json.Marshal(mqtt.Presence{State: state, TID: tid, Session: session})
	return msg{mqtt.StateTopic(tid), b}
}

func st(step provisioning.Step, state string, at time.Duration) provisioning.Status {
	return provisioning.Status{Step: step, State: state, Attempt: 1, Boot: 1, Time: t0.Add(at)}
}

func failed(step provisioning.Step, code string, at time.Duration) provisioning.Status {
	s := st(step, provisioning.StateFailed, at)
	s.Error = &provisioning.Failure{Step: step, Code: code, Message: "it failed"}
	return s
}

func apply(m *Metrics, msgs ...msg) {
	for _, x := range msgs {
		m.Apply(x.topic, x.payload)
	}
}

// failuresText is posagent_failures_total's exposition: every known code at 0
// but those in nonzero.
func failuresText(nonzero map[string]int) string {
	var lines []string
	for _, c := range append(append([]string(nil), codes...), Other) {
		lines = append(lines, fmt.Sprintf("posagent_failures_total{code=%q} %d", c, nonzero[c]))
	}
	sort.Strings(lines)
	return "# HELP posagent_failures_total Failed steps reported, by error code (once per event; unknown codes are \"other\").\n" +
		"# TYPE posagent_failures_total counter\n" + strings.Join(lines, "\n") + "\n"
}

// TestMetricsExposition: the whole exposition of a small fleet, one terminal
// of each kind: installed while watched, failed at sign-on (its failure
// redelivered and also on the status topic), seen only by its retained status
// (with a late Will of an older session), and one publishing a step and a code
// outside the schema.
func TestMetricsExposition(t *testing.T) {
	m := NewMetrics(func() time.Time { return t0.Add(time.Hour) })
	const a, b, c, d = "10000001", "10000002", "10000003", "10000004"
	apply(m,
		presence(a, mqtt.Online, 1),
		event(a, 1, st(provisioning.StepSelftest, provisioning.StateRunning, 0)),
		status(a, 1, st(provisioning.StepSelftest, provisioning.StateRunning, 0)),
		event(a, 2, st(provisioning.StepNetwork, provisioning.StateDone, time.Minute)),
		status(a, 2, st(provisioning.StepNetwork, provisioning.StateDone, time.Minute)),
		event(a, 3, st(provisioning.StepLive, provisioning.StateLive, 10*time.Minute)),
		status(a, 3, st(provisioning.StepLive, provisioning.StateLive, 10*time.Minute)),

		presence(b, mqtt.Online, 2),
		event(b, 1, st(provisioning.StepSelftest, provisioning.StateRunning, 5*time.Minute)),
		event(b, 2, failed(provisioning.StepSignOn, "E_SIGNON", 8*time.Minute)),
		event(b, 2, failed(provisioning.StepSignOn, "E_SIGNON", 8*time.Minute)), // QoS 1 redelivery
		status(b, 2, failed(provisioning.StepSignOn, "E_SIGNON", 8*time.Minute)),
		status(b, 1, st(provisioning.StepSelftest, provisioning.StateRunning, 5*time.Minute)), // older: ignored

		presence(c, mqtt.Online, 3),
		presence(c, mqtt.Offline, 2), // a late Will
		status(c, 9, st(provisioning.StepCAPK, provisioning.StateRunning, 50*time.Minute)),

		event(d, 1, failed("warp", "E_BOGUS", 59*time.Minute)),
	)
	want := `
# HELP posagent_terminals Terminals by the step and state of their newest status.
# TYPE posagent_terminals gauge
posagent_terminals{state="failed",step="other"} 1
posagent_terminals{state="failed",step="sign-on"} 1
posagent_terminals{state="live",step="live"} 1
posagent_terminals{state="running",step="capk"} 1
# HELP posagent_terminals_presence Terminals by presence (the session rule applied: a late Will does not count).
# TYPE posagent_terminals_presence gauge
posagent_terminals_presence{presence="offline"} 0
posagent_terminals_presence{presence="online"} 3
posagent_terminals_presence{presence="silent"} 0
posagent_terminals_presence{presence="unknown"} 1
# HELP posagent_oldest_running_install_seconds Age of the oldest install not yet live (0 when none), since its first report seen.
# TYPE posagent_oldest_running_install_seconds gauge
posagent_oldest_running_install_seconds 3300
# HELP posagent_events_total Events (reports on the events topic) folded, redeliveries left out.
# TYPE posagent_events_total counter
posagent_events_total 6
# HELP posagent_install_duration_seconds Installs seen from their first report to live, on the terminal's own clock.
# TYPE posagent_install_duration_seconds histogram
posagent_install_duration_seconds_bucket{le="15"} 0
posagent_install_duration_seconds_bucket{le="30"} 0
posagent_install_duration_seconds_bucket{le="60"} 0
posagent_install_duration_seconds_bucket{le="120"} 0
posagent_install_duration_seconds_bucket{le="180"} 0
posagent_install_duration_seconds_bucket{le="300"} 0
posagent_install_duration_seconds_bucket{le="450"} 0
posagent_install_duration_seconds_bucket{le="600"} 1
posagent_install_duration_seconds_bucket{le="900"} 1
posagent_install_duration_seconds_bucket{le="1200"} 1
posagent_install_duration_seconds_bucket{le="1800"} 1
posagent_install_duration_seconds_bucket{le="2700"} 1
posagent_install_duration_seconds_bucket{le="3600"} 1
posagent_install_duration_seconds_bucket{le="+Inf"} 1
posagent_install_duration_seconds_sum 600
posagent_install_duration_seconds_count 1
` + failuresText(map[string]int{"E_SIGNON": 1, Other: 1})
	if err := testutil.CollectAndCompare(m, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
	if lint, err := testutil.CollectAndLint(m); err != nil || len(lint) > 0 {
		t.Errorf("lint: %v %v", lint, err)
	}
	// The gauges are the table's rows, read at scrape time: a row that
	// changes changes them with no counting of ours in between.
	apply(m, status(c, 10, st(provisioning.StepLive, provisioning.StateLive, 55*time.Minute)))
	if err := testutil.CollectAndCompare(m, strings.NewReader(`
# HELP posagent_terminals Terminals by the step and state of their newest status.
# TYPE posagent_terminals gauge
posagent_terminals{state="failed",step="other"} 1
posagent_terminals{state="failed",step="sign-on"} 1
posagent_terminals{state="live",step="live"} 2
`), "posagent_terminals"); err != nil {
		t.Error(err)
	}
}

// TestMetricsStaleAndRedeliveredCountNothing: a redelivered event, the status
// twin of an event, an older status and a late Will change no counter; only a
// new event does.
func TestMetricsStaleAndRedeliveredCountNothing(t *testing.T) {
	m := NewMetrics(func() time.Time { return t0 })
	fail := failed(provisioning.StepSignOn, "E_SIGNON", 0)
	apply(m, presence(tid, mqtt.Online, 5), event(tid, 7, fail))
	counts := func() (events, failures float64) {
		return testutil.ToFloat64(m.folded), testutil.ToFloat64(m.failures.WithLabelValues("E_SIGNON"))
	}
	if e, f := counts(); e != 1 || f != 1 {
		t.Fatalf("after one failed event: events %v, E_SIGNON %v; want 1, 1", e, f)
	}
	for _, x := range []msg{
		event(tid, 7, fail),  // QoS 1 redelivery
		status(tid, 7, fail), // the same report, retained
		event(tid, 6, fail),  // older than one counted
		status(tid, 3, fail),
	} {
		if stale := m.Apply(x.topic, x.payload); stale {
			t.Errorf("%s: stale = true; only a presence can be", x.topic)
		}
	}
	late := presence(tid, mqtt.Offline, 4)
	if !m.Apply(late.topic, late.payload) {
		t.Error("the late Will of session 4 was not reported stale")
	}
	if e, f := counts(); e != 1 || f != 1 {
		t.Errorf("after duplicates: events %v, E_SIGNON %v; want 1, 1", e, f)
	}
	apply(m, event(tid, 8, fail))
	if e, f := counts(); e != 2 || f != 2 {
		t.Errorf("after a second failure: events %v, E_SIGNON %v; want 2, 2", e, f)
	}
	// A terminal that lost its state directory starts again at seq 1: new
	// events, counted.
	apply(m, event(tid, 1, st(provisioning.StepSelftest, provisioning.StateRunning, 0)))
	if e, _ := counts(); e != 3 {
		t.Errorf("after seq 1 again: events %v, want 3", e)
	}
}

// histogram is posagent_install_duration_seconds' count and sum.
func histogram(t *testing.T, m *Metrics) (count int, sum float64) {
	t.Helper()
	mfs, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "posagent_install_duration_seconds" {
			h := mf.GetMetric()[0].GetHistogram()
			return int(h.GetSampleCount()), h.GetSampleSum()
		}
	}
	t.Fatal("no posagent_install_duration_seconds")
	return 0, 0
}

func oldest(m *Metrics) float64 {
	mfs, _ := m.Registry().Gather()
	for _, mf := range mfs {
		if mf.GetName() == "posagent_oldest_running_install_seconds" {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	return -1
}

// TestMetricsInstallDuration: one observation per install, whichever of its
// live reports arrives first and however often; none for an install whose
// start was not seen or was stamped by a floor clock.
func TestMetricsInstallDuration(t *testing.T) {
	selftest := st(provisioning.StepSelftest, provisioning.StateRunning, 0)
	live := st(provisioning.StepLive, provisioning.StateLive, 20*time.Minute)
	onFloor := selftest
	onFloor.Clock = provisioning.ClockBuild
	for _, c := range []struct {
		name      string
		msgs      []msg
		count     int
		sum       float64
		oldestSec float64 // at t0 + 30 min
	}{
		{"live as event, status, redelivery and on request", []msg{
			event(tid, 1, selftest), status(tid, 1, selftest),
			status(tid, 2, live), event(tid, 2, live), event(tid, 2, live),
			event(tid, 3, st(provisioning.StepLive, provisioning.StateLive, 25*time.Minute)),
		}, 1, 1200, 0},
		{"status first after an outage, then the events replayed", []msg{
			status(tid, 4, live),
			event(tid, 1, selftest),
			event(tid, 2, st(provisioning.StepNetwork, provisioning.StateDone, time.Minute)),
			event(tid, 3, st(provisioning.StepSignOn, provisioning.StateDone, 2*time.Minute)),
			event(tid, 4, live),
		}, 1, 1200, 0},
		{"start not seen: no duration, the age from the first report seen", []msg{
			status(tid, 5, st(provisioning.StepSignOn, provisioning.StateRunning, 10*time.Minute)),
			event(tid, 6, st(provisioning.StepSignOn, provisioning.StateDone, 12*time.Minute)),
		}, 0, 0, 1200},
		{"start not seen, then live", []msg{
			status(tid, 5, st(provisioning.StepSignOn, provisioning.StateRunning, 10*time.Minute)),
			event(tid, 9, live),
		}, 0, 0, 0},
		{"started on a floor clock", []msg{
			event(tid, 1, onFloor), event(tid, 2, live),
		}, 0, 0, 0},
		{"installed twice (state directory lost)", []msg{
			event(tid, 1, selftest), event(tid, 2, live),
			event(tid, 1, st(provisioning.StepSelftest, provisioning.StateRunning, 21*time.Minute)),
			event(tid, 2, st(provisioning.StepLive, provisioning.StateLive, 24*time.Minute)),
		}, 2, 1200 + 180, 0},
		{"a redelivered first report after live is no new install", []msg{
			event(tid, 1, selftest), event(tid, 2, live), event(tid, 2, live), status(tid, 1, selftest),
		}, 1, 1200, 0},
		{"work after live (a demanded sign-on) is no install", []msg{
			event(tid, 1, selftest), event(tid, 2, live),
			event(tid, 3, st(provisioning.StepSignOn, provisioning.StateRunning, 22*time.Minute)),
		}, 1, 1200, 0},
		{"reset ends the install", []msg{
			event(tid, 1, selftest),
			event(tid, 2, st(provisioning.StepSignOn, provisioning.StateReset, 5*time.Minute)),
		}, 0, 0, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := NewMetrics(func() time.Time { return t0.Add(30 * time.Minute) })
			apply(m, c.msgs...)
			if n, sum := histogram(t, m); n != c.count || sum != c.sum {
				t.Errorf("observed %d installs, %v s in all; want %d, %v s", n, sum, c.count, c.sum)
			}
			if got := oldest(m); got != c.oldestSec {
				t.Errorf("oldest running install %v s, want %v", got, c.oldestSec)
			}
		})
	}
}

// TestMetricsCodesAreProvisionings: the codes with a series of their own are
// the failure catalogue's and the ones FailureFor makes for a step's unnamed
// error; anything else is "other".
func TestMetricsCodesAreProvisionings(t *testing.T) {
	for _, code := range provisioning.Codes() {
		if label(knownCodes, code) != code {
			t.Errorf("catalogue code %s is %q", code, label(knownCodes, code))
		}
	}
	for _, s := range provisioning.Procedure() {
		code := provisioning.FailureFor(s.Step, errors.New("unnamed")).Code
		if label(knownCodes, code) != code {
			t.Errorf("%s's unnamed failure %s is %q", s.Step, code, label(knownCodes, code))
		}
		if label(knownSteps, string(s.Step)) != string(s.Step) {
			t.Errorf("step %s is %q", s.Step, label(knownSteps, string(s.Step)))
		}
	}
	for _, v := range []string{"E_TICKET_EXPIRED", "e_signon", "", strings.Repeat("E", 500)} {
		if got := label(knownCodes, v); got != Other {
			t.Errorf("code %q is %q, want %q", v, got, Other)
		}
	}
}

// TestWatchServesMetrics: Watch folds into the Metrics it is given, and
// /metrics serves them over HTTP while it runs (scrapes racing the folding).
func TestWatchServesMetrics(t *testing.T) {
	b := startBroker(t)
	r := terminal(t, b.URL(), tid)
	m := NewMetrics(nil)
	srv, err := ServeMetrics("127.0.0.1:0", m)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	out := newLines()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- Watch(ctx, Options{URL: b.URL(), Out: out, Fleet: m}) }()
	out.waitFor(t, tid+" online") // retained: the subscription is in place

	r.Report(context.Background(), failed(provisioning.StepSignOn, "E_SIGNON", 0))
	flush(t, r)
	want := []string{
		`posagent_failures_total{code="E_SIGNON"} 1`,
		`posagent_terminals{state="failed",step="sign-on"} 1`,
		`posagent_terminals_presence{presence="online"} 1`,
		"go_goroutines ", "process_resident_memory_bytes ",
	}
	var body string
	deadline := time.Now().Add(wait)
	for {
		resp, err := http.Get("http://" + srv.Addr() + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		body = string(b)
		missing := ""
		for _, w := range want {
			if !strings.Contains(body, w) {
				missing = w
				break
			}
		}
		if missing == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/metrics lacks %q after %v:\n%s", missing, wait, body)
		}
		time.Sleep(10 * time.Millisecond) // polling a condition, not waiting a time out
	}
	if strings.Contains(body, tid) {
		t.Errorf("/metrics names a TID:\n%s", body)
	}
	if resp, err := http.Post("http://"+srv.Addr()+"/metrics", "text/plain", nil); err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("POST /metrics: %s, want 405", resp.Status)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Watch = %v", err)
	}
	if err := srv.Close(); err != nil {
		t.Errorf("Close = %v", err)
	}
}

// benchFleet is a Metrics holding n terminals, each mid-install or live.
func benchFleet(n int) *Metrics {
	m := NewMetrics(func() time.Time { return t0.Add(time.Hour) })
	for i := range n {
		tid := fmt.Sprintf("%08d", i)
		apply(m, presence(tid, mqtt.Online, 1), event(tid, 1, st(provisioning.StepSelftest, provisioning.StateRunning, 0)))
		if i%2 == 0 {
			apply(m, event(tid, 2, st(provisioning.StepLive, provisioning.StateLive, 20*time.Minute)))
		}
	}
	return m
}

// BenchmarkMetricsScrape: one scrape (Gather: the gauges counted off every
// row, plus the Go and process collectors) of a 20,000-terminal fleet, which
// holds Watch's folding off for as long.
func BenchmarkMetricsScrape(b *testing.B) {
	m := benchFleet(20000)
	for b.Loop() {
		if _, err := m.Registry().Gather(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkMetricsApply: folding one event with its counting, against
// Fleet.Apply alone in BenchmarkFleetApply.
func BenchmarkMetricsApply(b *testing.B) {
	m := benchFleet(1000)
	x := event("00000001", 3, st(provisioning.StepSignOn, provisioning.StateDone, time.Minute))
	var seq uint64 = 3
	for b.Loop() {
		seq++
		p := []byte(strings.Replace(string(x.payload), `"seq":3`, fmt.Sprintf(`"seq":%d`, seq), 1))
		m.Apply(x.topic, p)
	}
}

func BenchmarkFleetApply(b *testing.B) {
	f := NewFleet()
	x := event("00000001", 3, st(provisioning.StepSignOn, provisioning.StateDone, time.Minute))
	var seq uint64 = 3
	for b.Loop() {
		seq++
		p := []byte(strings.Replace(string(x.payload), `"seq":3`, fmt.Sprintf(`"seq":%d`, seq), 1))
		f.Apply(x.topic, p)
	}
}
