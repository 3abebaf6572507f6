package printertest

import (
	"sync"
	"time"
)

// StepClock is a clock for printer.Options.Now that moves 100 ms on every
// reading, from the Unix epoch: a driver's timeout passes without the test
// waiting for it.
type StepClock struct {
	mu sync.Mutex
	t  time.Time
}

// Now returns the next reading.
func (c *StepClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.t.IsZero() {
		c.t = time.Unix(0, 0)
	}
	c.t = c.t.Add(100 * time.Millisecond)
	return c.t
}
