package inproc

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/posagent/posagent/agent/receipt"
	"github.com/posagent/posagent/agent/store"
	"github.com/posagent/posagent/drivers/printer"
	"github.com/posagent/posagent/provisioning"
)

// ErrPaperOut is what the simulated printer says when told it has no paper;
// it carries the real printer's failure code, so the installer's screen is
// the same.
var ErrPaperOut error = paperOut{}

type paperOut struct{}

func (paperOut) Error() string       { return "sim printer: paper end" }
func (paperOut) FailureCode() string { return "E_PAPER_END" }

// Printer renders slips as text: to Out, as the paper would show them, and to a
// file per copy in Dir (when set) for tests and the demo's record. It prints
// the styled lines the ESC/POS printer is sent (receipt.Page), so its text,
// its pictures and the paper show the same slip.
type Printer struct {
	Out    io.Writer
	Dir    string
	Width  int // display columns; 32 is a 58 mm printer's default font
	Pauses *Pauses
	// Pictures, when set, also draws each copy into Dir as a PNG picture
	// of the paper slip (agent/sim/slipimage), for people checking the
	// layout.
	Pictures Pictures

	mu       sync.Mutex
	paperOut bool
	printed  int
}

var _ provisioning.Printer = (*Printer)(nil)

// SetPaperOut simulates the paper running out (true) or being loaded (false).
func (p *Printer) SetPaperOut(out bool) {
	p.mu.Lock()
	p.paperOut = out
	p.mu.Unlock()
}

// Pictures draws a printed page as a picture of the paper, written to path.
type Pictures interface {
	WritePage(path string, p printer.Page) error
}

// Printed is the number of slip copies printed by this process.
func (p *Printer) Printed() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.printed
}

// SelfTest fails while the paper is out.
func (p *Printer) SelfTest(ctx context.Context) error {
	p.mu.Lock()
	out := p.paperOut
	p.mu.Unlock()
	if out {
		return ErrPaperOut
	}
	p.Pauses.Point(ctx, "printer.selftest")
	return ctx.Err()
}

// PrintReceipt prints both copies, or fails whole when the paper is out.
func (p *Printer) PrintReceipt(ctx context.Context, r provisioning.Receipt) error {
	if err := p.SelfTest(ctx); err != nil {
		return err
	}
	for _, s := range receipt.Copies(r) {
		page := receipt.Page(s, p.Width)
		text := page.Text()
		if p.Out != nil {
			var b strings.Builder
			for _, line := range strings.SplitAfter(strings.TrimSuffix(text, "\n"), "\n") {
				b.WriteString("slip| " + line)
			}
			b.WriteString("\n")
			if _, err := io.WriteString(p.Out, b.String()); err != nil {
				return fmt.Errorf("sim printer: %w", err)
			}
		}
		if p.Dir != "" {
			if err := os.MkdirAll(p.Dir, 0o700); err != nil {
				return fmt.Errorf("sim printer: %w", err)
			}
			name := filepath.Join(p.Dir, fmt.Sprintf("%s-%06d-%s", r.Kind, r.Txn.STAN, s.Copy))
			if err := store.WriteFile(name+".txt", []byte(text), 0o600); err != nil {
				return err
			}
			if p.Pictures != nil {
				p.picture(name+".png", page)
			}
		}
		p.mu.Lock()
		p.printed++
		p.mu.Unlock()
	}
	// Each slip its own point, as the procedure table lists them.
	point := "printer.print"
	if r.Kind == "void" {
		point = "printer.print-void"
	}
	p.Pauses.Point(ctx, point)
	return ctx.Err()
}

// picture draws page to path. A picture is a convenience: a failure to draw
// one is shown, and the slip still counts as printed.
func (p *Printer) picture(path string, page printer.Page) {
	err := p.Pictures.WritePage(path, page)
	if p.Out == nil {
		return
	}
	if err != nil {
		fmt.Fprintf(p.Out, "slip| no picture: %v\n", err)
		return
	}
	fmt.Fprintf(p.Out, "slip| picture: %s\n", path)
}

// Params is a parameter source with a fixed merchant record (the config's).
type Params struct {
	Merchant provisioning.Merchant
	Pauses   *Pauses
}

// Parameters returns the record.
func (p Params) Parameters(ctx context.Context, t provisioning.Terminal) (provisioning.Merchant, error) {
	p.Pauses.Point(ctx, "params.load")
	return p.Merchant, ctx.Err()
}
