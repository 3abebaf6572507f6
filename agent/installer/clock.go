package installer

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/posagent/posagent/agent/installer/ui"
	"github.com/posagent/posagent/provisioning"
)

// Clock is the time the installer runs on: Now for the lock-out, AfterFunc
// for the idle timeout.
type Clock interface {
	Now() time.Time
	// AfterFunc calls f in its own goroutine (or, for VirtualClock, inside
	// Advance) once d has passed; stop cancels it and reports whether it did.
	AfterFunc(d time.Duration, f func()) (stop func() bool)
}

// SystemClock is the wall clock.
type SystemClock struct{}

var _ Clock = SystemClock{}

// Now returns time.Now().
func (SystemClock) Now() time.Time { return time.Now() }

// AfterFunc is time.AfterFunc.
func (SystemClock) AfterFunc(d time.Duration, f func()) func() bool {
	return time.AfterFunc(d, f).Stop
}

// VirtualClock is a Clock whose time moves only through Advance or Sleep, for
// tests and for the demo: a key script's "wait 30s" (ui.Script with this
// clock as its Sleeper) fires the idle timeout at once, and always at the
// same point of the script. It is also a provisioning.Clock, so the flow's
// timestamps follow the same time.
type VirtualClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*vtimer
}

type vtimer struct {
	at time.Time
	f  func()
}

var (
	_ Clock              = (*VirtualClock)(nil)
	_ ui.Sleeper         = (*VirtualClock)(nil)
	_ provisioning.Clock = (*VirtualClock)(nil)
)

// NewVirtualClock returns a clock that reads start until advanced.
func NewVirtualClock(start time.Time) *VirtualClock { return &VirtualClock{now: start} }

// Now returns the virtual time.
func (c *VirtualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// AfterFunc arranges for f to run inside the Advance that reaches now+d.
func (c *VirtualClock) AfterFunc(d time.Duration, f func()) func() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &vtimer{at: c.now.Add(d), f: f}
	c.timers = append(c.timers, t)
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		i := slices.Index(c.timers, t)
		if i < 0 {
			return false
		}
		c.timers = slices.Delete(c.timers, i, i+1)
		return true
	}
}

// Advance moves time on by d and runs, in time order and before returning,
// every function whose time has come. They run without the clock's lock, so
// they may use the clock.
func (c *VirtualClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	now := c.now
	var due []*vtimer
	keep := c.timers[:0]
	for _, t := range c.timers {
		if !t.at.After(now) {
			due = append(due, t)
		} else {
			keep = append(keep, t)
		}
	}
	c.timers = keep
	c.mu.Unlock()
	slices.SortStableFunc(due, func(a, b *vtimer) int { return a.at.Compare(b.at) })
	for _, t := range due {
		t.f()
	}
}

// Sleep implements ui.Sleeper: it advances the clock by d and then reports
// ctx's error, which is how a wait that outlasts the idle timeout ends the
// key read it happened in.
func (c *VirtualClock) Sleep(ctx context.Context, d time.Duration) error {
	c.Advance(d)
	return ctx.Err()
}
