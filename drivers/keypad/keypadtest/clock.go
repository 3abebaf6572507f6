package keypadtest

import (
	"runtime"
	"sync"
	"time"
)

// Clock is a fake keypad.Clock. Time moves only when Tick puts ticks on the
// ticker channel or when After is called (After advances the clock by d and
// fires at once), so tests never sleep and always see the same times.
type Clock struct {
	mu     sync.Mutex
	now    time.Time
	period time.Duration
	ticks  chan time.Time
	waits  []time.Duration
	asked  []time.Duration
}

// NewClock returns a clock at start whose ticker ticks every period.
// Up to 4096 ticks may be queued ahead of the reader.
func NewClock(start time.Time, period time.Duration) *Clock {
	return &Clock{now: start, period: period, ticks: make(chan time.Time, 4096)}
}

// NewTicker implements keypad.Clock. Every ticker of a Clock shares one
// channel; stop does nothing. The period asked for is recorded (Periods).
func (c *Clock) NewTicker(d time.Duration) (<-chan time.Time, func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.asked = append(c.asked, d)
	return c.ticks, func() {}
}

// After implements keypad.Clock: it advances the clock by d and returns a
// channel that already holds the new time.
func (c *Clock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	c.waits = append(c.waits, d)
	ch := make(chan time.Time, 1)
	ch <- c.now
	return ch
}

// Tick queues n ticks, each one period after the previous.
func (c *Clock) Tick(n int) {
	for i := 0; i < n; i++ {
		c.mu.Lock()
		c.now = c.now.Add(c.period)
		t := c.now
		c.mu.Unlock()
		c.ticks <- t
	}
}

// Drain waits until the reader has taken every queued tick. Together with a
// scanner that handles a tick completely before looking at its context, this
// makes "and then nothing else happened" checks deterministic.
func (c *Clock) Drain() {
	for len(c.ticks) > 0 {
		runtime.Gosched()
	}
}

// Now returns the fake time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Waits returns every duration passed to After, in order.
func (c *Clock) Waits() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Duration(nil), c.waits...)
}

// Periods returns every period passed to NewTicker, in order.
func (c *Clock) Periods() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Duration(nil), c.asked...)
}
