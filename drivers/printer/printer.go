package printer

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"
)

// Options configure a Printer. Zero values pick the defaults noted.
type Options struct {
	// StatusTimeout bounds the wait for each status answer; 0 means 1 s. A
	// printer answers DLE EOT within milliseconds even while it prints.
	StatusTimeout time.Duration
	// Feed is the number of lines fed before the cut, so the last line clears
	// the cutter; 0 means DefaultFeed.
	Feed int
	// Now is the clock status timeouts are measured with; nil means time.Now.
	Now func() time.Time
	// Baud is the serial line's speed, 0 when unknown or not a UART (USB).
	// The status check after a page waits that page's transmission time
	// (10 bits a byte) on top of StatusTimeout: the request is queued behind
	// the page's bytes, and a 58 mm sales slip takes about 1.5 s at 9600 baud.
	Baud int
}

// Printer is an ESC/POS receipt printer on a line it reads status back from.
// It is safe for concurrent use; pages and status queries are serialised.
type Printer struct {
	rw   io.ReadWriter
	opts Options
	mu   sync.Mutex
}

// New returns a Printer writing to and reading status from rw. It does not
// take ownership: closing rw is the caller's business.
func New(rw io.ReadWriter, opts Options) *Printer {
	if opts.StatusTimeout <= 0 {
		opts.StatusTimeout = time.Second
	}
	if opts.Feed <= 0 {
		opts.Feed = DefaultFeed
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Printer{rw: rw, opts: opts}
}

// Status asks the printer for its real-time status (DLE EOT 1, 2 and 4).
func (p *Printer) Status(ctx context.Context) (Status, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return queryStatus(ctx, p.rw, p.opts.StatusTimeout, p.opts.Now)
}

// SelfTest checks the printer is ready: it answers and has paper, the cover
// shut and no fault. A printer that is not returns a *StatusError.
func (p *Printer) SelfTest(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.check(ctx, "self test", p.opts.StatusTimeout)
}

// StatusError is a status check that stopped printing.
type StatusError struct {
	When   string // "before" or "after" the page, or "self test"
	Status Status
	Err    error // ErrPaperEnd, ErrCoverOpen, ErrFault, ErrOffline, ErrNoResponse …
}

// Error says what to fix and when the check found it.
func (e *StatusError) Error() string {
	if e.When == "before" || e.When == "after" {
		return fmt.Sprintf("%v (%s printing)", e.Err, e.When)
	}
	return fmt.Sprintf("%v (%s)", e.Err, e.When)
}

// Unwrap exposes the condition (ErrPaperEnd …) to errors.Is, and through it
// the failure code (Condition.FailureCode) to errors.As.
func (e *StatusError) Unwrap() error { return e.Err }

// lineTime is how long n bytes take to cross the line (8N1).
func (p *Printer) lineTime(n int) time.Duration {
	if p.opts.Baud <= 0 {
		return 0
	}
	return time.Duration(n) * 10 * time.Second / time.Duration(p.opts.Baud)
}

func (p *Printer) check(ctx context.Context, when string, timeout time.Duration) error {
	s, err := queryStatus(ctx, p.rw, timeout, p.opts.Now)
	if err == nil {
		err = s.Err()
	}
	if err != nil {
		return &StatusError{When: when, Status: s, Err: err}
	}
	return nil
}

// Print prints pg, feeds and cuts (see Encode), framed by status checks:
// before it, so no page starts without paper, and after it, so paper that
// ran out mid-page is an error rather than a page that silently lost its
// bottom half. A failed check returns a *StatusError; what to print again
// once the fault is fixed is the caller's choice. Copies are pages printed
// one after another.
//
// A real printer answers DLE EOT at once, even with data still in its buffer,
// so the check after a page sees paper running out while that page's last
// lines are still being printed only if the sensor tripped by then; the next
// page's check before it catches the rest.
func (p *Printer) Print(ctx context.Context, pg Page) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.check(ctx, "before", p.opts.StatusTimeout); err != nil {
		return err
	}
	b := Encode(pg, p.opts.Feed)
	if _, err := p.rw.Write(b); err != nil {
		return fmt.Errorf("printer: write: %w", err)
	}
	return p.check(ctx, "after", p.opts.StatusTimeout+p.lineTime(len(b)))
}
