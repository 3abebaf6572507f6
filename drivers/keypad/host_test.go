package keypad

import (
	"errors"
	"testing"

	"github.com/posagent/posagent/drivers/keypad/keypadtest"
	"periph.io/x/conn/v3/gpio"
)

// TestOpenHostNoGPIO runs the real host.Init. On a machine without a
// gpiochip (CI containers, developer PCs) it must return ErrNoGPIO, not
// panic and not fail later in Key.
func TestOpenHostNoGPIO(t *testing.T) {
	if n, err := hostInit(); err != nil || n > 0 {
		t.Skipf("host has GPIO (%d pins, err %v): not the no-GPIO case", n, err)
	}
	m, err := OpenHost(testConfig(RowsDrive))
	if !errors.Is(err, ErrNoGPIO) || m != nil {
		t.Fatalf("OpenHost = %v, %v; want ErrNoGPIO", m, err)
	}
}

func TestOpenHostSeams(t *testing.T) {
	init0, lookup0 := hostInit, hostLookup
	t.Cleanup(func() { hostInit, hostLookup = init0, lookup0 })

	boom := errors.New("driver failed")
	hostInit = func() (int, error) { return 0, boom }
	if _, err := OpenHost(testConfig(RowsDrive)); !errors.Is(err, boom) {
		t.Fatalf("init error: %v", err)
	}

	hostInit = func() (int, error) { return 8, nil }
	hostLookup = func(name string) gpio.PinIO {
		if name == "R3" {
			return nil
		}
		return &keypadtest.Pin{N: name}
	}
	if _, err := OpenHost(testConfig(RowsDrive)); err == nil || errors.Is(err, ErrNoGPIO) {
		t.Fatalf("missing pin: %v", err)
	}
	hostLookup = func(name string) gpio.PinIO { return &keypadtest.Pin{N: name} }
	m, err := OpenHost(testConfig(RowsDrive))
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
}
