// Package keypadtest holds the fakes the keypad driver is tested with: a GPIO
// Pin shaped like periph's gpiotest.Pin, a Matrix that wires such pins into a
// diode-less key matrix (so ghosting happens as on real hardware), and a Clock
// whose time only moves when the test says so.
//
// Why not gpiotest itself: periph.io/x/conn/v3/gpio/gpiotest imports
// github.com/jonboulle/clockwork, which this module's go.mod/go.sum do not
// list; this Pin keeps gpiotest's field names (N, Num, L, P, EdgesChan) so a
// later switch is mechanical. It adds one thing gpiotest lacks and a matrix
// needs: an input's level may be computed by the wiring at Read time.
package keypadtest

import (
	"fmt"
	"sync"
	"time"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/physic"
	"periph.io/x/conn/v3/pin"
)

// Pin is a fake gpio.PinIO. Grab the embedded Mutex before touching the
// fields while the pin is in use.
type Pin struct {
	N   string
	Num int

	sync.Mutex
	L         gpio.Level       // level driven (output) or last read (input)
	P         gpio.Pull        // pull set by the last In
	Output    bool             // true after Out, false after In
	EdgesChan chan gpio.Level  // fake edges for WaitForEdge, as in gpiotest
	D         gpio.Duty        // PWM duty
	F         physic.Frequency // PWM frequency
	Outs      []gpio.Level     // every level passed to Out, in order

	// Sense, when set, computes the level Read returns while the pin is an
	// input; Matrix sets it on its sense lines. It is called without the
	// pin's lock held.
	Sense func() gpio.Level
}

var _ gpio.PinIO = (*Pin)(nil)

// String implements conn.Resource.
func (p *Pin) String() string { return fmt.Sprintf("%s(%d)", p.N, p.Num) }

// Halt implements conn.Resource; it does nothing.
func (p *Pin) Halt() error { return nil }

// Name implements pin.Pin.
func (p *Pin) Name() string { return p.N }

// Number implements pin.Pin.
func (p *Pin) Number() int { return p.Num }

// Function implements pin.Pin.
func (p *Pin) Function() string {
	p.Lock()
	defer p.Unlock()
	if p.Output {
		return string(gpio.OUT)
	}
	return string(gpio.IN)
}

// Func implements pin.PinFunc.
func (p *Pin) Func() pin.Func { return pin.Func(p.Function()) }

// SupportedFuncs implements pin.PinFunc.
func (p *Pin) SupportedFuncs() []pin.Func { return []pin.Func{gpio.IN, gpio.OUT} }

// SetFunc implements pin.PinFunc.
func (p *Pin) SetFunc(f pin.Func) error {
	switch f {
	case gpio.IN:
		return p.In(gpio.PullNoChange, gpio.NoEdge)
	case gpio.OUT:
		return p.Out(gpio.Low)
	}
	return fmt.Errorf("keypadtest: %s: unsupported function %q", p, f)
}

// In implements gpio.PinIn. A pull-up reads High and a pull-down Low unless
// Sense says otherwise.
func (p *Pin) In(pull gpio.Pull, edge gpio.Edge) error {
	p.Lock()
	defer p.Unlock()
	p.Output = false
	if pull != gpio.PullNoChange {
		p.P = pull
	}
	switch p.P {
	case gpio.PullUp:
		p.L = gpio.High
	case gpio.PullDown:
		p.L = gpio.Low
	}
	if edge != gpio.NoEdge && p.EdgesChan == nil {
		return fmt.Errorf("keypadtest: %s: set EdgesChan before asking for edges", p)
	}
	return nil
}

// Read implements gpio.PinIn.
func (p *Pin) Read() gpio.Level {
	p.Lock()
	sense, out := p.Sense, p.Output
	p.Unlock()
	if sense != nil && !out {
		l := sense()
		p.Lock()
		p.L = l
		p.Unlock()
		return l
	}
	p.Lock()
	defer p.Unlock()
	return p.L
}

// WaitForEdge implements gpio.PinIn over EdgesChan; a negative timeout waits
// forever, any other times out at once, since fakes have no real time.
func (p *Pin) WaitForEdge(timeout time.Duration) bool {
	if timeout < 0 {
		l := <-p.EdgesChan
		p.Lock()
		p.L = l
		p.Unlock()
		return true
	}
	select {
	case l := <-p.EdgesChan:
		p.Lock()
		p.L = l
		p.Unlock()
		return true
	default:
		return false
	}
}

// Pull implements gpio.PinIn.
func (p *Pin) Pull() gpio.Pull {
	p.Lock()
	defer p.Unlock()
	return p.P
}

// DefaultPull implements gpio.PinIn.
func (p *Pin) DefaultPull() gpio.Pull { return gpio.Float }

// Out implements gpio.PinOut and records the level in Outs.
func (p *Pin) Out(l gpio.Level) error {
	p.Lock()
	defer p.Unlock()
	p.Output = true
	p.L = l
	p.Outs = append(p.Outs, l)
	return nil
}

// PWM implements gpio.PinOut.
func (p *Pin) PWM(duty gpio.Duty, f physic.Frequency) error {
	p.Lock()
	defer p.Unlock()
	p.Output = true
	p.D, p.F = duty, f
	return nil
}

// Level returns the pin's current level and whether it is an output.
func (p *Pin) Level() (gpio.Level, bool) {
	p.Lock()
	defer p.Unlock()
	return p.L, p.Output
}
