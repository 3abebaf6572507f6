package ui

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
)

// ErrNoMoreKeys is returned by Script.Key when every scripted key has been
// pressed. A demo or test that runs out of keys fails instead of hanging.
var ErrNoMoreKeys = errors.New("ui: key script exhausted")

// MaxWait bounds one wait of a key script: a typo such as "wait 30h" should be
// an error, not a demo that hangs for a day on a real clock.
const MaxWait = time.Hour

// Sleeper is the time a key script's waits pass on. A test or the demo gives
// the installer's virtual clock, so "wait 30s" fires its idle timeout at once
// and deterministically; without one, waits take real time.
type Sleeper interface {
	// Sleep returns after d, or earlier with ctx's error (the error a
	// cancellation caused by the passing time itself, such as an idle
	// timeout, included).
	Sleep(ctx context.Context, d time.Duration) error
}

// realTime sleeps on the wall clock.
type realTime struct{}

func (realTime) Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// step is one entry of a script: a key, or (when wait > 0) a pause.
type step struct {
	key  Key
	wait time.Duration
}

// Script is a Keypad that presses a fixed list of keys in order, with optional
// pauses ("wait 30s") between them, for the demo and for tests. It is safe for
// concurrent use.
type Script struct {
	mu      sync.Mutex
	steps   []step
	sleeper Sleeper
}

var _ Keypad = (*Script)(nil)

// NewScript returns a Script that presses keys in order. The keys are not
// checked: a test may want to press one the keypad lacks.
func NewScript(keys ...Key) *Script {
	s := &Script{}
	for _, k := range keys {
		s.steps = append(s.steps, step{key: k})
	}
	return s
}

// SetSleeper makes the script's waits pass on sl instead of real time.
func (s *Script) SetSleeper(sl Sleeper) {
	s.mu.Lock()
	s.sleeper = sl
	s.mu.Unlock()
}

// ParseScript reads a key script, the format of `posagent demo --keys FILE`:
//
//   - keys are separated by spaces, tabs, commas or newlines;
//   - '#' starts a comment that runs to the end of the line;
//   - a key is a digit 0-9 or a name: ENTER (or OK), CANCEL (or ESC), CLEAR
//     (or BACKSPACE, BKSP), F1-F4, UP, DOWN; names ignore case;
//   - "wait DURATION" (Go syntax: 30s, 1m30s, 500ms; above zero, at most
//     MaxWait) presses nothing for that long, which is how a script shows an
//     idle timeout.
//
// An unknown name or a bad wait is an error naming its line.
//
//	# enter install mode: function key, password, OK
//	F1 2 4 6 8 OK
//	1          # start the install
//	wait 30s   # walk away: the idle timeout returns to the menu
func ParseScript(src string) (*Script, error) {
	s := &Script{}
	for n, line := range strings.Split(src, "\n") {
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		fields := strings.FieldsFunc(line, func(r rune) bool {
			return r == ',' || r == ' ' || r == '\t' || r == '\r'
		})
		for i := 0; i < len(fields); i++ {
			f := fields[i]
			if strings.EqualFold(f, "wait") {
				if i+1 == len(fields) {
					return nil, fmt.Errorf("ui: script line %d: wait without a duration", n+1)
				}
				i++
				d, err := time.ParseDuration(fields[i])
				if err != nil || d <= 0 || d > MaxWait {
					return nil, fmt.Errorf("ui: script line %d: wait %q: want a duration above 0 and at most %s", n+1, fields[i], MaxWait)
				}
				s.steps = append(s.steps, step{wait: d})
				continue
			}
			k, err := ParseKey(f)
			if err != nil {
				return nil, fmt.Errorf("ui: script line %d: unknown key %q", n+1, f)
			}
			s.steps = append(s.steps, step{key: k})
		}
	}
	return s, nil
}

// Key presses the next key, first passing any waits before it on the
// script's Sleeper. It returns ctx's error if ctx is done, even with keys
// left (a wait that ends in ctx's cancellation is used up, the key after it
// is not), and ErrNoMoreKeys once the script is used up.
func (s *Script) Key(ctx context.Context) (Key, error) {
	for {
		if err := ctx.Err(); err != nil {
			return "", err
		}
		s.mu.Lock()
		if len(s.steps) == 0 {
			s.mu.Unlock()
			return "", ErrNoMoreKeys
		}
		st := s.steps[0]
		s.steps = s.steps[1:]
		sl := s.sleeper
		s.mu.Unlock()
		if st.wait == 0 {
			return st.key, nil
		}
		if sl == nil {
			sl = realTime{}
		}
		if err := sl.Sleep(ctx, st.wait); err != nil {
			return "", err
		}
	}
}

// Keys returns the keys not pressed yet (waits left out), so a test can check
// that a flow used exactly the presses it was meant to.
func (s *Script) Keys() []Key {
	s.mu.Lock()
	defer s.mu.Unlock()
	var keys []Key
	for _, st := range s.steps {
		if st.wait == 0 {
			keys = append(keys, st.key)
		}
	}
	return keys
}
