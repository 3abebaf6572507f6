// Package keypadtest holds the fakes the keypad driver is tested with:
// periph's own gpiotest.Pin, wired into a diode-less key matrix (Matrix) so
// that ghosting happens as on real hardware, and a Clock whose time only
// moves when the test says so.
//
// The pins are periph.io/x/conn/v3/gpio/gpiotest.Pin. A sense line is a bare
// gpiotest.Pin whose level the wiring sets; a drive line and an indicator
// line are a Pin, which is a gpiotest.Pin plus the two things gpiotest does
// not keep and these tests check: whether the line is driving (Out) or
// floating (In), and the history of levels it drove.
package keypadtest

import (
	"sync"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpiotest"
)

// Pin is a gpiotest.Pin that also records its direction and every level
// passed to Out. Its fields belong to the embedded gpiotest.Pin and are
// guarded by its Mutex, as gpiotest documents.
type Pin struct {
	*gpiotest.Pin

	mu     sync.Mutex
	output bool
	outs   []gpio.Level
	// changed is called, without any lock held, after In or Out: the wiring
	// of a Matrix recomputes its sense lines then.
	changed func(p *Pin, out bool, l gpio.Level)
}

var _ gpio.PinIO = (*Pin)(nil)

// NewPin returns a Pin named name; gpiotest's fields are reachable through
// the embedded *gpiotest.Pin.
func NewPin(name string, num int) *Pin {
	return &Pin{Pin: &gpiotest.Pin{N: name, Num: num}}
}

// In implements gpio.PinIn through gpiotest and notes that the line floats.
func (p *Pin) In(pull gpio.Pull, edge gpio.Edge) error {
	err := p.Pin.In(pull, edge)
	p.mu.Lock()
	p.output = false
	cb := p.changed
	p.mu.Unlock()
	if cb != nil {
		cb(p, false, gpio.Low)
	}
	return err
}

// Out implements gpio.PinOut through gpiotest and records l.
func (p *Pin) Out(l gpio.Level) error {
	err := p.Pin.Out(l)
	p.mu.Lock()
	p.output = true
	p.outs = append(p.outs, l)
	cb := p.changed
	p.mu.Unlock()
	if cb != nil {
		cb(p, true, l)
	}
	return err
}

// Level returns the pin's level and whether it is an output.
func (p *Pin) Level() (gpio.Level, bool) {
	l := p.Read()
	p.mu.Lock()
	defer p.mu.Unlock()
	return l, p.output
}

// Outs returns every level passed to Out since the last ResetOuts.
func (p *Pin) Outs() []gpio.Level {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]gpio.Level(nil), p.outs...)
}

// ResetOuts forgets the recorded levels.
func (p *Pin) ResetOuts() {
	p.mu.Lock()
	p.outs = nil
	p.mu.Unlock()
}

// PullNow returns the pull last set by In, under gpiotest's lock (its own
// Pull reads the field unlocked, which the race detector reports when a
// scanner goroutine is still running).
func (p *Pin) PullNow() gpio.Pull {
	p.Pin.Lock()
	defer p.Pin.Unlock()
	return p.P
}
