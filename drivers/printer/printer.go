package printer

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/posagent/posagent/agent/receipt"
	"github.com/posagent/posagent/provisioning"
)

// Options configure a Printer. Zero values pick the defaults noted.
type Options struct {
	// Width is the paper width in display columns; 0 means slip.DefaultWidth
	// (a 58 mm printer's standard font).
	Width int
	// StatusTimeout bounds the wait for each status answer; 0 means 1 s. A
	// printer answers DLE EOT within milliseconds even while it prints.
	StatusTimeout time.Duration
	// Feed is the number of lines fed before the cut, so the last line clears
	// the cutter; 0 means 4.
	Feed int
	// Now is the clock status timeouts are measured with; nil means time.Now.
	Now func() time.Time
	// Baud is the serial line's speed, 0 when unknown or not a UART (USB).
	// The status check after a copy waits that copy's transmission time
	// (10 bits a byte) on top of StatusTimeout: the request is queued behind
	// the copy's bytes, and a 58 mm slip takes about 1.5 s at 9600 baud.
	Baud int
}

// Printer is an ESC/POS receipt printer on a line it reads status back from.
// It is safe for concurrent use; jobs and status queries are serialised.
type Printer struct {
	rw   io.ReadWriter
	opts Options
	mu   sync.Mutex
}

var (
	_ provisioning.Printer    = (*Printer)(nil)
	_ provisioning.SelfTester = (*Printer)(nil)
)

// New returns a Printer writing to and reading status from rw. It does not
// take ownership: closing rw is the caller's business.
func New(rw io.ReadWriter, opts Options) *Printer {
	if opts.Width <= 0 {
		opts.Width = receipt.DefaultWidth
	}
	if opts.StatusTimeout <= 0 {
		opts.StatusTimeout = time.Second
	}
	if opts.Feed <= 0 {
		opts.Feed = 4
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
// shut and no fault. The flow runs it before the install starts.
func (p *Printer) SelfTest(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.check(ctx, "", "self test")
}

// StatusError is a status check that stopped a print job.
type StatusError struct {
	Copy   receipt.Copy // the copy being printed; empty for a self test
	When   string       // "before" or "after" the copy, or "self test"
	Status Status
	Err    error // ErrPaperEnd, ErrCoverOpen, ErrFault, ErrOffline, ErrNoResponse …
}

// Error says what to fix and which copy it stopped.
func (e *StatusError) Error() string {
	if e.Copy == "" {
		return fmt.Sprintf("%v (%s)", e.Err, e.When)
	}
	return fmt.Sprintf("%v (%s %s copy)", e.Err, e.When, e.Copy)
}

// Unwrap exposes the condition (ErrPaperEnd …) to errors.Is.
func (e *StatusError) Unwrap() error { return e.Err }

func (p *Printer) check(ctx context.Context, c receipt.Copy, when string) error {
	return p.checkWithin(ctx, c, when, p.opts.StatusTimeout)
}

// lineTime is how long n bytes take to cross the line (8N1).
func (p *Printer) lineTime(n int) time.Duration {
	if p.opts.Baud <= 0 {
		return 0
	}
	return time.Duration(n) * 10 * time.Second / time.Duration(p.opts.Baud)
}

func (p *Printer) checkWithin(ctx context.Context, c receipt.Copy, when string, timeout time.Duration) error {
	s, err := queryStatus(ctx, p.rw, timeout, p.opts.Now)
	if err == nil {
		err = s.Err()
	}
	if err != nil {
		return &StatusError{Copy: c, When: when, Status: s, Err: err}
	}
	return nil
}

// PrintReceipt prints the merchant and cardholder copies of r's slip, each
// framed by status checks: before it, so no copy starts without paper, and
// after it, so paper that ran out mid-copy is an error rather than a slip that
// silently lost its bottom half. A failed job returns a *StatusError; the flow
// then asks for the fault to be fixed and calls again with r.Duplicate set,
// which prints both copies marked 重打印 DUPLICATED.
//
// A real printer answers DLE EOT at once, even with data still in its buffer,
// so the check after a copy sees paper running out while that copy's last
// lines are still being printed only if the sensor tripped by then; the next
// copy's check before it catches the rest.
func (p *Printer) PrintReceipt(ctx context.Context, r provisioning.Receipt) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, s := range receipt.Copies(r) {
		if err := p.check(ctx, s.Copy, "before"); err != nil {
			return err
		}
		b := Encode(s, p.opts.Width, p.opts.Feed)
		if _, err := p.rw.Write(b); err != nil {
			return fmt.Errorf("printer: %s copy: %w", s.Copy, err)
		}
		if err := p.checkWithin(ctx, s.Copy, "after", p.opts.StatusTimeout+p.lineTime(len(b))); err != nil {
			return err
		}
	}
	return nil
}

// Encode is one copy of a slip as ESC/POS: reset, the lines of slip.Render
// left-justified (they carry their own centring), the title and the amount in
// bold double height, feed lines to clear the cutter, and a partial cut.
//
// Double height, not double width: the layout is measured in columns, and
// only a taller line keeps them.
func Encode(s receipt.Slip, width, feed int) []byte {
	lines := receipt.Render(s, width)
	var e Encoder
	e.Init().Align(Left)
	amount := provisioning.FormatRMB(s.Amount)
	on := false
	for i, line := range lines {
		t := strings.TrimSpace(line)
		emph := (i < 2 && (t == "银联POS签购单" || t == "POS SALES SLIP")) ||
			(t == amount && i > 0 && strings.HasPrefix(lines[i-1], "金额"))
		if emph != on { // switch only at the edges of an emphasised block
			e.Bold(emph).Size(1, 1+b2i(emph))
			on = emph
		}
		e.Line(line)
	}
	if on {
		e.Bold(false).Size(1, 1)
	}
	return e.Feed(feed).Cut().Bytes()
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
