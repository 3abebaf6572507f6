package keypad

import "time"

// Clock is the time the scanner and indicators run on. It is an interface
// so tests can step time by hand (keypadtest.Clock) instead of sleeping.
type Clock interface {
	// NewTicker returns a channel that receives the time every d, and a
	// function that stops it.
	NewTicker(d time.Duration) (c <-chan time.Time, stop func())
	// After returns a channel that receives the time once d has passed.
	After(d time.Duration) <-chan time.Time
}

// SystemClock is the real time.
type SystemClock struct{}

var _ Clock = SystemClock{}

// NewTicker implements Clock with time.NewTicker.
func (SystemClock) NewTicker(d time.Duration) (<-chan time.Time, func()) {
	t := time.NewTicker(d)
	return t.C, t.Stop
}

// After implements Clock with time.After.
func (SystemClock) After(d time.Duration) <-chan time.Time {
	// time.After no longer leaks its timer (Go 1.23), so a cancelled
	// wait costs nothing.
	return time.After(d)
}
