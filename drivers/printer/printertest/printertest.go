// Package printertest provides a fake for package printer: Device, an
// ESC/POS printer on the other end of the line that decodes what it is sent,
// answers status requests from its state and keeps the pages that came out,
// and Annotate, which lists an ESC/POS stream one command per line for
// readable golden files.
package printertest

import (
	"io"
	"sync"

	"github.com/posagent/posagent/drivers/printer"
)

// Device is a fake ESC/POS printer to give printer.New: what is written to
// it is decoded, status requests (DLE EOT) are answered from Status at once,
// and a page cut with paper in comes out (Pages). A page printed while the
// paper is out is lost, as on a real roll. Set the knobs before use or
// between calls, never while a call on the Printer is running.
type Device struct {
	// Status is the state status requests are answered from; paper running
	// out (PaperOutAfter) sets its PaperEnd.
	Status printer.Status
	// PaperOutAfter, when > 0, runs the paper out after that many more
	// lines are fed (a line feed, or each line of ESC d).
	PaperOutAfter int
	// Silent makes the device answer no status request: a printer switched
	// off or a cable pulled.
	Silent bool

	mu      sync.Mutex
	dec     printer.Decoder
	ready   bool
	answers []byte
	pages   []printer.Page
	lost    bool
	written []byte
}

var _ io.ReadWriter = (*Device)(nil)

func (d *Device) init() {
	if d.ready {
		return
	}
	d.ready = true
	d.dec.Query = func(n byte) {
		if !d.Silent {
			d.answers = append(d.answers, printer.EncodeStatus(d.Status, n))
		}
	}
	d.dec.Feed = func() {
		if d.Status.PaperEnd {
			d.lost = true
			return
		}
		if d.PaperOutAfter > 0 {
			if d.PaperOutAfter--; d.PaperOutAfter == 0 {
				d.Status.PaperEnd = true
			}
		}
	}
	d.dec.CutPage = func(p printer.Page) {
		if !d.lost && !d.Status.PaperEnd && !d.Status.CoverOpen {
			d.pages = append(d.pages, p)
		}
		d.lost = false
	}
}

// Write decodes p as the printer would; it never fails.
func (d *Device) Write(p []byte) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.init()
	d.written = append(d.written, p...)
	return d.dec.Write(p)
}

// Read returns the status answers not read yet, or a timeout error (as a
// serial line with a read timeout does) when there are none.
func (d *Device) Read(p []byte) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.answers) == 0 {
		return 0, timeout{}
	}
	n := copy(p, d.answers)
	d.answers = d.answers[n:]
	return n, nil
}

type timeout struct{}

func (timeout) Error() string { return "printertest: read timeout" }
func (timeout) Timeout() bool { return true }

// LoadPaper puts paper in: PaperEnd cleared and PaperOutAfter off.
func (d *Device) LoadPaper() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.Status.PaperEnd, d.Status.PaperStop = false, false
	d.PaperOutAfter = 0
}

// Pages are the pages that came out, in order: cut with paper in and the
// cover shut, none of their lines lost to the paper running out.
func (d *Device) Pages() []printer.Page {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]printer.Page(nil), d.pages...)
}

// Texts are the pages' texts (printer.Page.Text), the fed lines before each
// cut included.
func (d *Device) Texts() []string {
	var out []string
	for _, p := range d.Pages() {
		out = append(out, p.Text())
	}
	return out
}

// Written is every byte written so far, status requests included.
func (d *Device) Written() []byte {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]byte(nil), d.written...)
}
