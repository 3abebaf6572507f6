package slipimage

import (
	"bytes"
	"fmt"
	"image"
	"image/png"
	"os"
	"path/filepath"

	"github.com/posagent/posagent/agent/receipt"
	"github.com/posagent/posagent/agent/store"
	"github.com/posagent/posagent/drivers/printer"
	"github.com/posagent/posagent/provisioning"
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

// Receipt draws the copies of a receipt's slip exactly as the ESC/POS
// printer driver would print them at this paper width (printer.Encode, then
// decoded back), for printers that are not ESC/POS devices — the demo's
// simulated printer. It returns one picture per copy, in slip.Copies order.
func (r *Renderer) Receipt(rc provisioning.Receipt) []*image.Gray {
	var out []*image.Gray
	for _, s := range receipt.Copies(rc) {
		out = append(out, r.ESCPOS(printer.Encode(receipt.Page(s, r.Columns()), printer.DefaultFeed))...)
	}
	return out
}

// WriteReceipt writes Receipt's pictures into dir (created if missing) as
// KIND-STAN-COPY.png, the names agent/sim gives the text copies, and returns
// the paths written.
func (r *Renderer) WriteReceipt(dir string, rc provisioning.Receipt) ([]string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("slipimage: %w", err)
	}
	copies := receipt.Copies(rc)
	imgs := r.Receipt(rc)
	if len(imgs) != len(copies) {
		return nil, fmt.Errorf("slipimage: %d copies drew %d pages", len(copies), len(imgs))
	}
	var paths []string
	for i, s := range copies {
		p := filepath.Join(dir, fmt.Sprintf("%s-%06d-%s.png", rc.Kind, rc.Txn.STAN, s.Copy))
		if err := WritePNG(p, imgs[i]); err != nil {
			return paths, err
		}
		paths = append(paths, p)
	}
	return paths, nil
}
