package swipe

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/posagent/posagent/agent/sim/devsim"
	"github.com/posagent/posagent/drivers/magstripe"
	"github.com/posagent/posagent/drivers/serialport"
	"github.com/posagent/posagent/drivers/serialport/serialporttest"
	"github.com/posagent/posagent/provisioning"
	"github.com/posagent/posagent/provisioning/pan"
)

// TestThroughSerial reads cards from the emulated reader behind a pty,
// opened through tarm/serial as the agent opens it: good cards, chip cards
// refused and then taken as a fallback, damaged tracks, garbage between
// frames, and the reader unplugged and plugged back in mid-wait.
func TestThroughSerial(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	emu, err := devsim.NewMagReader(filepath.Join(t.TempDir(), "ttyMSR"), magstripe.MagTek)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { emu.Close() })
	port, present := serialporttest.Open(t, ctx, serialport.Config{Device: emu.Path()})
	s := New(port, Config{Framing: magstripe.MagTek, Now: func() time.Time { return now }})
	read := func(send func() error) (provisioning.Card, error) {
		t.Helper()
		if err := send(); err != nil {
			t.Fatal(err)
		}
		return s.ReadCard(ctx, provisioning.CardRequest{Purpose: provisioning.PurposeTestSale})
	}
	swipe := func(name string) func() error { return func() error { return emu.SwipeNamed(name) } }

	c, err := read(swipe("good"))
	if err != nil {
		t.Fatal(err)
	}
	checkGood(t, c, provisioning.EntrySwipe, "ZHANG/SAN")
	if _, err := read(swipe("chip")); !errors.Is(err, ErrInsertChip) {
		t.Fatalf("chip card: %v", err)
	}
	s.MarkChipFailed(pan.MustParse(testPAN))
	if c, err = read(swipe("chip")); err != nil {
		t.Fatal(err)
	}
	checkGood(t, c, provisioning.EntryFallback, "ZHANG/SAN")
	if _, err := read(swipe("damaged")); !errors.Is(err, ErrSwipeAgain) {
		t.Fatalf("damaged: %v", err)
	}
	c, err = read(func() error {
		if err := emu.Send([]byte("\x00\xff junk \x02\x1b;62179000")); err != nil { // noise, a cut-off frame
			return err
		}
		return emu.SwipeNamed("good")
	})
	if err != nil || c.PAN.IsZero() {
		t.Fatalf("after garbage: %+v %v", c, err)
	}

	// Unplugged while ReadCard waits, and back: the same ReadCard gets the
	// next swipe.
	serialporttest.Replug(t, ctx, emu, present, func() error {
		c, err := s.ReadCard(ctx, provisioning.CardRequest{Purpose: provisioning.PurposeTestSale})
		if err == nil && c.Entry != provisioning.EntrySwipe {
			err = errors.New("wrong entry mode")
		}
		return err
	}, swipe("good"))
}
