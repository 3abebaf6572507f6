package keypad

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"periph.io/x/conn/v3/gpio"
)

// Step is one part of a Pattern: the indicator on or off for a while.
type Step struct {
	On  bool
	For time.Duration
}

// Pattern is a sequence of steps. Play always leaves the indicator off at
// the end, so a pattern need not end with an off step.
type Pattern []Step

// Patterns are the three signals the installer hears or sees.
type Patterns struct {
	Click   Pattern // a key was taken
	Success Pattern // a step finished well
	Failure Pattern // a step failed; look at the screen
}

// Default patterns. The buzzer's click is short enough not to slow typing;
// success is two short beeps and failure one long one, the convention most
// POS terminals follow so installers recognise them without looking. The
// LED's steps are longer because a 15 ms blink is not visible.
var (
	BuzzerPatterns = Patterns{
		Click:   Pattern{{true, 15 * time.Millisecond}},
		Success: Pattern{{true, 80 * time.Millisecond}, {false, 80 * time.Millisecond}, {true, 80 * time.Millisecond}},
		Failure: Pattern{{true, 600 * time.Millisecond}},
	}
	LEDPatterns = Patterns{
		Click:   Pattern{{true, 60 * time.Millisecond}},
		Success: Pattern{{true, time.Second}},
		Failure: Pattern{{true, 150 * time.Millisecond}, {false, 150 * time.Millisecond}, {true, 150 * time.Millisecond}, {false, 150 * time.Millisecond}, {true, 150 * time.Millisecond}},
	}
)

// IndicatorOption changes how NewLED and NewBuzzer build an indicator.
type IndicatorOption func(*Indicator)

// ActiveLow is for indicators wired to light or sound when the pin is Low
// (sinking current through the GPIO), common on POS boards.
func ActiveLow() IndicatorOption { return func(i *Indicator) { i.activeLow = true } }

// IndicatorClock makes the indicator time its patterns on c.
func IndicatorClock(c Clock) IndicatorOption { return func(i *Indicator) { i.clock = c } }

// WithPatterns replaces the default patterns.
func WithPatterns(p Patterns) IndicatorOption { return func(i *Indicator) { i.patterns = p } }

// Indicator is an on/off output on one GPIO pin that plays Patterns. The
// pin is the caller's: the indicator never closes or halts it.
// Patterns played from several goroutines take turns rather than mix.
type Indicator struct {
	pin       gpio.PinOut
	activeLow bool
	clock     Clock
	patterns  Patterns
	mu        sync.Mutex
}

func newIndicator(pin gpio.PinOut, p Patterns, opts []IndicatorOption) *Indicator {
	i := &Indicator{pin: pin, clock: SystemClock{}, patterns: p}
	for _, o := range opts {
		o(i)
	}
	return i
}

// LED is a status LED.
type LED struct{ *Indicator }

// NewLED returns an LED on pin with LEDPatterns unless told otherwise.
func NewLED(pin gpio.PinOut, opts ...IndicatorOption) *LED {
	return &LED{newIndicator(pin, LEDPatterns, opts)}
}

// Buzzer is an active buzzer: it sounds while its pin is on. A passive
// buzzer would need PWM, which the gpiochip backend does not offer.
type Buzzer struct{ *Indicator }

// NewBuzzer returns a buzzer on pin with BuzzerPatterns unless told otherwise.
func NewBuzzer(pin gpio.PinOut, opts ...IndicatorOption) *Buzzer {
	return &Buzzer{newIndicator(pin, BuzzerPatterns, opts)}
}

// ErrNoPin is returned by an indicator built without a pin.
var ErrNoPin = errors.New("keypad: indicator has no pin")

func (i *Indicator) set(on bool) error {
	if i.pin == nil {
		return ErrNoPin
	}
	l := gpio.Level(on != i.activeLow)
	if err := i.pin.Out(l); err != nil {
		return fmt.Errorf("keypad: indicator %s: %w", i.pin, err)
	}
	return nil
}

// Off switches the indicator off.
func (i *Indicator) Off() error {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.set(false)
}

// Play runs p and returns when it is over, or when ctx is done; either way
// the indicator is left off, since a buzzer left sounding is worse than a
// pattern cut short.
func (i *Indicator) Play(ctx context.Context, p Pattern) (err error) {
	i.mu.Lock()
	defer i.mu.Unlock()
	defer func() {
		if offErr := i.set(false); err == nil {
			err = offErr
		}
	}()
	for _, s := range p {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("keypad: indicator: %w", err)
		}
		if err := i.set(s.On); err != nil {
			return err
		}
		if s.For <= 0 {
			continue
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("keypad: indicator: %w", ctx.Err())
		case <-i.clock.After(s.For):
		}
	}
	return nil
}

// Click plays the key-click pattern.
func (i *Indicator) Click(ctx context.Context) error { return i.Play(ctx, i.patterns.Click) }

// Success plays the success pattern.
func (i *Indicator) Success(ctx context.Context) error { return i.Play(ctx, i.patterns.Success) }

// Failure plays the failure pattern.
func (i *Indicator) Failure(ctx context.Context) error { return i.Play(ctx, i.patterns.Failure) }
