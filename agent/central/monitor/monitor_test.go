package monitor

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/posagent/posagent/agent/central/broker"
	"github.com/posagent/posagent/agent/central/mqtt"
	"github.com/posagent/posagent/agent/central/report"
	"github.com/posagent/posagent/agent/central/report/reporttest"
	"github.com/posagent/posagent/agent/testkit/bench"
	"github.com/posagent/posagent/provisioning"
	"github.com/posagent/posagent/provisioning/pan"
)

const (
	tid  = "10000001"
	wait = 10 * time.Second
)

var (
	masked  = pan.MustParse("6222021234567890128").Masked()
	fullPAN = regexp.MustCompile(`[0-9]{16,}`)
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func startBroker(t *testing.T) *broker.Broker {
	t.Helper()
	b, err := broker.Start("127.0.0.1:0", quiet())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// terminal runs a reporter for tid and returns it after the given statuses are
// acknowledged, so the broker holds them retained.
func terminal(t *testing.T, url, tid string, sts ...provisioning.Status) *reporttest.Terminal {
	t.Helper()
	r := reporttest.Start(t, mqtt.Options{URL: url, TID: tid, MID: "898310048160001", Serial: "SN-" + tid, Logger: quiet()})
	for _, s := range sts {
		r.Report(context.Background(), s)
	}
	flush(t, r)
	return r
}

func flush(t *testing.T, r *reporttest.Terminal) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
}

func install() []provisioning.Status {
	at := time.Date(2025, 1, 2, 10, 0, 0, 0, time.UTC)
	return []provisioning.Status{
		{Step: provisioning.StepSignOn, State: provisioning.StateDone, Attempt: 1, Boot: 1, Time: at,
			SignOn: &provisioning.SignOnRecord{Batch: "000001", KeysOK: true}},
		{Step: provisioning.StepBindCard, State: provisioning.StateDone, Attempt: 1, Boot: 1, Card: masked, Time: at},
		{Step: provisioning.StepTestSale, State: provisioning.StateDone, Attempt: 1, Boot: 1, Card: masked, Time: at,
			Sale: &provisioning.TxnRecord{STAN: 3, RC: "00", RRN: "000000000001", AuthCode: "123456", Masked: masked, Amount: 1}},
	}
}

// lines is an Out that lets a test wait for a line while Watch writes.
type lines struct {
	mu  sync.Mutex
	buf bytes.Buffer
	ch  chan struct{}
}

func newLines() *lines { return &lines{ch: make(chan struct{}, 1)} }

func (l *lines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	select {
	case l.ch <- struct{}{}:
	default:
	}
	return l.buf.Write(p)
}

func (l *lines) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func (l *lines) waitFor(t *testing.T, sub string) {
	t.Helper()
	timeout := time.After(wait)
	for !strings.Contains(l.String(), sub) {
		select {
		case <-l.ch:
		case <-timeout:
			t.Fatalf("no line with %q in:\n%s", sub, l.String())
		}
	}
}

func watchOnce(t *testing.T, o Options) string {
	t.Helper()
	var out bytes.Buffer
	o.Once, o.Out = true, &out
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := Watch(ctx, o); err != nil {
		t.Fatal(err)
	}
	return out.String()
}

func TestWatchOnceText(t *testing.T) {
	b := startBroker(t)
	terminal(t, b.URL(), tid, install()...)
	terminal(t, b.URL(), "10000002", install()[0])

	out := watchOnce(t, Options{URL: b.URL()})
	for _, want := range []string{
		"10000001 online  serial=SN-10000001 time=",
		"10000001 status  step=test-sale state=done attempt=1 card=622202*********0128 rc=00 rrn=000000000001 auth=123456 stan=3 amount=1 seq=3 time=2025-01-02T10:00:00Z",
		"10000002 online  serial=SN-10000002",
		"10000002 status  step=sign-on state=done attempt=1 batch=000001 keys=ok seq=1",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("snapshot lacks %q:\n%s", want, out)
		}
	}
	if n := strings.Count(out, "\n"); n != 4 {
		t.Errorf("snapshot has %d lines, want 4 (state and status of two terminals):\n%s", n, out)
	}
	if strings.Contains(out, " event ") {
		t.Errorf("snapshot shows events, which are not retained:\n%s", out)
	}

	one := watchOnce(t, Options{URL: b.URL(), TID: "10000002"})
	if strings.Contains(one, "10000001") || strings.Count(one, "\n") != 2 {
		t.Errorf("--tid 10000002 snapshot:\n%s", one)
	}
	if fullPAN.MatchString(out) {
		t.Errorf("output shows a full card number:\n%s", out)
	}
}

func TestWatchOnceJSON(t *testing.T) {
	b := startBroker(t)
	terminal(t, b.URL(), tid, install()...)
	out := watchOnce(t, Options{URL: b.URL(), TID: tid, JSON: true})
	var topics []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var rec struct {
			Topic    string          `json:"topic"`
			Retained bool            `json:"retained"`
			Payload  json.RawMessage `json:"payload"`
		}
		if err := json.Unmarshal([]byte(l), &rec); err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		if !rec.Retained {
			t.Errorf("snapshot line not retained: %s", l)
		}
		topics = append(topics, rec.Topic)
		if rec.Topic == mqtt.StatusTopic(tid) {
			var m report.Message
			if err := json.Unmarshal(rec.Payload, &m); err != nil || m.Seq != 3 || m.Step != provisioning.StepTestSale || m.Sale.Masked != masked {
				t.Errorf("status payload = %s (%v)", rec.Payload, err)
			}
		}
	}
	if len(topics) != 2 {
		t.Errorf("topics = %v, want state and status", topics)
	}
}

func TestWatchLive(t *testing.T) {
	b := startBroker(t)
	r := terminal(t, b.URL(), tid)
	out := newLines()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Watch(ctx, Options{URL: b.URL(), TID: tid, Out: out}) }()

	out.waitFor(t, "10000001 online") // retained: the subscription is in place
	fail := provisioning.Status{Step: provisioning.StepSignOn, State: provisioning.StateFailed, Attempt: 2, Boot: 2,
		Error: &provisioning.Failure{Code: "E_HOST_TIMEOUT", Message: "host did not answer"}}
	r.Report(context.Background(), fail)
	out.waitFor(t, "10000001 event   step=sign-on state=failed attempt=2 boot=2 seq=1 error=E_HOST_TIMEOUT host did not answer")

	ctx2, cancel2 := context.WithTimeout(context.Background(), wait)
	defer cancel2()
	if err := r.Close(ctx2); err != nil {
		t.Fatal(err)
	}
	out.waitFor(t, "10000001 offline reason=shutdown")
	// The status went out before the offline state: had it been printed, it
	// would be there by now. Text mode shows each live report once, as the event.
	if strings.Contains(out.String(), "status  step=sign-on") {
		t.Errorf("live status printed next to its event:\n%s", out.String())
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Watch after cancel = %v, want nil", err)
		}
	case <-time.After(wait):
		t.Fatal("Watch did not return after cancel")
	}
}

func TestLatest(t *testing.T) {
	b := startBroker(t)
	terminal(t, b.URL(), tid, install()...)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	st, err := Latest(ctx, b.URL(), tid)
	if err != nil {
		t.Fatal(err)
	}
	if st.TID != tid || st.Step != provisioning.StepTestSale || st.State != provisioning.StateDone || st.Sale == nil || st.Sale.RRN != "000000000001" {
		t.Errorf("Latest = %+v", st)
	}

	short, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if _, err := Latest(short, b.URL(), "99999999"); !errors.Is(err, ErrNoStatus) {
		t.Errorf("Latest of an unknown terminal = %v, want ErrNoStatus", err)
	}
}

func TestConnectFails(t *testing.T) {
	addr := bench.ReserveAddr(t) // nothing listens, nothing else can
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	err := Watch(ctx, Options{URL: "tcp://" + addr, Password: "hunter2", Out: io.Discard})
	if err == nil {
		t.Fatal("Watch against nothing succeeded")
	}
	if strings.Contains(err.Error(), "hunter2") {
		t.Errorf("error shows the password: %v", err)
	}
	if err := Watch(ctx, Options{URL: "tcp://" + addr, TID: "a/b"}); err == nil {
		t.Error("Watch accepted a TID with a slash")
	}
}

func TestTextLine(t *testing.T) {
	st := func(s provisioning.Status) []byte {
		b, err := json.Marshal(report.Message{Seq: 7, Status: s})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	for _, tc := range []struct {
		name, topic string
		payload     []byte
		want        string
	}{
		{"will", "pos/v1/1/state", []byte(`{"state":"offline","tid":"1","serial":"S","reason":"connection-lost","time":"2025-01-02T10:00:00Z"}`),
			"1 offline reason=connection-lost serial=S time=2025-01-02T10:00:00Z"},
		{"online", "pos/v1/1/state", []byte(`{"state":"online","tid":"1","serial":"S"}`), "1 online  serial=S"},
		{"bind", "pos/v1/1/events", st(provisioning.Status{Step: provisioning.StepBindCard, State: provisioning.StateRunning, Attempt: 1, Card: masked}),
			"1 event   step=bind-card state=running attempt=1 card=622202*********0128 seq=7"},
		{"void", "pos/v1/1/status", st(provisioning.Status{Step: provisioning.StepVoid, State: provisioning.StateDone, Attempt: 1,
			Void: &provisioning.TxnRecord{STAN: 4, RC: "00", RRN: "2", AuthCode: "A"}, Card: masked}),
			"1 status  step=void state=done attempt=1 card=622202*********0128 rc=00 rrn=2 auth=A stan=4 seq=7"},
		{"message", "pos/v1/1/status", st(provisioning.Status{Step: provisioning.StepLive, State: provisioning.StateLive, Attempt: 1, Message: "ready to take payments"}),
			`1 status  step=live state=live attempt=1 seq=7 msg="ready to take payments"`},
		{"unmasked PAN from a foreign publisher", "pos/v1/1/status", st(provisioning.Status{Step: provisioning.StepBindCard, State: provisioning.StateDone, Attempt: 1, Card: "6222021234567890128"}),
			"1 status  step=bind-card state=done attempt=1 card=622202*********0128 seq=7"},
		{"not JSON", "pos/v1/1/status", []byte("6222021234567890128"), "1 status  invalid payload (19 bytes)"},
		{"bad state", "pos/v1/1/state", []byte("{}"), "1 state   invalid payload (2 bytes)"},
		{"other topic", "pos/v1/1/other", []byte("x"), "1 other   (1 bytes)"},
		{"foreign schema", "a/b", []byte("xy"), "a/b (2 bytes, not this schema)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := TextLine(tc.topic, tc.payload); got != tc.want {
				t.Errorf("TextLine =\n%q, want\n%q", got, tc.want)
			}
		})
	}
}

func TestJSONLine(t *testing.T) {
	if got, want := JSONLine("pos/v1/1/status", true, []byte(`{"seq":1}`)), `{"topic":"pos/v1/1/status","retained":true,"payload":{"seq":1}}`; got != want {
		t.Errorf("JSONLine = %s, want %s", got, want)
	}
	got := JSONLine("pos/v1/1/status", false, []byte("6222021234567890128 not json"))
	if fullPAN.MatchString(got) || !strings.Contains(got, `"payload":null`) || !json.Valid([]byte(got)) {
		t.Errorf("JSONLine of a non-JSON payload = %s", got)
	}
}
