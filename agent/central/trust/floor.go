package trust

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sync"
	"time"

	"github.com/posagent/posagent/agent/store"
)

// Epoch is the floor before the terminal has learnt any time: no posagent
// release is older, so a clock before it is a clock that was never set.
var Epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// ErrCorruptFloor is wrapped when the floor file exists but cannot be read:
// starting again from Epoch would let a wound-back clock revive expired
// tickets and commands.
var ErrCorruptFloor = errors.New("trust: time floor file is corrupt")

// Floor is the latest time the terminal has reason to believe has passed,
// persisted so that it survives restarts and never goes back: the issued_at
// of every ticket and command accepted from central, and whatever trusted
// time the agent learns (the host's time at sign-on, through Advance).
//
// The terminal's clock is not trusted on its own: before sign-on it is
// whatever the RTC says, and an RTC without a battery (or a restored
// fake-hwclock) can be months behind, which would make an expired ticket look
// valid again. Validity windows are therefore checked against Window's rule:
// a clock behind the floor counts as the floor. Its methods are safe for
// concurrent use.
type Floor struct {
	path string
	mu   sync.Mutex
	t    time.Time
}

type floorFile struct {
	Schema int    `json:"schema"`
	Floor  string `json:"floor"` // StampLayout
}

// OpenFloor reads the floor kept at path (in the state directory). A missing
// file is Epoch; an unreadable or corrupt one is an error.
func OpenFloor(path string) (*Floor, error) {
	f := &Floor{path: path, t: Epoch}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return f, nil
	}
	if err != nil {
		return nil, fmt.Errorf("trust: time floor: %w", err)
	}
	var ff floorFile
	if json.Unmarshal(b, &ff) != nil || ff.Schema != 1 {
		return nil, fmt.Errorf("%w: %s", ErrCorruptFloor, path)
	}
	t, err := time.Parse(StampLayout, ff.Floor)
	if err != nil {
		return nil, fmt.Errorf("%w: %s", ErrCorruptFloor, path)
	}
	if t.After(f.t) {
		f.t = t
	}
	return f, nil
}

// Time is the floor now.
func (f *Floor) Time() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.t
}

// Advance raises the floor to t (whole seconds) if t is later, durably
// before it returns. An earlier t changes nothing: the floor never goes back.
func (f *Floor) Advance(t time.Time) error {
	t = t.UTC().Truncate(time.Second)
	f.mu.Lock()
	defer f.mu.Unlock()
	if !t.After(f.t) {
		return nil
	}
	b, _ := json.Marshal(floorFile{Schema: 1, Floor: Stamp(t)})
	if err := store.WriteFile(f.path, b, 0o600); err != nil {
		return fmt.Errorf("trust: time floor: %w", err)
	}
	f.t = t
	return nil
}

// Window is the validity rule of signed payloads, given the terminal's clock,
// the floor and the allowed clock skew:
//
//   - expired: expires_at is not after max(floor, clock - skew). The floor is
//     trusted time and gets no skew; a clock behind the floor counts as the
//     floor, so winding the clock back cannot revive anything.
//   - early (not yet valid): only when the clock is at or after the floor
//     (a clock behind it is known to be wrong and cannot say that something
//     is early), issued_at is after clock + skew.
func Window(issued, expires, clock, floor time.Time, skew time.Duration) (expired, early bool) {
	late := clock.Add(-skew)
	if floor.After(late) {
		late = floor
	}
	expired = !expires.After(late)
	early = !clock.Before(floor) && issued.After(clock.Add(skew))
	return expired, early
}
