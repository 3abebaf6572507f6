package ui

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// fakeSleeper records waits; fail makes the wait end in an error, as an idle
// timeout that cancels the reader's context does.
type fakeSleeper struct {
	waits []time.Duration
	fail  error
}

func (f *fakeSleeper) Sleep(_ context.Context, d time.Duration) error {
	f.waits = append(f.waits, d)
	return f.fail
}

func TestScriptWait(t *testing.T) {
	s, err := ParseScript("1 wait 30s 2 wait 1s wait 2s")
	if err != nil {
		t.Fatal(err)
	}
	sl := &fakeSleeper{}
	s.SetSleeper(sl)
	ctx := context.Background()
	for _, want := range []Key{"1", "2"} {
		if k, err := s.Key(ctx); err != nil || k != want {
			t.Fatalf("Key = %q, %v; want %q", k, err, want)
		}
	}
	// Trailing waits pass, then the script is over.
	if _, err := s.Key(ctx); !errors.Is(err, ErrNoMoreKeys) {
		t.Fatalf("Key = %v, want ErrNoMoreKeys", err)
	}
	if want := []time.Duration{30 * time.Second, time.Second, 2 * time.Second}; !slices.Equal(sl.waits, want) {
		t.Fatalf("waits %v, want %v", sl.waits, want)
	}
}

func TestScriptWaitInterrupted(t *testing.T) {
	s, _ := ParseScript("wait 30s ENTER")
	idle := errors.New("idle")
	s.SetSleeper(&fakeSleeper{fail: idle})
	if _, err := s.Key(context.Background()); !errors.Is(err, idle) {
		t.Fatalf("Key = %v, want the sleeper's error", err)
	}
	// The wait is used up; the key after it is kept for the next reader.
	if !slices.Equal(s.Keys(), []Key{"ENTER"}) {
		t.Fatalf("left %v", s.Keys())
	}
	if k, err := s.Key(context.Background()); err != nil || k != "ENTER" {
		t.Fatalf("Key = %q, %v", k, err)
	}
}

func TestScriptWaitRealTime(t *testing.T) {
	// Without a sleeper a wait takes real time, and a cancelled context
	// ends it; the test never actually waits.
	s, _ := ParseScript("wait 1h 1")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Key(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Key = %v", err)
	}
	if err := (realTime{}).Sleep(ctx, time.Hour); !errors.Is(err, context.Canceled) {
		t.Fatalf("Sleep = %v", err)
	}
	if err := (realTime{}).Sleep(context.Background(), time.Nanosecond); err != nil {
		t.Fatalf("Sleep = %v", err)
	}
}

// FuzzParseScript feeds arbitrary files to the --keys parser: it must never
// panic, and what it accepts must only be keys the keypad has and bounded
// waits.
func FuzzParseScript(f *testing.F) {
	for _, s := range []string{
		"F1 2 4 6 8 OK\n1\nwait 30s\n",
		"# comment only",
		"enter,cancel,,clear\r\n",
		"wait",
		"wait 1h0m0.000000001s",
		"1 # 2 wait 3s\nwait 500ms 3",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		s, err := ParseScript(src)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "ui: script line ") {
				t.Fatalf("error without its line: %v", err)
			}
			return
		}
		for _, st := range s.steps {
			switch {
			case st.wait < 0 || st.wait > MaxWait:
				t.Fatalf("wait %s out of range", st.wait)
			case st.wait == 0 && !st.key.Valid():
				t.Fatalf("invalid key %q from %q", st.key, src)
			}
		}
	})
}

// A key script as `posagent demo --keys FILE` reads it. The waits pass on the
// Sleeper; here one that only prints them.
func ExampleParseScript() {
	s, err := ParseScript(`
# enter install mode
F1 2 4 6 8 OK
wait 30s   # idle: back to the menu
esc`)
	if err != nil {
		fmt.Println(err)
		return
	}
	s.SetSleeper(printSleeper{})
	for {
		k, err := s.Key(context.Background())
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Print(k, " ")
	}
	// Output: F1 2 4 6 8 ENTER (wait 30s) CANCEL ui: key script exhausted
}

type printSleeper struct{}

func (printSleeper) Sleep(_ context.Context, d time.Duration) error {
	fmt.Printf("(wait %s) ", d)
	return nil
}
