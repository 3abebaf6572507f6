// Package serialporttest is what the tests of a device behind a serial line
// share: the line opened through serialport (tarm/serial) as the agent opens
// it, with its presence changes on a channel, and the check that a reader
// rides out the device being unplugged and plugged back in.
package serialporttest

import (
	"context"
	"testing"
	"time"

	"github.com/posagent/posagent/drivers/serialport"
)

// Open opens the line cfg describes, reopening every 10 ms while the device
// is away, and returns the port and its presence changes (true: back, false:
// gone). The port is closed when the test ends.
func Open(t testing.TB, ctx context.Context, cfg serialport.Config) (*serialport.Port, <-chan bool) {
	t.Helper()
	present := make(chan bool, 16)
	p, err := serialport.Open(ctx, cfg, serialport.Options{
		Backoff: func(int) time.Duration { return 10 * time.Millisecond },
		Event:   func(e serialport.Event) { present <- e.Present },
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p, present
}

// Pluggable is a device emulator that can be pulled out and put back in.
type Pluggable interface {
	Unplug() error
	Plug() error
}

// Replug unplugs dev and, while it is away, starts read, which must wait for
// the device's next input. It checks that the port reports the device gone,
// plugs it back, waits until the port reports it present, calls send to
// make that input, and fails unless the read that started while the device
// was away returns nil. present is Open's channel, with no event pending.
func Replug(t testing.TB, ctx context.Context, dev Pluggable, present <-chan bool, read, send func() error) {
	t.Helper()
	if err := dev.Unplug(); err != nil {
		t.Fatal(err)
	}
	got := make(chan error, 1)
	go func() { got <- read() }()
	select {
	case p := <-present:
		if p {
			t.Fatal("unplug not noticed")
		}
	case <-ctx.Done():
		t.Fatal("unplug not noticed")
	}
	if err := dev.Plug(); err != nil {
		t.Fatal(err)
	}
	select {
	case p := <-present:
		if !p {
			t.Fatal("unexpected event")
		}
	case <-ctx.Done():
		t.Fatal("device not reopened")
	}
	if err := send(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-got:
		if err != nil {
			t.Fatalf("read after replug: %v", err)
		}
	case <-ctx.Done():
		t.Fatal("read after replug: no answer")
	}
}
