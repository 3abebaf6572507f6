//go:build !firmware

package monitor

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/posagent/posagent/agent/central/mqtt"
	"github.com/posagent/posagent/agent/central/report"
	"github.com/posagent/posagent/provisioning"
)

// The metrics are Prometheus', for the dashboards and alerts monitoring teams
// already run (posctl watch --metrics). A firmware build has none of this: the
// terminal has no one to scrape it, and client_golang would only add weight.

// Other is the label value of a step, state, error code or presence outside
// the schema's closed sets: a terminal (or anyone with access to the broker)
// can publish any string, and each distinct label value is a series
// Prometheus keeps.
const Other = "other"

// PresenceUnknown is the presence label of a terminal that reported a status
// but no presence (RabbitMQ, for one, sends retained states only to exact-topic
// subscribers, never to pos/v1/+/state).
const PresenceUnknown = "unknown"

// PresenceLabels are the presence values posagent_terminals_presence always
// exposes (0 when no terminal has them), so a dashboard's series never vanish.
var PresenceLabels = []string{mqtt.Online, mqtt.Offline, Silent, PresenceUnknown}

// InstallBuckets are posagent_install_duration_seconds' upper bounds: an
// install takes from half a minute (everything at hand, a quick host) to an
// hour (a card to fetch, a host that keeps timing out).
var InstallBuckets = []float64{15, 30, 60, 120, 180, 300, 450, 600, 900, 1200, 1800, 2700, 3600}

var (
	knownSteps  = map[string]bool{}
	knownStates = map[string]bool{}
	knownCodes  = map[string]bool{}
	// codes is knownCodes in a stable order, for the zero series.
	codes []string
)

func init() {
	for _, s := range provisioning.Procedure() {
		knownSteps[string(s.Step)] = true
		// A step's error no step named becomes E_<STEP> (provisioning.FailureFor).
		knownCodes["E_"+strings.ToUpper(strings.ReplaceAll(string(s.Step), "-", "_"))] = true
	}
	for _, s := range []string{provisioning.StateRunning, provisioning.StateDone, provisioning.StateFailed, provisioning.StateLive, provisioning.StateReset} {
		knownStates[s] = true
	}
	for _, c := range provisioning.Codes() {
		knownCodes[c] = true
	}
	for c := range knownCodes {
		codes = append(codes, c)
	}
	sort.Strings(codes)
}

func label(known map[string]bool, v string) string {
	if known[v] {
		return v
	}
	return Other
}

// Metrics is a Fleet with Prometheus metrics: it folds messages as a Fleet
// does, counts the events among them, and is a prometheus.Collector whose
// gauges are read off the fleet's rows when Prometheus scrapes, so they can
// never drift from the table. Watch calls Apply and Table from its goroutine;
// Collect runs in the HTTP server's, and the mutex is between them.
//
// No metric has a TID label: steps, states and error codes are closed sets
// (anything else is "other"), so the number of series does not grow with the
// fleet.
type Metrics struct {
	mu    sync.Mutex
	fleet *Fleet
	now   func() time.Time
	reg   *prometheus.Registry

	// events is the highest event seq counted per TID: events reach a
	// watcher in seq order (docs/mqtt.md, Delivery), so one at or below it is
	// a QoS 1 redelivery and counts nothing. It is kept apart from the rows'
	// seq since a status (the newest report, sent first after an outage) runs
	// ahead of the events it replays.
	events   map[string]uint64
	installs map[string]*installState

	failures  *prometheus.CounterVec
	folded    prometheus.Counter
	durations prometheus.Histogram

	terminals, presence, oldest *prometheus.Desc
}

// installState is what Metrics knows of one terminal's install.
type installState struct {
	start time.Time // the terminal's stamp of its first report seen
	// exact: start is the install's first report (the first step running, boot 1,
	// attempt 1), stamped by a clock that will not jump, so the time to live
	// is the install's duration; else start only bounds its age.
	exact bool
	live  bool // it went live: done, not running
}

// NewMetrics returns a Metrics with an empty fleet, and its registry holding
// it and the Go runtime's and the process's collectors. now is the clock for
// the oldest running install's age; nil means time.Now.
func NewMetrics(now func() time.Time) *Metrics {
	if now == nil {
		now = time.Now
	}
	m := &Metrics{
		fleet:    NewFleetClock(now),
		now:      now,
		events:   map[string]uint64{},
		installs: map[string]*installState{},
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "posagent_failures_total",
			Help: "Failed steps reported, by error code (once per event; unknown codes are \"other\").",
		}, []string{"code"}),
		folded: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "posagent_events_total",
			Help: "Events (reports on the events topic) folded, redeliveries left out.",
		}),
		durations: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "posagent_install_duration_seconds",
			Help:    "Installs seen from their first report to live, on the terminal's own clock.",
			Buckets: InstallBuckets,
		}),
		terminals: prometheus.NewDesc("posagent_terminals",
			"Terminals by the step and state of their newest status.", []string{"step", "state"}, nil),
		presence: prometheus.NewDesc("posagent_terminals_presence",
			"Terminals by presence (the session rule applied: a late Will does not count).", []string{"presence"}, nil),
		oldest: prometheus.NewDesc("posagent_oldest_running_install_seconds",
			"Age of the oldest install not yet live (0 when none), since its first report seen.", nil, nil),
	}
	// Every known code at 0 from the start: the first failure of a code must
	// be an increase from 0, or increase() and rate() miss it.
	for _, c := range codes {
		m.failures.WithLabelValues(c)
	}
	m.failures.WithLabelValues(Other)
	m.reg = prometheus.NewRegistry()
	m.reg.MustRegister(m, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Registry is the registry NewMetrics made: these metrics and the Go and
// process collectors, nothing registered globally.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the registry in Prometheus' exposition formats.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// Apply folds one message into the fleet (Fleet.Apply, whose stale it
// returns) and counts it.
func (m *Metrics) Apply(topic string, payload []byte) (stale bool) {
	return m.apply(topic, payload, false)
}

// ApplyRetained is Apply for a retained message (Fleet.ApplyRetained).
func (m *Metrics) ApplyRetained(topic string, payload []byte) (stale bool) {
	return m.apply(topic, payload, true)
}

func (m *Metrics) apply(topic string, payload []byte, retained bool) (stale bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	parts := strings.Split(topic, "/")
	var before uint64
	if len(parts) == 4 {
		if r, ok := m.fleet.rows[parts[2]]; ok {
			before = r.Seq
		}
	}
	stale = m.fleet.apply(topic, payload, retained)
	if len(parts) != 4 || parts[0]+"/"+parts[1]+"/" != mqtt.TopicPrefix {
		return stale
	}
	tid, kind := parts[2], parts[3]
	if kind != "events" && kind != "status" {
		return stale
	}
	var msg report.Message
	if json.Unmarshal(payload, &msg) != nil {
		return stale
	}
	s := msg.Status
	event := false
	if kind == "events" {
		last := m.events[tid]
		switch {
		case msg.Seq == 0 || msg.Seq > last:
			event = true
		case msg.Seq == 1 && last > 1:
			// seq starts again at 1 only when the terminal lost its state
			// directory: a new run of events, not a redelivery (that is of
			// the event in flight, never of one acknowledged long ago).
			event = true
		}
		if !event {
			return stale
		}
		if msg.Seq != 0 {
			m.events[tid] = msg.Seq
		}
		m.folded.Inc()
		if s.State == provisioning.StateFailed {
			code := Other
			if s.Error != nil {
				code = label(knownCodes, s.Error.Code)
			}
			m.failures.WithLabelValues(code).Inc()
		}
	} else if msg.Seq != 0 && msg.Seq < before {
		return stale // an older status than the row's: Fleet ignored it too
	}
	m.track(tid, s, event)
	return stale
}

// track follows tid's install through one report; event says it is a new
// event (not a status, not a redelivery).
func (m *Metrics) track(tid string, s provisioning.Status, event bool) {
	in := m.installs[tid]
	first := len(provisioning.Steps) > 0 && s.Step == provisioning.Steps[0] && s.State == provisioning.StateRunning &&
		s.Boot <= 1 && s.Attempt <= 1
	// A floor clock is set from the host at sign-on: stamps before and after
	// that are not on one time line.
	steady := s.Clock != provisioning.ClockBuild && s.Clock != provisioning.ClockPersisted
	at := s.Time
	if at.IsZero() {
		at = m.now()
	}
	switch s.State {
	case provisioning.StateReset:
		// The last report under this identity: its install is over.
		delete(m.installs, tid)
	case provisioning.StateLive:
		if in == nil {
			m.installs[tid] = &installState{live: true}
			return
		}
		// The first live report observes, status or event (whichever the
		// broker delivers first); the other, and any later one, find it live.
		if !in.live && in.exact {
			if d := at.Sub(in.start); d >= 0 {
				m.durations.Observe(d.Seconds())
			}
		}
		in.live = true
	default:
		switch {
		case in == nil:
			m.installs[tid] = &installState{start: at, exact: first && steady}
		case in.live:
			// Work after live (a sign-on a host's answer asked for) is not
			// an install; a new first report is (the same TID installed
			// again), but only as a new event, not a redelivered one.
			if first && event {
				*in = installState{start: at, exact: steady}
			}
		case !in.exact && first:
			// The install's first report, replayed after the status that
			// overtook it (status first after an outage).
			in.start, in.exact = at, steady
		}
	}
}

// Silenced is Fleet.Silenced, under the scrapes' lock.
func (m *Metrics) Silenced(now time.Time) []Row {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.fleet.Silenced(now)
}

// Table writes the fleet table as Fleet.Table does.
func (m *Metrics) Table(w io.Writer, now time.Time) error {
	var buf bytes.Buffer
	m.mu.Lock()
	err := m.fleet.Table(&buf, now)
	m.mu.Unlock()
	if err != nil {
		return err
	}
	// Written outside the lock: a slow terminal must not stall a scrape.
	if _, err := w.Write(buf.Bytes()); err != nil {
		return fmt.Errorf("monitor: write: %w", err)
	}
	return nil
}

// Describe is prometheus.Collector's.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	ch <- m.terminals
	ch <- m.presence
	ch <- m.oldest
	m.failures.Describe(ch)
	m.folded.Describe(ch)
	m.durations.Describe(ch)
}

// Collect is prometheus.Collector's: the gauges come from the fleet's rows as
// they are now.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	m.mu.Lock()
	defer m.mu.Unlock()
	type stepState struct{ step, state string }
	byStep := map[stepState]int{}
	byPresence := map[string]int{}
	for _, p := range PresenceLabels {
		byPresence[p] = 0
	}
	// Rows, the table's own view, though it sorts: 12-19 ms a scrape at 20,000
	// terminals on 2 shared cores (BenchmarkMetricsScrape), a third of that
	// reading the map instead.
	for _, r := range m.fleet.Rows() {
		if r.State != "" {
			byStep[stepState{label(knownSteps, r.Step), label(knownStates, r.State)}]++
		}
		p := r.PresenceAt(m.now())
		if p == "" {
			p = PresenceUnknown
		}
		if _, ok := byPresence[p]; !ok {
			p = Other
		}
		byPresence[p]++
	}
	for k, n := range byStep {
		ch <- prometheus.MustNewConstMetric(m.terminals, prometheus.GaugeValue, float64(n), k.step, k.state)
	}
	for p, n := range byPresence {
		ch <- prometheus.MustNewConstMetric(m.presence, prometheus.GaugeValue, float64(n), p)
	}
	var oldest time.Duration
	now := m.now()
	for _, in := range m.installs {
		if !in.live {
			oldest = max(oldest, now.Sub(in.start))
		}
	}
	ch <- prometheus.MustNewConstMetric(m.oldest, prometheus.GaugeValue, oldest.Seconds())
	m.failures.Collect(ch)
	m.folded.Collect(ch)
	m.durations.Collect(ch)
}

// MetricsServer serves a Metrics' GET /metrics over HTTP.
type MetricsServer struct {
	ln    net.Listener
	srv   *http.Server
	done  chan error
	once  sync.Once
	close error
}

// ServeMetrics listens on addr (host:port; port 0 picks one) and serves m at
// /metrics until Close. The listen happens before it returns, so a busy or
// wrong address is its error, not a later surprise.
func ServeMetrics(addr string, m *Metrics) (*MetricsServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("monitor: metrics: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", m.Handler())
	s := &MetricsServer{
		ln:   ln,
		srv:  &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second},
		done: make(chan error, 1),
	}
	go func() { s.done <- s.srv.Serve(ln) }()
	return s, nil
}

// Addr is the address the server listens on.
func (s *MetricsServer) Addr() string { return s.ln.Addr().String() }

// Close stops the server and waits for it; calling it again returns the
// first call's result.
func (s *MetricsServer) Close() error {
	s.once.Do(func() {
		err := s.srv.Close()
		if serr := <-s.done; !errors.Is(serr, http.ErrServerClosed) && err == nil {
			err = serr
		}
		if err != nil {
			s.close = fmt.Errorf("monitor: metrics: %w", err)
		}
	})
	return s.close
}
