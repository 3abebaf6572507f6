package keypad

import (
	"errors"
	"fmt"

	"periph.io/x/conn/v3/driver/driverreg"
	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpioreg"
	// Only the gpiochip character-device driver, not periph.io/x/host/v3's
	// every-board bundle (Allwinner, BCM283x, AM335x … memory-mapped
	// drivers): a terminal's GPIO is reached through /dev/gpiochip*, and the
	// bundle costs some 400 KiB of the 8 MiB firmware budget.
	_ "periph.io/x/host/v3/gpioioctl"
)

// ErrNoGPIO is returned by OpenHost when the host has no GPIO driver loaded
// (no /dev/gpiochip*, as in a container or on a developer's PC). Callers
// treat it as "no keypad here" and run degraded, as periph's drivers do.
var ErrNoGPIO = errors.New("keypad: host has no GPIO")

// Test seams over the host: what host.Init found and the pin registry.
var (
	hostInit = func() (loaded int, err error) {
		if _, err := driverreg.Init(); err != nil {
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

// openHostPin finds one named GPIO on this machine, for an indicator.
func openHostPin(name string) (gpio.PinIO, error) {
	n, err := hostInit()
	if err != nil {
		return nil, fmt.Errorf("keypad: host init: %w", err)
	}
	if n == 0 {
		return nil, ErrNoGPIO
	}
	p := hostLookup(name)
	if p == nil {
		return nil, fmt.Errorf("keypad: no GPIO pin named %q", name)
	}
	return p, nil
}

// OpenHostBuzzer opens a buzzer on this machine's GPIO pin name (as
// gpioreg.ByName knows it, e.g. "GPIO5"), so the agent wires indicators from
// its config without importing periph. Like OpenHost it returns ErrNoGPIO on
// a machine without GPIO, for the caller to run without a buzzer.
func OpenHostBuzzer(name string, opts ...IndicatorOption) (*Buzzer, error) {
	p, err := openHostPin(name)
	if err != nil {
		return nil, err
	}
	return NewBuzzer(p, opts...), nil
}

// OpenHostLED is OpenHostBuzzer for an LED.
func OpenHostLED(name string, opts ...IndicatorOption) (*LED, error) {
	p, err := openHostPin(name)
	if err != nil {
		return nil, err
	}
	return NewLED(p, opts...), nil
}
