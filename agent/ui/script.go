package ui

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
)

// ErrNoMoreKeys is returned by Script.Key when every scripted key has been
// pressed. A demo or test that runs out of keys fails instead of hanging.
var ErrNoMoreKeys = errors.New("ui: key script exhausted")

// Script is a Keypad that presses a fixed list of keys in order, for the demo
// and for tests. It is safe for concurrent use.
type Script struct {
	mu   sync.Mutex
	keys []Key
}

var _ Keypad = (*Script)(nil)

// NewScript returns a Script that presses keys in order. The keys are not
// checked: a test may want to press one the keypad lacks.
func NewScript(keys ...Key) *Script {
	return &Script{keys: append([]Key(nil), keys...)}
}

// ParseScript reads key names separated by commas, spaces or newlines; '#'
// starts a comment that runs to the end of the line. Names are case-insensitive.
// An unknown name is an error that names it and its line.
//
//	# confirm the parameters, then skip the printer test
//	ENTER
//	1, enter   # retry sign-on
func ParseScript(s string) (*Script, error) {
	var keys []Key
	for n, line := range strings.Split(s, "\n") {
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		fields := strings.FieldsFunc(line, func(r rune) bool {
			return r == ',' || r == ' ' || r == '\t' || r == '\r'
		})
		for _, f := range fields {
			k, err := ParseKey(f)
			if err != nil {
				return nil, fmt.Errorf("ui: script line %d: unknown key %q", n+1, f)
			}
			keys = append(keys, k)
		}
	}
	return &Script{keys: keys}, nil
}

// Key presses the next key. It returns ctx's error if ctx is done, even with
// keys left, and ErrNoMoreKeys once the script is used up.
func (s *Script) Key(ctx context.Context) (Key, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.keys) == 0 {
		return "", ErrNoMoreKeys
	}
	k := s.keys[0]
	s.keys = s.keys[1:]
	return k, nil
}

// Keys returns the keys not pressed yet, so a test can check that a flow used
// exactly the presses it was meant to.
func (s *Script) Keys() []Key {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Key(nil), s.keys...)
}
