package report

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/posagent/posagent/agent/central/broker"
	"github.com/posagent/posagent/agent/central/mqtt"
	"github.com/posagent/posagent/agent/central/mqtt/mqtttest"
	"github.com/posagent/posagent/agent/central/report/deliverytest"
	"github.com/posagent/posagent/agent/testkit/bench"
	"github.com/posagent/posagent/provisioning"
	"github.com/posagent/posagent/provisioning/pan"
)

const (
	tid     = "10000001"
	mid     = "898310048160001" // 15 digits: must survive masking
	serial  = "SN-TEST-1"
	testPAN = "6222021234567890128"
	wait    = 10 * time.Second // generous: CI machines stall
)

// fullPAN matches a run of digits long enough to be a whole card number but
// longer than a MID (15), which the payloads legitimately carry.
var fullPAN = regexp.MustCompile(`[0-9]{16,}`)

// quietLogger is silent unless REPORT_DEBUG is set.
func quietLogger() *slog.Logger { return mqtttest.Logger("REPORT_DEBUG") }

func startBroker(t *testing.T, addr string) *broker.Broker {
	t.Helper()
	return mqtttest.StartMochi(t, addr, quietLogger())
}

// testOptions are a test reporter's options and its session's, together.
type testOptions struct {
	mqtt.Options
	Queue     Queue
	QueueSize int
}

// terminal is a reporter on its own session, as the agent runs them: Close
// closes the reporter (which flushes) and then the session (which publishes
// the retained shutdown state).
type terminal struct {
	*Reporter
	link *mqtt.Client
}

func (r *terminal) Close(ctx context.Context) error {
	return errors.Join(r.Reporter.Close(ctx), r.link.Close(ctx))
}

// newTerminal makes a session and a reporter on it and starts both.
func newTerminal(o testOptions) (*terminal, error) {
	link, err := mqtt.New(o.Options)
	if err != nil {
		return nil, err
	}
	r, err := New(Options{Link: link, Queue: o.Queue, QueueSize: o.QueueSize, Logger: o.Logger})
	if err != nil {
		return nil, err
	}
	if err := link.Start(context.Background()); err != nil {
		return nil, err
	}
	if err := r.Start(context.Background()); err != nil {
		return nil, err
	}
	return &terminal{Reporter: r, link: link}, nil
}

func newReporter(t *testing.T, url string, mod func(*testOptions)) *terminal {
	t.Helper()
	o := testOptions{Options: mqtt.Options{URL: url, TID: tid, MID: mid, Serial: serial, Logger: quietLogger(), RetryInterval: 50 * time.Millisecond}}
	if mod != nil {
		mod(&o)
	}
	r, err := newTerminal(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = r.Close(ctx)
	})
	return r
}

// New needs the session it reports on.
func TestNewNeedsLink(t *testing.T) {
	if _, err := New(Options{}); err == nil {
		t.Error("New without a Link: no error")
	}
}

// subscriber is central monitoring (mqtttest.Subscriber) as the reporter's
// tests read it: collectEvents keeps its log of events on it.
type subscriber struct {
	*mqtttest.Subscriber
	// tid is the terminal whose events collectEvents reads.
	tid string
	// events is what collectEvents took so far, deduplicated on seq.
	events *deliverytest.Log
}

func subscribe(t *testing.T, url string, filters ...string) *subscriber {
	t.Helper()
	return &subscriber{Subscriber: mqtttest.Subscribe(t, url, filters...), tid: tid}
}

// noFullPAN fails if any payload received holds a card-number-length digit run.
func (s *subscriber) noFullPAN(t *testing.T) {
	t.Helper()
	for _, p := range s.All() {
		if fullPAN.Match(p) {
			t.Errorf("payload carries a full card number: %s", p)
		}
	}
}

func message(t *testing.T, m mqtttest.Msg) Message {
	t.Helper()
	var s Message
	if err := json.Unmarshal(m.Payload, &s); err != nil {
		t.Fatalf("status payload %q: %v", m.Payload, err)
	}
	return s
}

// statuses is an install's worth of reports, with masked card numbers as the
// flow sends them.
func statuses(n int) []provisioning.Status {
	masked := pan.MustParse(testPAN).Masked()
	out := make([]provisioning.Status, n)
	for i := range out {
		out[i] = provisioning.Status{
			Step: provisioning.Steps[i%len(provisioning.Steps)], State: provisioning.StateDone,
			Attempt: 1, Boot: 1, Card: masked, Message: fmt.Sprintf("report %d", i+1),
			Sale: &provisioning.TxnRecord{STAN: i + 1, RC: "00", RRN: "000000000001", AuthCode: "123456", Masked: masked, Amount: 1},
			Time: time.Date(2025, 1, 2, 10, 0, i, 0, time.UTC),
		}
	}
	return out
}

// collectEvents reads events until the subscriber holds every seq from first
// to last and returns those, one per seq, in order. It checks them against
// the delivery contract (docs/mqtt.md, deliverytest): at least once, so a
// duplicate is dropped as a monitor drops it; a gap, a reordering or a
// missing tail fails. The subscriber's log goes on across calls, as a
// monitor's does across an outage: first must be the seq after the last one
// collected, and an event collected before may come again.
func collectEvents(t *testing.T, s *subscriber, first, last uint64) []Message {
	t.Helper()
	if s.events == nil {
		s.events = deliverytest.New(first)
	} else if next := s.events.Last() + 1; first != next {
		t.Fatalf("collectEvents from %d: the subscriber has taken events up to %d", first, next-1)
	}
	var got []Message
	for !s.events.Complete(last) {
		m := s.Until(t, fmt.Sprintf("event %d of %d..%d (arrived: %v)", s.events.Last()+1, first, last, s.events.Arrived()),
			func(m mqtttest.Msg) bool { return m.Topic == mqtt.EventsTopic(s.tid) })
		if m.Retained {
			t.Errorf("event retained")
		}
		e := message(t, m)
		if s.events.Add(e.Seq) {
			got = append(got, e)
		}
		if s.events.Failed() {
			break
		}
	}
	if p := s.events.Problems(last); len(p) > 0 {
		t.Fatalf("events %d..%d break the delivery contract: %s (arrived: %v)", first, last, strings.Join(p, "; "), s.events.Arrived())
	}
	return got
}

// collectEventsWithin is collectEvents allowing d for each event, for
// deliveries that wait on a reconnect backoff.
func collectEventsWithin(t *testing.T, s *subscriber, first, last uint64, d time.Duration) []Message {
	t.Helper()
	s.Patience = d
	defer func() { s.Patience = 0 }()
	return collectEvents(t, s, first, last)
}

func TestPublishesInOrderAndRetainsLatest(t *testing.T) {
	b := startBroker(t, "127.0.0.1:0")
	s := subscribe(t, b.URL(), terminalTopics...)
	r := newReporter(t, b.URL(), nil)

	const n = 50
	in := statuses(n)
	for _, st := range in {
		r.Report(context.Background(), st)
	}
	got := collectEvents(t, s, 1, n)
	for i, m := range got {
		if m.Step != in[i].Step || m.TID != tid || m.MID != mid || m.Serial != serial {
			t.Errorf("event %d = %+v, want step %s with identity filled in", i, m.Status, in[i].Step)
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	// A monitor that connects now sees the current state only.
	late := subscribe(t, b.URL(), mqtt.StatusTopic(tid), mqtt.StateTopic(tid))
	st := late.Until(t, "retained status", mqtttest.RetainedOn(mqtt.StatusTopic(tid)))
	if !st.Retained {
		t.Error("status not retained")
	}
	last := message(t, st)
	want := in[n-1]
	want.TID, want.MID, want.Serial = tid, mid, serial
	if last.Seq != n || !equalJSON(t, last.Status, want) {
		t.Errorf("retained status = seq %d %+v, want seq %d %+v", last.Seq, last.Status, n, want)
	}
	on := late.Until(t, "retained online", mqtttest.RetainedOn(mqtt.StateTopic(tid)))
	if p := mqtttest.Presence(t, on); !on.Retained || p.State != mqtt.Online || p.TID != tid || p.Serial != serial || p.MID != mid || p.Time.IsZero() {
		t.Errorf("retained state = %+v (retained %v), want online with identity", p, on.Retained)
	}
	s.noFullPAN(t)
	late.noFullPAN(t)
}

func equalJSON(t *testing.T, a, b any) bool {
	t.Helper()
	ja, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	jb, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	return string(ja) == string(jb)
}

// reportAll calls Report for each status in a goroutine and fails if the calls
// do not come back while nothing can be sent: Report must not wait for the
// network.
func reportAll(t *testing.T, r *terminal, in []provisioning.Status) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for _, st := range in {
			r.Report(context.Background(), st)
		}
	}()
	select {
	case <-done:
	case <-time.After(wait):
		t.Fatal("Report blocked while the broker was down")
	}
}

// downThenUp starts a reporter whose broker is out of reach (behind a shut
// gate) and returns once its first attempt has failed. The test opens the
// gate once its subscriber is in place: events are not retained, so the
// subscriber must be there first.
func downThenUp(t *testing.T, queue int, n int) (*terminal, *broker.Broker, *mqtttest.Gate) {
	t.Helper()
	b := startBroker(t, "127.0.0.1:0")
	g := mqtttest.StartGate(t, b.Addr())
	g.Set(false)
	h := mqtttest.NewRefusedLog()
	r := newReporter(t, g.URL("tcp"), func(o *testOptions) {
		o.QueueSize = queue
		o.Logger = slog.New(h)
	})
	reportAll(t, r, statuses(n))
	select {
	case <-h.Refused():
	case <-time.After(wait):
		t.Fatal("no failed connection attempt logged")
	}
	return r, b, g
}

func TestBrokerDownAtStart(t *testing.T) {
	const n = 8
	r, b, g := downThenUp(t, 0, n)

	// Nothing can be acknowledged yet.
	short, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	err := r.Flush(short)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Flush with the broker down = %v, want deadline exceeded", err)
	}

	s := subscribe(t, b.URL(), terminalTopics...)
	g.Set(true)
	collectEvents(t, s, 1, n)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	s.noFullPAN(t)
}

func TestQueueFullDropsOldestEventsKeepsLatestStatus(t *testing.T) {
	const n = 10
	_, b, g := downThenUp(t, 3, n)

	s := subscribe(t, b.URL(), terminalTopics...)
	g.Set(true)
	// The newest status goes first (current state before history), then the
	// events that fitted in the queue.
	st := s.Until(t, "status", func(m mqtttest.Msg) bool { return m.Topic == mqtt.StatusTopic(tid) })
	if m := message(t, st); m.Seq != n {
		t.Errorf("status seq = %d, want the latest, %d", m.Seq, n)
	}
	collectEvents(t, s, n-2, n)
}

func TestCloseLeavesRetainedOffline(t *testing.T) {
	b := startBroker(t, "127.0.0.1:0")
	s := subscribe(t, b.URL(), mqtt.StateTopic(tid))
	r := newReporter(t, b.URL(), nil)
	s.Until(t, "online", mqtttest.IsState(tid, mqtt.Online))
	r.Report(context.Background(), statuses(1)[0])

	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := r.Close(ctx); err != nil {
		t.Fatal(err)
	}
	off := s.Until(t, "offline", mqtttest.IsState(tid, mqtt.Offline))
	if p := mqtttest.Presence(t, off); p.Reason != mqtt.ReasonShutdown {
		t.Errorf("offline reason = %q, want %q", p.Reason, mqtt.ReasonShutdown)
	}
	late := subscribe(t, b.URL(), mqtt.StateTopic(tid), mqtt.StatusTopic(tid))
	m := late.Until(t, "retained state", mqtttest.RetainedOn(mqtt.StateTopic(tid)))
	if p := mqtttest.Presence(t, m); !m.Retained || p.State != mqtt.Offline || p.Reason != mqtt.ReasonShutdown {
		t.Errorf("retained state after Close = %+v (retained %v), want offline/shutdown", p, m.Retained)
	}
	// Close flushed first: the status made it.
	if m := message(t, late.Until(t, "retained status", mqtttest.RetainedOn(mqtt.StatusTopic(tid)))); m.Seq != 1 {
		t.Errorf("retained status seq = %d, want 1", m.Seq)
	}

	// A closed reporter ignores reports and cannot be started again.
	r.Report(context.Background(), statuses(1)[0])
	if err := r.Start(context.Background()); !errors.Is(err, ErrClosed) {
		t.Errorf("Start after Close = %v, want ErrClosed", err)
	}
	if err := r.Close(ctx); err != nil {
		t.Errorf("second Close = %v", err)
	}
}

func TestReconnectsAndRepublishesBirth(t *testing.T) {
	b := startBroker(t, "127.0.0.1:0")
	s := subscribe(t, b.URL(), terminalTopics...)
	r := newReporter(t, b.URL(), nil)
	s.Until(t, "online", mqtttest.IsState(tid, mqtt.Online))

	// Cut the reporter's connection from the broker side: paho reconnects and
	// the birth puts "online" back. Whether the Will goes out first is a race
	// inside mochi (a reconnect that wins it is a session takeover, which sends
	// no Will), so it is not asserted here; TestWillOnConnectionLoss covers the
	// Will with a connection that stays down.
	if !b.DropClient("posagent-" + tid) {
		t.Fatal("reporter not connected")
	}
	s.Until(t, "online again", mqtttest.IsState(tid, mqtt.Online))
	in := statuses(3)
	for _, st := range in {
		r.Report(context.Background(), st)
	}
	collectEvents(t, s, 1, 3)
}

func TestReportMasksCardNumbers(t *testing.T) {
	b := startBroker(t, "127.0.0.1:0")
	s := subscribe(t, b.URL(), terminalTopics...)
	r := newReporter(t, b.URL(), nil)

	// A bug upstream hands over the full number in every place it could.
	st := statuses(1)[0]
	st.Card = testPAN
	st.Sale.Masked = testPAN
	st.Void = &provisioning.TxnRecord{Masked: testPAN}
	st.Message = "card " + testPAN + " merchant " + mid
	st.Error = &provisioning.Failure{Code: "E_X", Message: "declined " + testPAN}
	r.Report(context.Background(), st)

	m := collectEvents(t, s, 1, 1)[0]
	const want = "622202*********0128"
	if m.Card != want || m.Sale.Masked != want || m.Void.Masked != want {
		t.Errorf("card fields = %q %q %q, want %q", m.Card, m.Sale.Masked, m.Void.Masked, want)
	}
	if m.Message != "card "+want+" merchant "+mid {
		t.Errorf("message = %q: the PAN must be masked, the MID kept", m.Message)
	}
	if st.Card != testPAN {
		t.Error("Report changed the caller's status")
	}
	s.Until(t, "status", func(m mqtttest.Msg) bool { return m.Topic == mqtt.StatusTopic(tid) })
	s.noFullPAN(t)
}

func TestSanitize(t *testing.T) {
	for _, tc := range []struct {
		name, in, want string
		card           bool
	}{
		{"masked card kept", "622202*********0128", "622202*********0128", true},
		{"full card masked", testPAN, "622202*********0128", true},
		{"non-Luhn card field masked", "6222021234567890127", "622202*********0127", true},
		{"text Luhn PAN masked", "x 4111111111111111 y", "x 411111******1111 y", false},
		{"text MID kept", "MID " + mid, "MID " + mid, false},
		{"text RRN kept", "rrn 000000000001", "rrn 000000000001", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var s provisioning.Status
			if tc.card {
				s.Card = tc.in
			} else {
				s.Message = tc.in
			}
			out, changed := Sanitize(s)
			got := out.Message
			if tc.card {
				got = out.Card
			}
			if got != tc.want || changed != (tc.in != tc.want) {
				t.Errorf("Sanitize(%q) = %q changed=%v, want %q", tc.in, got, changed, tc.want)
			}
		})
	}
}

func TestStartTwice(t *testing.T) {
	r := newReporter(t, "tcp://"+bench.ReserveAddr(t), nil)
	if err := r.Start(context.Background()); !errors.Is(err, ErrClosed) {
		t.Errorf("second Start = %v, want ErrClosed", err)
	}
}

// terminalTopics are the test terminal's topics, named exactly: mochi v2.7.9
// scans retained messages for a wildcard subscription without the lock its
// retain path takes, a data race `go test -race` reports when a retained
// publish lands at the same moment. Exact filters take a locked lookup (and
// RabbitMQ gives retained messages to exact-topic subscribers only).
var terminalTopics = topicsOf(tid)

// topicsOf are terminal id's topics, named exactly (see terminalTopics).
func topicsOf(id string) []string {
	return []string{mqtt.StateTopic(id), mqtt.StatusTopic(id), mqtt.EventsTopic(id)}
}
