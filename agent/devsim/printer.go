package devsim

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/posagent/posagent/drivers/printer"
)

// Printer emulates an ESC/POS receipt printer: it decodes what it is sent,
// answers DLE EOT status requests at once from its state, and keeps each slip
// that reached a cut with paper in as UTF-8 text (also written to Dir).
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
	onSlip   func(n int, text string)
	err      error // why the read loop stopped
	done     chan struct{}
}

// NewPrinter publishes an emulated printer at link; slips go to dir when set.
func NewPrinter(link, dir string) (*Printer, error) {
	l, err := newLine(link)
	if err != nil {
		return nil, err
	}
	p := &Printer{line: l, dir: dir, done: make(chan struct{})}
	p.cond = sync.NewCond(&p.mu)
	p.dec.Query = p.answer
	p.dec.Cut = p.cut
	p.dec.Feed = p.feed
	go p.loop()
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

// OnSlip sets a function told of each slip printed (numbered from 1). It is
// called from the emulator's loop and must not call the Printer.
func (p *Printer) OnSlip(f func(n int, text string)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.onSlip = f
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

// Close stops the printer and removes its path.
func (p *Printer) Close() error {
	err := p.line.close()
	<-p.done
	return err
}

func (p *Printer) loop() {
	defer close(p.done)
	m := p.line.current()
	buf := make([]byte, 512)
	for {
		n, err := m.Read(buf)
		p.mu.Lock()
		p.dec.Write(buf[:n])
		p.mu.Unlock()
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
func (p *Printer) cut(page string) {
	if p.lost || p.status.PaperEnd || p.status.CoverOpen {
		p.lost = false
		return
	}
	text := strings.TrimRight(page, "\n") + "\n" // the feed before the cut is not text
	p.slips = append(p.slips, text)
	if p.dir != "" {
		name := filepath.Join(p.dir, fmt.Sprintf("slip-%03d.txt", len(p.slips)))
		if err := os.WriteFile(name, []byte(text), 0o600); err != nil && p.err == nil {
			p.err = err
		}
	}
	if p.onSlip != nil {
		p.onSlip(len(p.slips), text)
	}
	p.cond.Broadcast()
}

// Err is why the emulator stopped working, if it did.
func (p *Printer) Err() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}
