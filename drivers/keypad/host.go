package keypad

import (
	"errors"
	"fmt"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpioreg"
	"periph.io/x/host/v3"
)

// ErrNoGPIO is returned by OpenHost when the host has no GPIO driver loaded
// (no /dev/gpiochip*, as in a container or on a developer's PC). Callers
// treat it as "no keypad here" and run degraded, as periph's drivers do.
var ErrNoGPIO = errors.New("keypad: host has no GPIO")

// Test seams over the host: what host.Init found and the pin registry.
var (
	hostInit = func() (loaded int, err error) {
		if _, err := host.Init(); err != nil {
			return 0, err
		}
		return len(gpioreg.All()), nil
	}
	hostLookup = func(name string) gpio.PinIO { return gpioreg.ByName(name) }
)

// OpenHost opens the matrix keypad described by cfg on this machine's GPIO
// (the gpiochip character device, through periph.io/x/host/v3). It returns
// an error wrapping ErrNoGPIO when the host has no GPIO at all, and one
// naming the field when a pin is missing; it never panics.
func OpenHost(cfg Config, opts ...Option) (*Matrix, error) {
	// Validate first: a typo in the config should read as one, even on a
	// machine without GPIO.
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	n, err := hostInit()
	if err != nil {
		return nil, fmt.Errorf("keypad: host init: %w", err)
	}
	if n == 0 {
		return nil, ErrNoGPIO
	}
	return Open(cfg, hostLookup, opts...)
}
