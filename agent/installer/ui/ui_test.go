package ui

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/posagent/posagent/provisioning"
)

// recorder is a Display that keeps every screen drawn on it.
type recorder struct {
	titles []string
	lines  [][]string
	err    error
}

func (r *recorder) Draw(_ context.Context, title string, lines []string) error {
	r.titles = append(r.titles, title)
	r.lines = append(r.lines, append([]string(nil), lines...))
	return r.err
}

var _ Display = (*recorder)(nil)

// blocking is a Keypad nobody presses: Key waits for ctx, as a driver does.
type blocking struct{}

func (blocking) Key(ctx context.Context) (Key, error) {
	<-ctx.Done()
	return "", ctx.Err()
}

var _ Keypad = blocking{}

var confirmCancel = []provisioning.Option{
	{ID: "confirm", Key: "ENTER", Label: "Confirm"},
	{ID: "cancel", Key: "CANCEL", Label: "Cancel"},
	{ID: "retry", Key: "1", Label: "Retry"},
}

func TestAskIgnoresUnmappedKeys(t *testing.T) {
	for _, tc := range []struct {
		keys []Key
		want string
		left []Key
	}{
		{[]Key{"ENTER"}, "confirm", nil},
		{[]Key{"2", "F1", "UP", "CLEAR", "CANCEL", "ENTER"}, "cancel", []Key{"ENTER"}},
		{[]Key{"9", "1"}, "retry", nil},
	} {
		rec := &recorder{}
		keys := NewScript(tc.keys...)
		term := &Terminal{Display: rec, Keypad: keys}
		got, err := term.Ask(context.Background(), provisioning.Screen{Title: "签到 SIGN ON", Lines: []string{"主机已连接"}}, confirmCancel...)
		if err != nil || got != tc.want {
			t.Errorf("keys %v: Ask = %q, %v; want %q", tc.keys, got, err, tc.want)
		}
		if !slices.Equal(keys.Keys(), tc.left) {
			t.Errorf("keys %v: left %v, want %v", tc.keys, keys.Keys(), tc.left)
		}
		wantLines := []string{"主机已连接", "[ENTER] Confirm", "[CANCEL] Cancel", "[1] Retry"}
		if len(rec.lines) != 1 || !slices.Equal(rec.lines[0], wantLines) || rec.titles[0] != "签到 SIGN ON" {
			t.Errorf("drew %q %q, want one screen with %q", rec.titles, rec.lines, wantLines)
		}
	}
}

func TestAskFirstOptionWinsAndKeysIgnoreCase(t *testing.T) {
	term := &Terminal{Display: &recorder{}, Keypad: NewScript("ENTER")}
	got, err := term.Ask(context.Background(), provisioning.Screen{},
		provisioning.Option{ID: "a", Key: "enter"}, provisioning.Option{ID: "b", Key: "ENTER"})
	if err != nil || got != "a" {
		t.Errorf("Ask = %q, %v; want a", got, err)
	}
}

func TestAskErrors(t *testing.T) {
	ctx := context.Background()
	screen := provisioning.Screen{Title: "t"}

	// An exhausted script surfaces, so a demo without enough keys fails.
	term := &Terminal{Display: &recorder{}, Keypad: NewScript("1", "2")}
	_, err := term.Ask(ctx, screen, provisioning.Option{ID: "ok", Key: "ENTER"})
	if !errors.Is(err, ErrNoMoreKeys) {
		t.Errorf("exhausted script: err = %v, want ErrNoMoreKeys", err)
	}

	// No options would wait forever.
	if _, err := term.Ask(ctx, screen); !errors.Is(err, ErrNoOptions) {
		t.Errorf("no options: err = %v, want ErrNoOptions", err)
	}

	// A key the keypad lacks could never be pressed: refused before drawing.
	rec := &recorder{}
	term = &Terminal{Display: rec, Keypad: NewScript("ENTER")}
	if _, err := term.Ask(ctx, screen, provisioning.Option{ID: "ok", Key: "F9"}); err == nil || !strings.Contains(err.Error(), `"F9"`) {
		t.Errorf("unknown option key: err = %v", err)
	}
	if len(rec.titles) != 0 {
		t.Error("drew a screen for an unanswerable question")
	}

	// A display failure is returned wrapped and no key is read.
	broken := errors.New("lcd gone")
	keys := NewScript("ENTER")
	term = &Terminal{Display: &recorder{err: broken}, Keypad: keys}
	if _, err := term.Ask(ctx, screen, confirmCancel...); !errors.Is(err, broken) {
		t.Errorf("display error: err = %v", err)
	}
	if err := term.Show(ctx, screen); !errors.Is(err, broken) {
		t.Errorf("Show display error: err = %v", err)
	}
	if len(keys.Keys()) != 1 {
		t.Error("read a key after the display failed")
	}

	// A terminal missing a part errors rather than panicking.
	if _, err := (&Terminal{}).Ask(ctx, screen, confirmCancel...); err == nil {
		t.Error("Ask on an empty Terminal succeeded")
	}
	if err := (&Terminal{}).Show(ctx, screen); err == nil {
		t.Error("Show on an empty Terminal succeeded")
	}
}

func TestAskContext(t *testing.T) {
	// Cancelled while waiting on a keypad that never answers.
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	term := &Terminal{Display: &recorder{}, Keypad: blocking{}}
	go func() {
		_, err := term.Ask(ctx, provisioning.Screen{Title: "wait"}, confirmCancel...)
		done <- err
	}()
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("err = %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Ask did not return after cancel")
	}

	// Already done: keys left in the script are not pressed.
	keys := NewScript("ENTER")
	term = &Terminal{Display: &recorder{}, Keypad: keys}
	if _, err := term.Ask(ctx, provisioning.Screen{}, confirmCancel...); !errors.Is(err, context.Canceled) {
		t.Errorf("done ctx: err = %v, want context.Canceled", err)
	}
	if _, err := keys.Key(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Script.Key with done ctx: err = %v", err)
	}
	if len(keys.Keys()) != 1 {
		t.Error("a key was used up after ctx was done")
	}

	dctx, dcancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer dcancel()
	if _, err := term.Ask(dctx, provisioning.Screen{}, confirmCancel...); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("deadline: err = %v, want DeadlineExceeded", err)
	}
}

func TestShow(t *testing.T) {
	rec := &recorder{}
	keys := NewScript("ENTER")
	term := &Terminal{Display: rec, Keypad: keys}
	if err := term.Show(context.Background(), provisioning.Screen{Title: "T", Lines: []string{"a", "b"}}); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(rec.titles, []string{"T"}) || !slices.Equal(rec.lines[0], []string{"a", "b"}) {
		t.Errorf("drew %q %q", rec.titles, rec.lines)
	}
	if len(keys.Keys()) != 1 {
		t.Error("Show read a key")
	}
}

func TestParseScript(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    []Key
		wantErr string
	}{
		{"", nil, ""},
		{"ENTER", []Key{"ENTER"}, ""},
		{"enter, Cancel  clear", []Key{"ENTER", "CANCEL", "CLEAR"}, ""},
		{"1,2,,3", []Key{"1", "2", "3"}, ""},
		{"# whole line comment\nF1 # pick the first\n\tF4\r\nup,down", []Key{"F1", "F4", "UP", "DOWN"}, ""},
		{"0 9", []Key{"0", "9"}, ""},
		{"ENTER\nOKAY", nil, `line 2: unknown key "OKAY"`},
		{"ok esc Backspace bksp", []Key{"ENTER", "CANCEL", "CLEAR", "CLEAR"}, ""},
		{"1 wait 30s 2, WAIT 1m\n3", []Key{"1", "2", "3"}, ""},
		{"wait", nil, "line 1: wait without a duration"},
		{"1\nwait soon", nil, `line 2: wait "soon"`},
		{"wait 0s", nil, `wait "0s"`},
		{"wait -1s", nil, `wait "-1s"`},
		{"wait 2h", nil, `wait "2h"`},
		{"10", nil, `unknown key "10"`},
		{"F5", nil, `unknown key "F5"`},
		{"ENTER;CANCEL", nil, `unknown key "ENTER;CANCEL"`},
		{"# ENTER", nil, ""},
	} {
		s, err := ParseScript(tc.in)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("ParseScript(%q) err = %v, want %q", tc.in, err, tc.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseScript(%q): %v", tc.in, err)
			continue
		}
		if !slices.Equal(s.Keys(), tc.want) {
			t.Errorf("ParseScript(%q) = %v, want %v", tc.in, s.Keys(), tc.want)
		}
	}
}

func TestScriptOrderAndCopy(t *testing.T) {
	in := []Key{"1", "ENTER"}
	s := NewScript(in...)
	in[0] = "9" // NewScript keeps its own copy
	s.Keys()[0] = "9"
	ctx := context.Background()
	for _, want := range []Key{"1", "ENTER"} {
		if k, err := s.Key(ctx); err != nil || k != want {
			t.Fatalf("Key = %q, %v; want %q", k, err, want)
		}
	}
	if _, err := s.Key(ctx); !errors.Is(err, ErrNoMoreKeys) {
		t.Errorf("err = %v, want ErrNoMoreKeys", err)
	}
}

func TestKeyValid(t *testing.T) {
	for _, k := range []Key{"0", "5", "9", KeyEnter, KeyCancel, KeyClear, KeyF1, KeyF2, KeyF3, KeyF4, KeyUp, KeyDown} {
		if !k.Valid() {
			t.Errorf("%q not valid", k)
		}
	}
	for _, k := range []Key{"", "enter", "F0", "F5", "00", "a", "LEFT"} {
		if k.Valid() {
			t.Errorf("%q valid", k)
		}
	}
}
