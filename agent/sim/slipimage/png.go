package slipimage

import (
	"bytes"
	"fmt"
	"image"
	"image/png"

	"github.com/posagent/posagent/agent/store"
	"github.com/posagent/posagent/drivers/printer"
)

// EncodePNG is img as PNG bytes. A slip is mostly white paper, so even the
// default compression keeps it small (about 30 kB); best compression would
// cost several times the time for a few percent.
func EncodePNG(img image.Image) ([]byte, error) {
	var b bytes.Buffer
	var enc png.Encoder
	if err := enc.Encode(&b, img); err != nil {
		return nil, fmt.Errorf("slipimage: png: %w", err)
	}
	return b.Bytes(), nil
}

// WritePNG writes img to path as PNG, atomically (store.WriteFile): a reader
// of the directory never sees half a picture.
func WritePNG(path string, img image.Image) error {
	b, err := EncodePNG(img)
	if err != nil {
		return err
	}
	if err := store.WriteFile(path, b, 0o600); err != nil {
		return fmt.Errorf("slipimage: %w", err)
	}
	return nil
}

// Paper draws p as the ESC/POS driver prints it: encoded as printer.Print
// sends it (printer.Encode, printer.DefaultFeed lines fed before the cut),
// decoded back and drawn, so a printer that is not an ESC/POS device (the
// demo's simulated printer) leaves the picture the paper would show.
func (r *Renderer) Paper(p printer.Page) *image.Gray {
	pages := printer.DecodePages(printer.Encode(p, printer.DefaultFeed))
	if len(pages) == 0 { // Encode always cuts, so never
		return r.Page(printer.Page{})
	}
	return r.Page(pages[0])
}

// WritePage writes Paper(p) to path as PNG (WritePNG); it is how the demo's
// simulated printer draws its slips.
func (r *Renderer) WritePage(path string, p printer.Page) error {
	return WritePNG(path, r.Paper(p))
}
