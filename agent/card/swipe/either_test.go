package swipe

import (
	"context"
	"errors"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/posagent/posagent/drivers/magstripe"
	"github.com/posagent/posagent/provisioning"
	"github.com/posagent/posagent/provisioning/pan"
)

// chipSource is a fake chip reader: each ReadCard takes the next answer the
// test sends, or ends with ctx. Cancelled counts reads ended by ctx.
type chipSource struct {
	answers   chan chipAnswer
	mu        sync.Mutex
	cancelled int
}

// chipAnswer is one answer of the fake chip reader.
type chipAnswer struct {
	card provisioning.Card
	err  error
}

func (c *chipSource) Pay(ctx context.Context, r provisioning.CardRequest) (provisioning.Payment, error) {
	card, err := c.ReadCard(ctx, r)
	if err != nil {
		return nil, err
	}
	return provisioning.NoChip(card, nil), nil
}

func (c *chipSource) ReadCard(ctx context.Context, _ provisioning.CardRequest) (provisioning.Card, error) {
	select {
	case r := <-c.answers:
		return r.card, r.err
	case <-ctx.Done():
		c.mu.Lock()
		c.cancelled++
		c.mu.Unlock()
		return provisioning.Card{}, ctx.Err()
	}
}

var errMute = errors.New("chip does not answer")

// timeouts is a line that times out on every read until the test sends
// something, as a serial port with a read timeout does. Unlike line it
// never blocks, so a swipe read notices a cancelled context.
type timeouts struct{ ch chan []byte }

func (l timeouts) Read(p []byte) (int, error) {
	select {
	case b := <-l.ch:
		return copy(p, b), nil
	case <-time.After(time.Millisecond):
		return 0, timeoutErr{}
	}
}

func (l timeouts) swipe(p interface{ Tracks() []string }) {
	l.ch <- magstripe.MagTek.Encode('0', p.Tracks()...)
}

type notes struct {
	mu   sync.Mutex
	errs []error
	seen chan error
}

func (n *notes) notify(_ string, err error) {
	n.mu.Lock()
	n.errs = append(n.errs, err)
	n.mu.Unlock()
	n.seen <- err
}

func newEither() (*Either, *chipSource, timeouts, *notes) {
	chip := &chipSource{answers: make(chan chipAnswer, 1)}
	l := timeouts{ch: make(chan []byte, 8)}
	n := &notes{seen: make(chan error, 16)}
	e := &Either{Chip: chip, Swipe: New(l, Config{Framing: magstripe.MagTek, Now: func() time.Time { return now }}),
		ChipFailed: func(err error) bool { return errors.Is(err, errMute) }, Notify: n.notify}
	return e, chip, l, n
}

func TestEitherChipFirst(t *testing.T) {
	e, chip, _, _ := newEither()
	chip.answers <- chipAnswer{card: provisioning.Card{PAN: pan.MustParse(testPAN), AID: "A000000333010101"}}
	c, err := e.ReadCard(context.Background(), provisioning.CardRequest{Purpose: "x"})
	if err != nil || c.Entry != provisioning.EntryChip || c.AID == "" {
		t.Fatalf("%+v %v", c, err)
	}
}

func TestEitherSwipeFirst(t *testing.T) {
	e, chip, l, _ := newEither()
	l.swipe(good)
	c, err := e.ReadCard(context.Background(), provisioning.CardRequest{Purpose: "x"})
	if err != nil || c.Entry != provisioning.EntrySwipe {
		t.Fatalf("%+v %v", c, err)
	}
	chip.mu.Lock()
	defer chip.mu.Unlock()
	if chip.cancelled != 1 {
		t.Errorf("chip read not stopped: %d", chip.cancelled)
	}
}

// TestEitherChipCardSwiped: a chip card swiped is sent to its chip, and the
// chip read that follows gives the card.
func TestEitherChipCardSwiped(t *testing.T) {
	e, chip, l, n := newEither()
	done := make(chan error, 1)
	go func() {
		c, err := e.ReadCard(context.Background(), provisioning.CardRequest{Purpose: "x"})
		if err == nil && c.Entry != provisioning.EntryChip {
			err = errors.New("not read by chip")
		}
		done <- err
	}()
	l.swipe(chip6)
	if err := <-n.seen; !errors.Is(err, ErrInsertChip) {
		t.Fatalf("notified %v", err)
	}
	l.swipe(damaged)
	if err := <-n.seen; !errors.Is(err, ErrSwipeAgain) {
		t.Fatalf("notified %v", err)
	}
	chip.answers <- chipAnswer{card: provisioning.Card{PAN: pan.MustParse(testPAN)}}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestEitherFallback: the chip fails, the installer is told to swipe, and
// the chip card's swipe is a fallback; the permission ends with the read.
func TestEitherFallback(t *testing.T) {
	e, cs, l, n := newEither()
	cs.answers <- chipAnswer{err: errMute}
	done := make(chan provisioning.Card, 1)
	go func() {
		c, err := e.ReadCard(context.Background(), provisioning.CardRequest{Purpose: "x"})
		if err != nil {
			t.Error(err)
		}
		done <- c
	}()
	if err := <-n.seen; !errors.Is(err, ErrChipFailed) || !errors.Is(err, errMute) {
		t.Fatalf("notified %v", err)
	}
	l.swipe(chip)
	if c := <-done; c.Entry != provisioning.EntryFallback || c.Track2.IsZero() {
		t.Fatalf("card %+v", c)
	}
	l.swipe(chip)
	if _, err := e.Swipe.ReadCard(context.Background(), provisioning.CardRequest{Purpose: "x"}); !errors.Is(err, ErrInsertChip) {
		t.Errorf("fallback still allowed: %v", err)
	}
}

func TestEitherErrors(t *testing.T) {
	// A chip error that is not a chip failure (card pulled out) is returned.
	e, chip, _, _ := newEither()
	errRemoved := errors.New("card removed")
	chip.answers <- chipAnswer{err: errRemoved}
	if _, err := e.ReadCard(context.Background(), provisioning.CardRequest{Purpose: "x"}); !errors.Is(err, errRemoved) {
		t.Errorf("card removed: %v", err)
	}
	// Cancelled.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := e.ReadCard(ctx, provisioning.CardRequest{Purpose: "x"}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
	// The magstripe line ends: the chip is still waited for.
	chip2 := &chipSource{answers: make(chan chipAnswer, 1)}
	e2 := &Either{Chip: chip2, Swipe: New(eofReader{}, Config{Framing: magstripe.MagTek})}
	chip2.answers <- chipAnswer{card: provisioning.Card{AID: "A000000333010101"}}
	if c, err := e2.ReadCard(context.Background(), provisioning.CardRequest{Purpose: "x"}); err != nil || c.AID == "" {
		t.Errorf("after the line ended: %+v %v", c, err)
	}
	// Both fail: the chip's failure and the line's are both said.
	chip2.answers <- chipAnswer{err: errMute}
	e2.ChipFailed = func(error) bool { return true }
	if _, err := e2.ReadCard(context.Background(), provisioning.CardRequest{Purpose: "x"}); !errors.Is(err, errMute) || !errors.Is(err, ErrLineClosed) {
		t.Errorf("both failed: %v", err)
	}
	if _, err := (&Either{}).ReadCard(context.Background(), provisioning.CardRequest{Purpose: "x"}); err == nil {
		t.Error("empty Either read a card")
	}
}

type eofReader struct{}

func (eofReader) Read([]byte) (int, error) { return 0, io.EOF }

// chipPayment marks a payment as the chip source's own.
type chipPayment struct {
	provisioning.Payment
	closed *int
}

func (p chipPayment) Close() error { *p.closed++; return nil }

// lateChip answers Pay only after the read was cancelled, with a session
// it opened anyway: the card came in as the swipe won.
type lateChip struct {
	started chan struct{}
	closed  int
}

func (c *lateChip) ReadCard(ctx context.Context, r provisioning.CardRequest) (provisioning.Card, error) {
	return provisioning.Card{}, errors.New("not used")
}

func (c *lateChip) Pay(ctx context.Context, r provisioning.CardRequest) (provisioning.Payment, error) {
	close(c.started)
	<-ctx.Done()
	return chipPayment{Payment: provisioning.NoChip(provisioning.Card{PAN: pan.MustParse(testPAN)}, nil), closed: &c.closed}, nil
}

// TestEitherPay: a chip card pays through the chip source's own session, a
// swiped one without a chip session, and a chip session that opened while
// the swipe won is closed rather than left open.
func TestEitherPay(t *testing.T) {
	t.Run("chip", func(t *testing.T) {
		e, chip, _, _ := newEither()
		chip.answers <- chipAnswer{card: provisioning.Card{PAN: pan.MustParse(testPAN), AID: "A000000333010101"}}
		p, err := e.Pay(context.Background(), provisioning.CardRequest{Purpose: "x", Amount: 1})
		if err != nil || p.Card().Entry != provisioning.EntryChip || p.Card().AID == "" {
			t.Fatalf("%v %v", p, err)
		}
	})
	t.Run("swipe", func(t *testing.T) {
		e, _, l, _ := newEither()
		l.swipe(good)
		p, err := e.Pay(context.Background(), provisioning.CardRequest{Purpose: "x", Amount: 1})
		if err != nil || p.Card().Entry != provisioning.EntrySwipe || p.Card().Track2.IsZero() {
			t.Fatalf("%v %v", p, err)
		}
	})
	t.Run("late chip closed", func(t *testing.T) {
		e, _, l, _ := newEither()
		late := &lateChip{started: make(chan struct{})}
		e.Chip = late
		go func() {
			<-late.started
			l.swipe(good)
		}()
		p, err := e.Pay(context.Background(), provisioning.CardRequest{Purpose: "x", Amount: 1})
		if err != nil || p.Card().Entry != provisioning.EntrySwipe {
			t.Fatalf("%v %v", p, err)
		}
		if late.closed != 1 {
			t.Fatalf("the chip session that opened late was closed %d times, want 1", late.closed)
		}
	})
}
