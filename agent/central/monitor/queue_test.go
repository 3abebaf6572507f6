package monitor

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/posagent/posagent/agent/central/mqtt"
	"github.com/posagent/posagent/agent/central/report"
	"github.com/posagent/posagent/provisioning"
)

// fakeQueues is an in-process Source: each queue is a goroutine that hands
// its messages over in order, as AMQPSource's feeds do, so deliveries of
// different queues interleave.
type fakeQueues struct {
	out chan Delivery

	mu    sync.Mutex
	acked []string // topic and seq of each acknowledged delivery, in ack order
	ackFn func(Delivery)
}

var _ Source = (*fakeQueues)(nil)

func newFakeQueues(queues ...[]Delivery) *fakeQueues {
	f := &fakeQueues{out: make(chan Delivery)}
	for _, q := range queues {
		go func() {
			for _, d := range q {
				f.out <- f.wrap(d)
			}
		}()
	}
	return f
}

func (f *fakeQueues) wrap(d Delivery) Delivery {
	d.Ack = func() error {
		f.mu.Lock()
		defer f.mu.Unlock()
		if f.ackFn != nil {
			f.ackFn(d)
		}
		f.acked = append(f.acked, fmt.Sprintf("%s#%d", d.Topic, seqOfPayload(d.Payload)))
		return nil
	}
	return d
}

func (f *fakeQueues) Next(ctx context.Context) (Delivery, error) {
	select {
	case d := <-f.out:
		return d, nil
	case <-ctx.Done():
		return Delivery{}, ctx.Err()
	}
}

func (f *fakeQueues) ackCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.acked)
}

func seqOfPayload(p []byte) uint64 {
	var m struct {
		Seq uint64 `json:"seq"`
	}
	_ = json.Unmarshal(p, &m)
	return m.Seq
}

func queuedEvent(t testing.TB, tid string, seq uint64) Delivery {
	b, err := json.Marshal(report.Message{Seq: seq, Status: provisioning.Status{TID: tid, Step: provisioning.StepNetwork,
		State: provisioning.StateDone, Attempt: int(seq)}})
	if err != nil {
		t.Fatal(err)
	}
	return Delivery{Topic: mqtt.EventsTopic(tid), Payload: b}
}

func redelivered(d Delivery) Delivery { d.Redelivered = true; return d }

func queuedBeat(t testing.TB, tid string, session, beat uint64) Delivery {
	b, err := json.Marshal(mqtt.Heartbeat{TID: tid, Session: session, Beat: beat, IntervalS: 30, Time: time.Date(2025, 1, 2, 10, 0, 0, 0, time.UTC)})
	if err != nil {
		t.Fatal(err)
	}
	return Delivery{Topic: mqtt.HeartbeatTopic(tid), Payload: b}
}

// runUntil runs c over src until n deliveries are acknowledged.
func runUntil(t *testing.T, c *Consumer, src *fakeQueues, n int) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx, src) }()
	deadline := time.After(wait)
	for src.ackCount() < n {
		select {
		case err := <-done:
			t.Fatalf("Run ended early: %v", err)
		case <-deadline:
			t.Fatalf("%d of %d deliveries acknowledged", src.ackCount(), n)
		case <-time.After(time.Millisecond):
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run after cancel = %v", err)
	}
}

// seqsShown is the seq of every event line of tid in out, in order.
func seqsShown(out, tid string) []uint64 {
	var seqs []uint64
	for _, l := range strings.Split(out, "\n") {
		if !strings.HasPrefix(l, tid+" event ") {
			continue
		}
		var seq uint64
		for _, f := range strings.Fields(l) {
			if v, ok := strings.CutPrefix(f, "seq="); ok {
				_, _ = fmt.Sscan(v, &seq)
			}
		}
		seqs = append(seqs, seq)
	}
	return seqs
}

func TestQueueDropsRedeliveriesBySeq(t *testing.T) {
	q := []Delivery{
		queuedEvent(t, tid, 1), queuedEvent(t, tid, 2), queuedEvent(t, tid, 3),
		// The channel broke before 2 and 3 were acknowledged: the queue
		// gives them again.
		redelivered(queuedEvent(t, tid, 2)), redelivered(queuedEvent(t, tid, 3)),
		queuedEvent(t, tid, 4),
		// The terminal missed the PUBACK of 4 and published it again: not
		// flagged redelivered, the same seq.
		queuedEvent(t, tid, 4),
		queuedEvent(t, tid, 5),
	}
	src := newFakeQueues(q)
	var out bytes.Buffer
	c := NewConsumer(QueueOptions{Out: &out})
	runUntil(t, c, src, len(q))

	if got := fmt.Sprint(seqsShown(out.String(), tid)); got != "[1 2 3 4 5]" {
		t.Errorf("events shown %s, want [1 2 3 4 5]:\n%s", got, out.String())
	}
	if st := c.Stats(); st.Duplicates != 3 || st.Folded != 5 {
		t.Errorf("stats = %+v, want 3 duplicates and 5 folded", st)
	}
	if r, _ := c.fleet.(*Fleet).Row(tid); r.Seq != 5 {
		t.Errorf("row seq = %d, want 5", r.Seq)
	}
}

func TestQueueKeepsEachTerminalsOrder(t *testing.T) {
	// Three queues, two terminals on the first: the queues interleave, each
	// terminal's events must come out in seq order.
	const n = 200
	var q0, q1, q2 []Delivery
	for i := uint64(1); i <= n; i++ {
		q0 = append(q0, queuedEvent(t, "10000001", i), queuedEvent(t, "10000004", i))
		q1 = append(q1, queuedEvent(t, "10000002", i))
		q2 = append(q2, queuedEvent(t, "10000003", i))
	}
	src := newFakeQueues(q0, q1, q2)
	var out bytes.Buffer
	c := NewConsumer(QueueOptions{Out: &out})
	runUntil(t, c, src, 4*n)
	for _, tid := range []string{"10000001", "10000002", "10000003", "10000004"} {
		seqs := seqsShown(out.String(), tid)
		if len(seqs) != n {
			t.Errorf("%s: %d events shown, want %d", tid, len(seqs), n)
			continue
		}
		for i, s := range seqs {
			if s != uint64(i+1) {
				t.Errorf("%s: event %d has seq %d: out of order", tid, i, s)
				break
			}
		}
	}
	if st := c.Stats(); st.Duplicates != 0 {
		t.Errorf("stats = %+v, want no duplicates", st)
	}
}

func TestQueueAcksOnlyAfterFolding(t *testing.T) {
	q := []Delivery{queuedEvent(t, tid, 1), queuedEvent(t, tid, 2), redelivered(queuedEvent(t, tid, 2)), queuedBeat(t, tid, 3, 1), queuedEvent(t, tid, 3)}
	src := newFakeQueues(q)
	out := newLines()
	c := NewConsumer(QueueOptions{Out: out})
	var problems []string
	src.ackFn = func(d Delivery) {
		// Called inside Ack: what the message says must already be in the
		// fleet and, but for the heartbeat, on the screen.
		r, _ := c.fleet.(*Fleet).Row(tid)
		if seq := seqOfPayload(d.Payload); seq > r.Seq {
			problems = append(problems, fmt.Sprintf("seq %d acknowledged with the row at %d", seq, r.Seq))
		}
		if strings.HasSuffix(d.Topic, "/heartbeat") {
			if r.Beat != 1 {
				problems = append(problems, "heartbeat acknowledged before it was folded")
			}
			return
		}
		if seq := seqOfPayload(d.Payload); !strings.Contains(out.String(), fmt.Sprintf("seq=%d\n", seq)) {
			problems = append(problems, fmt.Sprintf("seq %d acknowledged before it was shown", seq))
		}
	}
	runUntil(t, c, src, len(q))
	src.mu.Lock()
	defer src.mu.Unlock()
	if len(problems) > 0 {
		t.Error(strings.Join(problems, "\n"))
	}
	if len(src.acked) != len(q) {
		t.Errorf("%d acks for %d deliveries (a duplicate is acknowledged too)", len(src.acked), len(q))
	}
}

func TestQueueRedeliveredPresence(t *testing.T) {
	online := Delivery{Topic: mqtt.StateTopic(tid), Payload: presencePayload(mqtt.Online, 5)}
	offline := Delivery{Topic: mqtt.StateTopic(tid), Payload: presencePayload(mqtt.Offline, 5)}
	q := []Delivery{
		online, offline,
		online,                                    // a birth again in the same session: the stale-Will repair, shown
		redelivered(online), redelivered(offline), // a replay of what was handled
	}
	src := newFakeQueues(q)
	var out bytes.Buffer
	c := NewConsumer(QueueOptions{Out: &out})
	runUntil(t, c, src, len(q))
	if n := strings.Count(out.String(), "10000001 online"); n != 2 {
		t.Errorf("%d online lines, want 2:\n%s", n, out.String())
	}
	if st := c.Stats(); st.Duplicates != 2 {
		t.Errorf("stats = %+v, want 2 duplicates", st)
	}
	if r, _ := c.fleet.(*Fleet).Row(tid); r.Presence != mqtt.Online {
		t.Errorf("presence = %s, want online (the repair birth came last)", r.Presence)
	}
}

func TestQueueHeartbeatDuplicatesAndStale(t *testing.T) {
	q := []Delivery{
		queuedBeat(t, tid, 5, 1), queuedBeat(t, tid, 5, 2),
		redelivered(queuedBeat(t, tid, 5, 2)), // duplicate
		queuedBeat(t, tid, 4, 9),              // an earlier run's: stale
		queuedBeat(t, tid, 5, 3),
	}
	src := newFakeQueues(q)
	var out bytes.Buffer
	c := NewConsumer(QueueOptions{Out: &out, JSON: true})
	runUntil(t, c, src, len(q))
	if st := c.Stats(); st.Duplicates != 1 || st.Stale != 1 || st.Folded != 3 {
		t.Errorf("stats = %+v, want 1 duplicate, 1 stale, 3 folded", st)
	}
	if n := strings.Count(out.String(), `"stale":true`); n != 1 {
		t.Errorf("%d stale records, want 1:\n%s", n, out.String())
	}
	if r, _ := c.fleet.(*Fleet).Row(tid); r.Session != 5 || r.Beat != 3 {
		t.Errorf("row session %d beat %d, want 5 and 3", r.Session, r.Beat)
	}
}

// clock is an injected clock a test moves by hand.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func hbPayload(session, beat uint64, interval int) []byte {
	b, _ := json.Marshal(mqtt.Heartbeat{TID: tid, Session: session, Beat: beat, IntervalS: int64(interval)})
	return b
}

func TestFleetSilentAfterThreeIntervals(t *testing.T) {
	clk := &clock{now: time.Date(2025, 1, 2, 10, 0, 0, 0, time.UTC)}
	f := NewFleetClock(clk.Now)
	f.Apply(mqtt.StateTopic(tid), presencePayload(mqtt.Online, 5))
	presence := func() string { r, _ := f.Row(tid); return r.PresenceAt(clk.Now()) }

	clk.Add(10 * time.Minute)
	if p := presence(); p != mqtt.Online {
		t.Fatalf("no interval known yet: presence = %s, want online (silence is not judged)", p)
	}
	f.Apply(mqtt.HeartbeatTopic(tid), hbPayload(5, 1, 30))
	clk.Add(90 * time.Second)
	if p := presence(); p != mqtt.Online {
		t.Errorf("3 × 30 s after the heartbeat: %s, want online", p)
	}
	if s := f.Silenced(clk.Now()); len(s) != 0 {
		t.Errorf("Silenced = %v before the terminal is silent", s)
	}
	clk.Add(time.Second)
	if p := presence(); p != Silent {
		t.Errorf("91 s after the heartbeat: %s, want silent", p)
	}
	if s := f.Silenced(clk.Now()); len(s) != 1 || s[0].TID != tid {
		t.Errorf("Silenced = %v, want %s", s, tid)
	}
	if s := f.Silenced(clk.Now().Add(time.Minute)); len(s) != 0 {
		t.Errorf("the same silence announced again: %v", s)
	}
	var table bytes.Buffer
	if err := f.Table(&table, clk.Now()); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(table.String(), " silent ") {
		t.Errorf("table does not show silent:\n%s", table.String())
	}

	f.Apply(mqtt.StateTopic(tid), presencePayload(mqtt.Online, 5)) // a birth counts as a sign of life
	if p := presence(); p != mqtt.Online {
		t.Errorf("after a birth: %s, want online", p)
	}
	clk.Add(91 * time.Second)
	if s := f.Silenced(clk.Now()); len(s) != 1 {
		t.Errorf("a new silence after the birth: Silenced = %v, want it announced", s)
	}

	f.Apply(mqtt.StateTopic(tid), presencePayload(mqtt.Offline, 5))
	clk.Add(time.Hour)
	if p := presence(); p != mqtt.Offline {
		t.Errorf("after the Will of the current session: %s, want offline, not silent", p)
	}
}

// A retained birth the broker replays (on every subscribe: each reconnect
// of the monitor, or late when the subscribe raced the publish) is not a
// sign of life, and a silent terminal stays silent; a retained birth of a
// session not seen before is the first news of that run.
func TestFleetRetainedBirthReplay(t *testing.T) {
	for _, tc := range []struct {
		name string
		f    func(now func() time.Time) (Folder, retainedFolder, func() []Row)
	}{
		{"Fleet", func(now func() time.Time) (Folder, retainedFolder, func() []Row) {
			f := NewFleetClock(now)
			return f, f, func() []Row { return f.Silenced(now()) }
		}},
		{"Metrics", func(now func() time.Time) (Folder, retainedFolder, func() []Row) {
			m := NewMetrics(now)
			return m, m, func() []Row { return m.Silenced(now()) }
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := &clock{now: time.Date(2025, 1, 2, 10, 0, 0, 0, time.UTC)}
			live, retained, silenced := tc.f(clk.Now)
			state := mqtt.StateTopic(tid)
			retained.ApplyRetained(state, presencePayload(mqtt.Online, 5)) // first news of session 5
			live.Apply(mqtt.HeartbeatTopic(tid), hbPayload(5, 1, 30))
			clk.Add(91 * time.Second)
			retained.ApplyRetained(state, presencePayload(mqtt.Online, 5)) // the replay
			if s := silenced(); len(s) != 1 || s[0].TID != tid {
				t.Fatalf("after a replayed retained birth: Silenced = %v, want %s silent", s, tid)
			}
			live.Apply(state, presencePayload(mqtt.Online, 5)) // a live birth: the terminal reconnected
			clk.Add(30 * time.Second)
			if s := silenced(); len(s) != 0 {
				t.Errorf("30 s after a live birth: Silenced = %v", s)
			}
			clk.Add(time.Hour)
			silenced()
			retained.ApplyRetained(state, presencePayload(mqtt.Online, 6)) // a new run's retained birth
			clk.Add(30 * time.Second)
			if s := silenced(); len(s) != 0 {
				t.Errorf("30 s after the retained birth of a new session: Silenced = %v", s)
			}
		})
	}
}

func TestFleetHeartbeatSessions(t *testing.T) {
	clk := &clock{now: time.Date(2025, 1, 2, 10, 0, 0, 0, time.UTC)}
	f := NewFleetClock(clk.Now)
	hb := mqtt.HeartbeatTopic(tid)

	// No birth seen (RabbitMQ does not send retained births to a wildcard
	// subscription): a heartbeat says the terminal is online.
	if f.Apply(hb, hbPayload(5, 7, 30)) {
		t.Error("first heartbeat stale")
	}
	if r, _ := f.Row(tid); r.Presence != mqtt.Online || r.Session != 5 || r.Interval != 30*time.Second {
		t.Errorf("row after a heartbeat = %+v", r)
	}
	if !f.Apply(hb, hbPayload(4, 100, 30)) {
		t.Error("a heartbeat of session 4 after session 5 is not stale")
	}
	if r, _ := f.Row(tid); r.Session != 5 || r.Beat != 7 {
		t.Errorf("a stale heartbeat changed the row: %+v", r)
	}
	f.Apply(mqtt.StateTopic(tid), presencePayload(mqtt.Offline, 5))
	f.Apply(hb, hbPayload(5, 8, 30)) // sent before the Will, arrived after it
	if r, _ := f.Row(tid); r.Presence != mqtt.Offline {
		t.Errorf("a late heartbeat of the dead session revived it: %s", r.Presence)
	}
	f.Apply(hb, hbPayload(6, 1, 30)) // the next run, its birth not seen yet
	if r, _ := f.Row(tid); r.Presence != mqtt.Online || r.Session != 6 || r.Beat != 1 {
		t.Errorf("a heartbeat of a newer session: %+v, want online in session 6", r)
	}
	if !f.Apply(mqtt.StateTopic(tid), presencePayload(mqtt.Offline, 5)) {
		t.Error("the Will of session 5 after a heartbeat of session 6 is not stale")
	}
}

func TestQueueAnnouncesSilence(t *testing.T) {
	clk := &clock{now: time.Date(2025, 1, 2, 10, 0, 0, 0, time.UTC)}
	tick := make(chan time.Time)
	for _, tc := range []struct {
		json bool
		want string
	}{
		{false, "10000001 silent  no heartbeat or birth for 1m31s (interval_s=30, session=5)"},
		{true, `{"presence":"silent","tid":"10000001","session":5,"last_seen":"2025-01-02T10:00:00Z","interval_s":30}`},
	} {
		clk.now = time.Date(2025, 1, 2, 10, 0, 0, 0, time.UTC)
		src := newFakeQueues([]Delivery{queuedBeat(t, tid, 5, 1)})
		out := newLines()
		c := NewConsumer(QueueOptions{Out: out, Now: clk.Now, Tick: tick, JSON: tc.json})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- c.Run(ctx, src) }()
		for src.ackCount() < 1 {
			time.Sleep(time.Millisecond)
		}
		clk.Add(91 * time.Second)
		tick <- clk.Now()
		out.waitFor(t, tc.want)
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}

func TestQueueWipedTerminalCountsAgain(t *testing.T) {
	boot1 := func(d Delivery) Delivery {
		var m report.Message
		_ = json.Unmarshal(d.Payload, &m)
		m.Boot = 1
		d.Payload, _ = json.Marshal(m)
		return d
	}
	q := []Delivery{
		queuedEvent(t, tid, 1), queuedEvent(t, tid, 2), queuedEvent(t, tid, 3),
		// The state directory was wiped: seq 1 of boot 1 again, then 2.
		boot1(queuedEvent(t, tid, 1)), queuedEvent(t, tid, 2),
		redelivered(queuedEvent(t, tid, 2)), // and a true redelivery after it
	}
	src := newFakeQueues(q)
	var out bytes.Buffer
	c := NewConsumer(QueueOptions{Out: &out})
	runUntil(t, c, src, len(q))
	if got := fmt.Sprint(seqsShown(out.String(), tid)); got != "[1 2 3 1 2]" {
		t.Errorf("events shown %s, want [1 2 3 1 2]:\n%s", got, out.String())
	}
}
