package keypad

import (
	"errors"
	"testing"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpiotest"
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
		return &gpiotest.Pin{N: name}
	}
	if _, err := OpenHost(testConfig(RowsDrive)); err == nil || errors.Is(err, ErrNoGPIO) {
		t.Fatalf("missing pin: %v", err)
	}
	hostLookup = func(name string) gpio.PinIO { return &gpiotest.Pin{N: name} }
	m, err := OpenHost(testConfig(RowsDrive))
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestOpenHostIndicators(t *testing.T) {
	init0, lookup0 := hostInit, hostLookup
	t.Cleanup(func() { hostInit, hostLookup = init0, lookup0 })

	hostInit = func() (int, error) { return 0, nil }
	if _, err := OpenHostBuzzer("GPIO5"); !errors.Is(err, ErrNoGPIO) {
		t.Fatalf("no GPIO: %v", err)
	}
	boom := errors.New("driver failed")
	hostInit = func() (int, error) { return 0, boom }
	if _, err := OpenHostLED("GPIO6"); !errors.Is(err, boom) {
		t.Fatalf("init error: %v", err)
	}
	hostInit = func() (int, error) { return 8, nil }
	pins := map[string]*gpiotest.Pin{"GPIO5": {N: "GPIO5"}, "GPIO6": {N: "GPIO6"}}
	hostLookup = func(name string) gpio.PinIO {
		if p, ok := pins[name]; ok {
			return p
		}
		return nil
	}
	if _, err := OpenHostBuzzer("GPIO7"); err == nil {
		t.Fatal("missing pin accepted")
	}
	b, err := OpenHostBuzzer("GPIO5", ActiveLow())
	if err != nil {
		t.Fatal(err)
	}
	// Off on an active-low buzzer is High.
	if err := b.Off(); err != nil || pins["GPIO5"].Read() != gpio.High {
		t.Fatalf("Off: %v, level %s", err, pins["GPIO5"].Read())
	}
	l, err := OpenHostLED("GPIO6")
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Off(); err != nil || pins["GPIO6"].Read() != gpio.Low {
		t.Fatalf("LED Off: %v", err)
	}
}
