package monitor

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/posagent/posagent/agent/central/mqtt"
	"github.com/posagent/posagent/agent/central/report"
	"github.com/posagent/posagent/agent/central/report/reporttest"
	"github.com/posagent/posagent/provisioning"
)

func presencePayload(state string, session uint64) []byte {
	b, _ := json.Marshal(mqtt.Presence{State: state, TID: tid, Session: session, Reason: map[string]string{mqtt.Offline: mqtt.ReasonConnectionLost}[state]})
	return b
}

func TestFleetIgnoresLateWillOfOlderSession(t *testing.T) {
	f := NewFleet()
	st := mqtt.StateTopic(tid)
	steps := []struct {
		state     string
		session   uint64
		wantStale bool
		want      string
	}{
		{mqtt.Online, 5, false, mqtt.Online},
		{mqtt.Offline, 4, true, mqtt.Online}, // the late Will of the previous run
		{mqtt.Offline, 5, false, mqtt.Offline},
		{mqtt.Online, 6, false, mqtt.Online},
		{mqtt.Offline, 0, false, mqtt.Offline}, // no session: cannot judge, so it counts
	}
	for i, s := range steps {
		if stale := f.Apply(st, presencePayload(s.state, s.session)); stale != s.wantStale {
			t.Errorf("step %d: stale = %v, want %v", i, stale, s.wantStale)
		}
		if got := f.Rows()[0].Presence; got != s.want {
			t.Errorf("step %d: presence = %s, want %s", i, got, s.want)
		}
	}
}

func TestFleetTable(t *testing.T) {
	f := NewFleet()
	at := time.Date(2025, 1, 2, 10, 0, 0, 0, time.UTC)
	msg := func(seq uint64, s provisioning.Status) []byte {
		b, _ := json.Marshal(report.Message{Seq: seq, Status: s})
		return b
	}
	f.Apply(mqtt.StateTopic(tid), presencePayload(mqtt.Online, 3))
	f.Apply(mqtt.StatusTopic(tid), msg(6, provisioning.Status{TID: tid, MID: "898310048160001", Step: provisioning.StepSignOn, State: provisioning.StateFailed,
		Error: &provisioning.Failure{Code: "E_HOST_TIMEOUT", Message: "the host did not answer"}, Time: at}))
	f.Apply(mqtt.EventsTopic(tid), msg(5, provisioning.Status{Step: provisioning.StepNetwork, State: provisioning.StateDone, Time: at})) // older: ignored
	f.Apply(mqtt.StatusTopic("10000002"), msg(1, provisioning.Status{MID: "898310048160002", Step: provisioning.StepLive, State: provisioning.StateLive, Time: at.Add(-time.Hour)}))
	var out bytes.Buffer
	if err := f.Table(&out, at.Add(90*time.Second)); err != nil {
		t.Fatal(err)
	}
	want := `TID       MID              STEP     STATE   ONLINE  AGE    LAST ERROR
10000001  898310048160001  sign-on  failed  online  1m30s  E_HOST_TIMEOUT the host did not answer
10000002  898310048160002  live     live    -       1h1m30s  -
`
	// tabwriter aligns per column over all rows; compare field by field.
	gotLines, wantLines := strings.Split(out.String(), "\n"), strings.Split(want, "\n")
	if len(gotLines) != len(wantLines) {
		t.Fatalf("table:\n%s", out.String())
	}
	for i := range gotLines {
		if strings.Join(strings.Fields(gotLines[i]), " ") != strings.Join(strings.Fields(wantLines[i]), " ") {
			t.Errorf("line %d = %q, want %q", i, gotLines[i], wantLines[i])
		}
	}
	if on, by := f.Count(); on != 1 || by["failed"] != 1 || by["live"] != 1 {
		t.Errorf("Count = %d %v", on, by)
	}
}

// Through a broker: the terminal runs session 5; a late Will of session 4
// arrives live. Watch shows it as stale, never as the terminal going offline,
// and the reporter answers it with a new birth.
func TestWatchIgnoresLateWillOfOlderSession(t *testing.T) {
	b := startBroker(t)
	reporttest.Start(t, mqtt.Options{URL: b.URL(), TID: tid, Serial: "SN-" + tid, Session: 5, Logger: quiet()})
	out := newLines()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = Watch(ctx, Options{URL: b.URL(), TID: tid, Out: out}) }()
	out.waitFor(t, "10000001 online  serial=SN-10000001 session=5")

	c := paho.NewClient(paho.NewClientOptions().AddBroker(b.URL()).SetClientID("late-will"))
	if tok := c.Connect(); !tok.WaitTimeout(wait) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	defer c.Disconnect(50)
	if tok := c.Publish(mqtt.StateTopic(tid), 1, true, presencePayload(mqtt.Offline, 4)); !tok.WaitTimeout(wait) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	out.waitFor(t, "10000001 stale   offline of session 4 ignored")
	// The reporter's new birth follows; only then is the line list complete
	// up to here, and no line may say the terminal went offline.
	deadline := time.After(wait)
	for strings.Count(out.String(), "online  serial=SN-10000001 session=5") < 2 {
		select {
		case <-out.ch:
		case <-deadline:
			t.Fatalf("no second birth:\n%s", out.String())
		}
	}
	if strings.Contains(out.String(), "10000001 offline") {
		t.Errorf("the late Will was shown as offline:\n%s", out.String())
	}
}

// --once with the table: the retained snapshot folded into one row per
// terminal, the age measured against the injected clock.
func TestWatchOnceTable(t *testing.T) {
	b := startBroker(t)
	terminal(t, b.URL(), tid, install()...)
	out := watchOnce(t, Options{URL: b.URL(), Table: true, Now: func() time.Time {
		return time.Date(2025, 1, 2, 10, 5, 0, 0, time.UTC)
	}})
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || strings.Join(strings.Fields(lines[0]), " ") != "TID MID STEP STATE ONLINE AGE LAST ERROR" {
		t.Fatalf("table:\n%s", out)
	}
	if got := strings.Join(strings.Fields(lines[1]), " "); got != "10000001 898310048160001 test-sale done online 5m0s -" {
		t.Errorf("row = %q", got)
	}
}
