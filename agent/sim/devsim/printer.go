package devsim

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/posagent/posagent/agent/sim/slipimage"
	"github.com/posagent/posagent/drivers/printer"
)

// Printer emulates an ESC/POS receipt printer: it decodes what it is sent,
// answers DLE EOT status requests at once from its state, and keeps each slip
// that reached a cut with paper in as UTF-8 text (also written to Dir), and,
// once SetPictures is called, as a PNG picture of the paper in Dir too.
type Printer struct {
	line *line
	// Dir, when set, receives each slip as slip-NNN.txt.
	dir string

	mu       sync.Mutex
	cond     *sync.Cond
	dec      printer.Decoder
	status   printer.Status
	outAfter int // lines until the paper runs out; 0 means never
	lost     bool
	slips    []string
	pictures *slipimage.Renderer
	pngs     []string // picture of each slip, "" when none was written (yet)
	drawing  int      // pictures queued and not yet written
	onSlip   func(PrintedSlip)
	err      error // why the read loop stopped
	done     chan struct{}
	// baud, when set, is the serial line's speed: bytes arrive no faster
	// than 10 bits each, as on a real UART (a pty has no speed).
	baud     int
	lineTime time.Duration // total time bytes spent crossing the line

	// Pictures are drawn by their own goroutine: drawing takes longer than
	// a driver waits for a status answer, and a real printer answers DLE
	// EOT at once whatever it is doing.
	jobs  chan pictureJob
	drawn chan struct{}
}

type pictureJob struct {
	slip PrintedSlip
	page printer.Page
	r    *slipimage.Renderer
}

// NewPrinter publishes an emulated printer at link; slips go to dir when set.
func NewPrinter(link, dir string) (*Printer, error) {
	l, err := newLine(link)
	if err != nil {
		return nil, err
	}
	p := &Printer{line: l, dir: dir, done: make(chan struct{}),
		jobs: make(chan pictureJob, 64), drawn: make(chan struct{})}
	p.cond = sync.NewCond(&p.mu)
	p.dec.Query = p.answer
	p.dec.CutPage = p.cut
	p.dec.Feed = p.feed
	go p.loop()
	go p.draw()
	return p, nil
}

// Path is where the driver opens the printer.
func (p *Printer) Path() string { return p.line.link }

// SetPaperOut takes the paper out (true) or loads it (false).
func (p *Printer) SetPaperOut(out bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.status.PaperEnd = out
	p.outAfter = 0
}

// PrintedSlip is a slip that came out of the printer.
type PrintedSlip struct {
	N       int    // numbered from 1
	Text    string // UTF-8, as on the paper
	Picture string // path of its PNG, "" when none was written
}

// OnSlip sets a function told of each slip printed, in order, once its text
// and picture are written. It is called from the emulator's goroutines and
// must not call the Printer.
func (p *Printer) OnSlip(f func(PrintedSlip)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.onSlip = f
}

// SetPictures makes the printer also write each slip as slip-NNN.png in its
// directory, drawn by r from the formatting it was sent (nil turns it off).
func (p *Printer) SetPictures(r *slipimage.Renderer) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.pictures = r
}

// Picture is the path of slip n's picture (numbered from 1), or "" when
// none was written (no directory, pictures off, or the write failed: see
// Err). Pictures are written a little after the slip's text: see
// WaitPictures.
func (p *Printer) Picture(n int) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if n < 1 || n > len(p.pngs) {
		return ""
	}
	return p.pngs[n-1]
}

// WaitPictures waits until every picture of the slips printed so far is
// written (or failed), so Picture can be asked about them.
func (p *Printer) WaitPictures(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() {
		p.mu.Lock()
		p.cond.Broadcast()
		p.mu.Unlock()
	})
	defer stop()
	p.mu.Lock()
	defer p.mu.Unlock()
	for p.drawing > 0 {
		if err := ctx.Err(); err != nil {
			return err
		}
		p.cond.Wait()
	}
	return nil
}

// SetBaud makes the line carry bytes at baud (8N1: 10 bits a byte) from now
// on; 0 is a pty's unlimited speed.
func (p *Printer) SetBaud(baud int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.baud = baud
}

// LineTime is how long the bytes received so far took to cross the line at
// its set speed: the printer I/O a bench counts as simulated device time.
func (p *Printer) LineTime() time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.lineTime
}

// SetCoverOpen opens or shuts the cover.
func (p *Printer) SetCoverOpen(open bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.status.CoverOpen = open
}

// PaperOutAfter lets the paper run out after n more printed lines: the rest
// of that slip is lost, as on a real roll.
func (p *Printer) PaperOutAfter(n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.outAfter = n
}

// Slips returns the slips printed so far.
func (p *Printer) Slips() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.slips...)
}

// WaitSlips waits until at least n slips are printed and returns them.
func (p *Printer) WaitSlips(ctx context.Context, n int) ([]string, error) {
	stop := context.AfterFunc(ctx, func() {
		p.mu.Lock()
		p.cond.Broadcast()
		p.mu.Unlock()
	})
	defer stop()
	p.mu.Lock()
	defer p.mu.Unlock()
	for len(p.slips) < n {
		if err := ctx.Err(); err != nil {
			return append([]string(nil), p.slips...), err
		}
		p.cond.Wait()
	}
	return append([]string(nil), p.slips...), nil
}

// Close stops the printer and removes its path, after the pictures queued
// are written.
func (p *Printer) Close() error {
	err := p.line.close()
	<-p.done
	close(p.jobs) // the loop, the only sender, has ended
	<-p.drawn
	return err
}

// draw writes the queued pictures, then tells OnSlip of their slips.
func (p *Printer) draw() {
	defer close(p.drawn)
	for j := range p.jobs {
		// The picture keeps the feed before the cut: it is paper.
		name := filepath.Join(p.dir, fmt.Sprintf("slip-%03d.png", j.slip.N))
		var err error
		if j.r != nil {
			err = slipimage.WritePNG(name, j.r.Page(j.page))
		}
		p.mu.Lock()
		switch {
		case j.r == nil:
		case err != nil:
			if p.err == nil {
				p.err = err
			}
		default:
			p.pngs[j.slip.N-1], j.slip.Picture = name, name
		}
		p.drawing--
		if p.onSlip != nil {
			p.onSlip(j.slip)
		}
		p.cond.Broadcast()
		p.mu.Unlock()
	}
}

func (p *Printer) loop() {
	defer close(p.done)
	m := p.line.current()
	buf := make([]byte, 512)
	for {
		n, err := m.Read(buf)
		p.mu.Lock()
		baud := p.baud
		p.mu.Unlock()
		// At a set speed, hand the bytes on as the UART would: each after
		// its 10 bit times, so a status request queued behind a slip is
		// answered only once the slip has crossed the line.
		for off := 0; off < n; {
			k := n - off
			if baud > 0 && k > 16 {
				k = 16
			}
			if baud > 0 {
				d := time.Duration(k) * 10 * time.Second / time.Duration(baud)
				time.Sleep(d)
				p.mu.Lock()
				p.lineTime += d
				p.mu.Unlock()
			}
			p.mu.Lock()
			p.dec.Write(buf[off : off+k])
			p.mu.Unlock()
			off += k
		}
		if err != nil {
			if !errors.Is(err, os.ErrClosed) {
				p.mu.Lock()
				p.err = err
				p.mu.Unlock()
			}
			return
		}
	}
}

// answer replies to DLE EOT n; called by the decoder with p.mu held.
func (p *Printer) answer(n byte) {
	if m := p.line.current(); m != nil {
		_, _ = m.Write([]byte{printer.EncodeStatus(p.status, n)})
	}
}

// feed counts a printed line; called with p.mu held.
func (p *Printer) feed() {
	if p.status.PaperEnd {
		p.lost = true
		return
	}
	if p.outAfter > 0 {
		p.outAfter--
		if p.outAfter == 0 {
			p.status.PaperEnd = true
		}
	}
}

// cut ends a slip; called with p.mu held. A slip that lost lines to the
// paper running out is dropped: on paper it is a stub, not a slip.
func (p *Printer) cut(page printer.Page) {
	if p.lost || p.status.PaperEnd || p.status.CoverOpen {
		p.lost = false
		return
	}
	text := strings.TrimRight(page.Text(), "\n") + "\n" // the feed before the cut is not text
	p.slips = append(p.slips, text)
	p.pngs = append(p.pngs, "")
	slip := PrintedSlip{N: len(p.slips), Text: text}
	defer p.cond.Broadcast()
	if p.dir == "" {
		p.tell(slip)
		return
	}
	name := filepath.Join(p.dir, fmt.Sprintf("slip-%03d.txt", len(p.slips)))
	if err := os.WriteFile(name, []byte(text), 0o600); err != nil && p.err == nil {
		p.err = err
	}
	if p.pictures == nil && p.drawing == 0 {
		p.tell(slip)
		return
	}
	// Behind a picture still being drawn, a slip without one queues too, so
	// OnSlip hears of slips in order.
	select {
	case p.jobs <- pictureJob{slip: slip, page: page, r: p.pictures}:
		p.drawing++ // draw tells OnSlip once the picture is written
	default:
		if p.err == nil {
			p.err = errors.New("devsim: slip pictures queue full")
		}
		p.tell(slip)
	}
}

// tell calls OnSlip; called with p.mu held.
func (p *Printer) tell(s PrintedSlip) {
	if p.onSlip != nil {
		p.onSlip(s)
	}
}

// Err is why the emulator stopped working, if it did.
func (p *Printer) Err() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}
