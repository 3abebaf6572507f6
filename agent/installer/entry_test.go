package installer_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/posagent/posagent/agent/installer"
	"github.com/posagent/posagent/agent/installer/ui"
	"github.com/posagent/posagent/provisioning"
)

// noFlow is a flow the test does not expect to run.
func noFlow(t *testing.T) installer.FlowFunc {
	return func(context.Context, installer.Identity, provisioning.Prompter) error {
		t.Error("the flow ran")
		return nil
	}
}

func TestNumberEntry(t *testing.T) {
	const mid, tid = "898310048990001", "10000001" // the demo config's
	tests := []struct {
		name  string
		keys  string // after the menu's "2"
		saved *installer.Identity
		shown string // a notice the screen must have shown
	}{
		{"OK confirms the numbers shown", "OK OK OK", &installer.Identity{MID: mid, TID: tid}, "已保存 Saved"},
		{"typing replaces the number", "123456789012345 OK 87654321 OK OK",
			&installer.Identity{MID: "123456789012345", TID: "87654321"}, ""},
		{"too short is refused until complete", "12345 OK 6789012345 OK OK OK",
			&installer.Identity{MID: "123456789012345", TID: tid}, "Need 15, have 5"},
		{"a 16th digit is not taken", "1234567890123456 OK OK OK",
			&installer.Identity{MID: "123456789012345", TID: tid}, "15 digits max"},
		{"only digits are taken", "1 F2 UP 2 DOWN 3456789012345 OK OK OK",
			&installer.Identity{MID: "123456789012345", TID: tid}, ""},
		{"CLEAR deletes the last digit", "CLEAR 2 OK OK OK",
			&installer.Identity{MID: "898310048990002", TID: tid}, ""},
		{"CANCEL on the number saves nothing", "12 CANCEL", nil, "Not saved"},
		{"CANCEL on the confirmation saves nothing", "OK OK CANCEL", nil, "Not saved"},
		{"idle on the number saves nothing", "OK wait 30s", nil, "Idle: not saved"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newBench(t)
			b.flow = noFlow(t)
			err := b.run(login + " 2 " + tt.keys + " CANCEL")
			if !errors.Is(err, ui.ErrNoMoreKeys) {
				t.Fatalf("Run = %v", err)
			}
			got, lerr := b.ids.Load()
			switch {
			case tt.saved == nil && lerr == nil:
				t.Errorf("saved %s, want nothing", got)
			case tt.saved != nil && (lerr != nil || !strings.Contains(string(got), `"mid":"`+tt.saved.MID+`"`) ||
				!strings.Contains(string(got), `"tid":"`+tt.saved.TID+`"`)):
				t.Errorf("saved %s (%v), want %+v", got, lerr, *tt.saved)
			}
			if tt.shown != "" && !strings.Contains(strings.ReplaceAll(b.tr.b.String(), "|\n|", ""), tt.shown) {
				t.Errorf("never showed %q:\n%s", tt.shown, b.tr.b.String())
			}
		})
	}
}

func TestConfirmedIdentityReachesTheFlow(t *testing.T) {
	b := newBench(t)
	var got installer.Identity
	b.flow = func(_ context.Context, id installer.Identity, _ provisioning.Prompter) error {
		got = id
		return nil
	}
	if err := b.run(login + " 1 123456789012345 OK 87654321 OK OK"); err != nil {
		t.Fatalf("Run = %v", err)
	}
	if want := (installer.Identity{MID: "123456789012345", TID: "87654321"}); got != want {
		t.Fatalf("flow ran for %+v, want %+v", got, want)
	}
	// A restart finds the confirmed numbers and goes straight to the flow.
	got = installer.Identity{}
	if err := b.run(login + " 1"); err != nil || got.TID != "87654321" {
		t.Fatalf("after restart: Run = %v, flow for %+v", err, got)
	}
}

func TestIdleAtMenuLogsOut(t *testing.T) {
	b := newBench(t)
	b.flow = noFlow(t)
	// After the idle timeout at the menu, "1" is a stray key on the idle
	// screen and F1 asks for the password again.
	err := b.run(login + " wait 30s 1 F1 CANCEL")
	if !errors.Is(err, ui.ErrNoMoreKeys) {
		t.Fatalf("Run = %v", err)
	}
	out := b.tr.b.String()
	if !strings.Contains(out, "Logged out") || strings.Count(out, "PASSWORD") < 2 {
		t.Fatalf("idle at the menu did not log out:\n%s", out)
	}
}

func TestCancelStopsAFlowPromptWithoutCancel(t *testing.T) {
	b := newBench(t)
	var flowErr error
	b.flow = func(ctx context.Context, _ installer.Identity, p provisioning.Prompter) error {
		_, err := p.Ask(ctx, provisioning.Screen{Title: "QUESTION", Lines: []string{"only OK"}},
			provisioning.Option{ID: "ok", Key: "ENTER", Label: "go"})
		flowErr = ctx.Err()
		return err
	}
	err := b.run(login + " 1 " + confirm + " 5 CANCEL CANCEL")
	if !errors.Is(err, ui.ErrNoMoreKeys) {
		t.Fatalf("Run = %v", err)
	}
	if !errors.Is(flowErr, context.Canceled) {
		t.Errorf("the flow's context was not cancelled: %v", flowErr)
	}
	if !strings.Contains(b.tr.b.String(), "Cancelled, kept") {
		t.Errorf("menu did not say the flow was cancelled:\n%s", b.tr.b.String())
	}
}

func TestFlowErrorBackToMenu(t *testing.T) {
	b := newBench(t)
	b.flow = func(context.Context, installer.Identity, provisioning.Prompter) error {
		return provisioning.ErrCorruptState
	}
	if err := b.run(login + " 1 " + confirm + " CANCEL"); !errors.Is(err, ui.ErrNoMoreKeys) {
		t.Fatalf("Run = %v", err)
	}
	if !strings.Contains(b.tr.b.String(), "See log") {
		t.Error("a failed flow did not say so at the menu")
	}
}

func TestCorruptLockFailsClosed(t *testing.T) {
	b := newBench(t)
	b.flow = noFlow(t)
	b.locks.Data = []byte("{garbage")
	if err := b.run(login); !errors.Is(err, ui.ErrNoMoreKeys) {
		t.Fatalf("Run = %v", err)
	}
	out := b.tr.b.String()
	if !strings.Contains(out, "LOCKED") || strings.Contains(out, "MENU") {
		t.Fatalf("a corrupt lock record did not lock:\n%s", out)
	}
	if !strings.Contains(string(b.locks.Bytes()), "locked_until") {
		t.Errorf("lock record not rewritten: %s", b.locks.Bytes())
	}
}

func TestNewRefuses(t *testing.T) {
	b := newBench(t)
	good := b.options(ui.NewScript())
	for name, mutate := range map[string]func(*installer.Options){
		"no password hash": func(o *installer.Options) { o.Config.PasswordHash = "" },
		"clear password":   func(o *installer.Options) { o.Config.PasswordHash = "2468" },
		"no display":       func(o *installer.Options) { o.Display = nil },
		"no keys":          func(o *installer.Options) { o.Keys = nil },
		"no clock":         func(o *installer.Options) { o.Clock = nil },
		"no lock store":    func(o *installer.Options) { o.Locks = nil },
		"no flow":          func(o *installer.Options) { o.Flow = nil },
	} {
		o := good
		mutate(&o)
		if _, err := installer.New(o); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := installer.New(good); err != nil {
		t.Fatal(err)
	}
}

// countingIndicator counts the signals.
type countingIndicator struct{ click, success, failure int }

func (c *countingIndicator) Click(context.Context) error   { c.click++; return nil }
func (c *countingIndicator) Success(context.Context) error { c.success++; return nil }
func (c *countingIndicator) Failure(context.Context) error {
	c.failure++
	return errors.New("buzzer unplugged") // logged, never fatal
}

func TestIndicator(t *testing.T) {
	b := newBench(t)
	ind := &countingIndicator{}
	b.ind = ind
	// One wrong password (a failure), then the happy path.
	script := "F1 1111 OK " + testPassword + " OK 1 " + confirm + " OK"
	if err := b.run(script); err != nil {
		t.Fatalf("Run = %v", err)
	}
	if keys := len(parse(t, script)); ind.click != keys || ind.success != 1 || ind.failure != 1 {
		t.Fatalf("click %d (keys %d), success %d, failure %d", ind.click, keys, ind.success, ind.failure)
	}
}

func TestLockSurvivesClockGoingBack(t *testing.T) {
	b := newBench(t)
	b.flow = noFlow(t)
	if err := b.run("F1 1111 OK 2222 OK 3333 OK"); !errors.Is(err, ui.ErrNoMoreKeys) {
		t.Fatalf("Run = %v", err)
	}
	// The RTC loses a year: the terminal stays locked, for one period from
	// the new "now", not for a year and five minutes.
	b.clock = installer.NewVirtualClock(t0.AddDate(-1, 0, 0))
	b.tr.b.Reset()
	if err := b.run("F1 CANCEL"); !errors.Is(err, ui.ErrNoMoreKeys) {
		t.Fatalf("Run = %v", err)
	}
	if out := b.tr.b.String(); !strings.Contains(out, "Try again in 5 min") {
		t.Fatalf("after the clock went back:\n%s", out)
	}
}

func TestWrongTriesSurviveRestart(t *testing.T) {
	b := newBench(t)
	b.flow = noFlow(t)
	if err := b.run("F1 1111 OK 2222 OK"); !errors.Is(err, ui.ErrNoMoreKeys) {
		t.Fatalf("Run = %v", err)
	}
	// Power-cycling after two wrong tries leaves one, not three.
	b.tr.b.Reset()
	if err := b.run("F1 3333 OK"); !errors.Is(err, ui.ErrNoMoreKeys) {
		t.Fatalf("Run = %v", err)
	}
	if !strings.Contains(b.tr.b.String(), "LOCKED") {
		t.Fatalf("third wrong try after a restart did not lock:\n%s", b.tr.b.String())
	}
	// The record says so, and holds no password.
	rec := string(b.locks.Bytes())
	if !strings.Contains(rec, `"locked_until"`) || strings.Contains(rec, testPassword) {
		t.Errorf("lock record %s", rec)
	}
}
