package slipimage

import (
	"bytes"
	"errors"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/image/font/gofont/goregular"

	"github.com/posagent/posagent/agent/receipt"
	"github.com/posagent/posagent/drivers/printer"
	"github.com/posagent/posagent/provisioning"
)

// renderer loads the system CJK font, or skips (fails under `make test`,
// which sets POSAGENT_REQUIRE_BENCH=1 and installs the font package).
func renderer(t *testing.T, opts Options) *Renderer {
	t.Helper()
	r, err := New(opts)
	if errors.Is(err, ErrNoFont) && os.Getenv("POSAGENT_REQUIRE_BENCH") != "1" {
		t.Skipf("%v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func sampleReceipt() provisioning.Receipt {
	return provisioning.Receipt{
		Merchant: provisioning.Merchant{MID: "898310048160001", Name: "测试商户 TEST MERCHANT"},
		Terminal: provisioning.Terminal{TID: "10000001", MID: "898310048160001"},
		Txn: provisioning.TxnRecord{STAN: 17, Batch: "000001", Amount: 1, RC: "00", RRN: "261127123456",
			AuthCode: "A1B2C3", Masked: "621790*********0120", Time: time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC), Expiry: "3012", AID: "A000000333010101", Label: "PBOC DEBIT"},
		Kind: "sale", Test: true,
	}
}

// ink counts dark pixels (less than half white) in rows [y0, y1).
func ink(img *image.Gray, y0, y1 int) int {
	n := 0
	for y := max(y0, 0); y < min(y1, img.Rect.Dy()); y++ {
		for x := range img.Rect.Dx() {
			if img.GrayAt(x, y).Y < 128 {
				n++
			}
		}
	}
	return n
}

// inkHeight is how many rows in [y0, y1) hold any dark pixel.
func inkHeight(img *image.Gray, y0, y1 int) int {
	n := 0
	for y := y0; y < y1; y++ {
		if ink(img, y, y+1) > 0 {
			n++
		}
	}
	return n
}

// TestSlipPicture draws the merchant copy as the printer decoded it and
// checks the picture is a 58 mm slip: its size follows the lines and their
// heights, each printed row has ink and each blank row none, the title is
// printed double height, and the cut is marked at the bottom.
func TestSlipPicture(t *testing.T) {
	r := renderer(t, Options{})
	s := receipt.Copies(sampleReceipt())[0]
	pages := printer.DecodePages(printer.Encode(receipt.Page(s, r.Columns()), printer.DefaultFeed))
	if len(pages) != 1 {
		t.Fatalf("%d pages", len(pages))
	}
	img := r.Page(pages[0])
	if r.Columns() != 32 || img.Rect.Dx() != 464 || r.Width() != 464 {
		t.Fatalf("58 mm: %d columns, %d px wide", r.Columns(), img.Rect.Dx())
	}
	y := topMargin
	var titleTop, titleH int
	for i, l := range pages[0].Lines {
		h := pitch(l.Height())
		text := strings.TrimSpace(l.Text())
		got := ink(img, y, y+h)
		switch {
		case text == "" && got != 0:
			t.Errorf("line %d is blank but has %d dark pixels", i, got)
		case text != "" && got < 20*len([]rune(text)):
			t.Errorf("line %d %q has only %d dark pixels", i, text, got)
		}
		if text == "银联POS签购单" {
			titleTop, titleH = y, h
		}
		y += h
	}
	if want := y + cutMargin; img.Rect.Dy() != want {
		t.Errorf("height %d, want %d", img.Rect.Dy(), want)
	}
	if titleH != pitch(2) || inkHeight(img, titleTop, titleTop+titleH) <= CellHeight {
		t.Errorf("title not double height: pitch %d, ink %d rows", titleH, inkHeight(img, titleTop, titleTop+titleH))
	}
	// The cut: dashes across the whole paper, margins included.
	last := img.Rect.Dy() - 1
	if n := ink(img, last, last+1); n < img.Rect.Dx()/3 || n > img.Rect.Dx()*2/3 {
		t.Errorf("cut line has %d dark pixels of %d", n, img.Rect.Dx())
	}
	// Nothing is printed in the paper's margins.
	for yy := range img.Rect.Dy() - 1 {
		for _, x := range []int{0, r.margin - 2, img.Rect.Dx() - 1} {
			if img.GrayAt(x, yy).Y != 255 {
				t.Fatalf("ink in the margin at %d,%d", x, yy)
			}
		}
	}
	// The full picture is legible as a PNG.
	b, err := EncodePNG(img)
	if err != nil {
		t.Fatal(err)
	}
	back, err := png.Decode(bytes.NewReader(b))
	if err != nil || back.Bounds() != img.Bounds() {
		t.Fatalf("PNG round trip: %v", err)
	}
}

// line draws one plain line of text.
func line(r *Renderer, text string, f printer.Format) *image.Gray {
	return r.Page(printer.Page{Lines: []printer.Line{{Runs: []printer.Run{{Text: text, Format: f}}}}})
}

// TestChineseGlyphs checks Chinese characters are drawn as themselves: two
// different characters differ, neither is the font's "missing" box, and each
// is two columns wide.
func TestChineseGlyphs(t *testing.T) {
	r := renderer(t, Options{})
	plain := printer.Format{Width: 1, Height: 1}
	yin, lian, missing := line(r, "银", plain), line(r, "联", plain), line(r, "\U000F0000", plain)
	if bytes.Equal(yin.Pix, lian.Pix) {
		t.Error("银 and 联 look the same")
	}
	if bytes.Equal(yin.Pix, missing.Pix) || bytes.Equal(lian.Pix, missing.Pix) {
		t.Error("a Chinese character is drawn as the missing-glyph box")
	}
	if !r.HasGlyph('银') || !r.HasGlyph('A') || r.HasGlyph('\U000F0000') {
		t.Error("HasGlyph wrong")
	}
	for _, c := range probe {
		if !r.HasGlyph(c) {
			t.Errorf("no glyph for %c", c)
		}
	}
	// 银 stays in its two columns; A in its one.
	cols := func(img *image.Gray) (lo, hi int) {
		lo, hi = img.Rect.Dx(), 0
		for y := range img.Rect.Dy() - 1 { // the last row is the cut line
			for x := range img.Rect.Dx() {
				if img.GrayAt(x, y).Y < 128 {
					lo, hi = min(lo, x), max(hi, x)
				}
			}
		}
		return lo, hi
	}
	if lo, hi := cols(yin); lo < r.margin || hi >= r.margin+2*CellWidth {
		t.Errorf("银 spans x %d..%d", lo, hi)
	}
	if lo, hi := cols(line(r, "A", plain)); lo < r.margin || hi >= r.margin+CellWidth {
		t.Errorf("A spans x %d..%d", lo, hi)
	}
	// Bold prints more ink, double width twice as wide.
	if ink(line(r, "银", printer.Format{Bold: true, Width: 1, Height: 1}), 0, 100) <= ink(yin, 0, 100) {
		t.Error("bold has no more ink")
	}
	if lo, hi := cols(line(r, "银", printer.Format{Width: 2, Height: 1})); hi-lo < 2*CellWidth {
		t.Errorf("double width spans %d..%d", lo, hi)
	}
}

func TestAlignmentAndWrap(t *testing.T) {
	r := renderer(t, Options{Dots: Dots80})
	if r.Columns() != 48 || r.Width() != 640 {
		t.Fatalf("80 mm: %d columns, %d px", r.Columns(), r.Width())
	}
	plain := printer.Format{Width: 1, Height: 1}
	first := func(img *image.Gray) int {
		for x := range img.Rect.Dx() {
			for y := range img.Rect.Dy() - 1 { // not the cut line
				if img.GrayAt(x, y).Y < 128 {
					return x
				}
			}
		}
		return -1
	}
	left := first(line(r, "X", plain))
	p := printer.Page{Lines: []printer.Line{{Align: printer.Right, Runs: []printer.Run{{Text: "X", Format: plain}}}}}
	if right := first(r.Page(p)); right-left != Dots80-CellWidth {
		t.Errorf("right-aligned X at %d, left at %d", right, left)
	}
	// 60 columns of text wrap onto a second row, as on the printer.
	long := r.Page(printer.Page{Lines: []printer.Line{{Runs: []printer.Run{{Text: strings.Repeat("8", 60), Format: plain}}}}})
	if long.Rect.Dy() != topMargin+2*pitch(1)+cutMargin || ink(long, topMargin+pitch(1), topMargin+2*pitch(1)) == 0 {
		t.Errorf("long line: height %d", long.Rect.Dy())
	}
}

// TestNoFont: without a usable font New says what is missing and which
// package to install; a bad or Latin-only font is an error too, never a panic.
func TestNoFont(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "nosuch.ttc")
	_, err := New(Options{SearchPaths: []string{missing}})
	if !errors.Is(err, ErrNoFont) || !strings.Contains(err.Error(), missing) || !strings.Contains(err.Error(), FontPackage) {
		t.Errorf("no font: %v", err)
	}
	if _, err := New(Options{SearchPaths: []string{}}); !errors.Is(err, ErrNoFont) {
		t.Errorf("empty search list: %v", err)
	}
	if _, err := New(Options{FontPath: missing}); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("explicit missing font: %v", err)
	}
	junk := filepath.Join(dir, "junk.ttf")
	latin := filepath.Join(dir, "goregular.ttf")
	for name, data := range map[string][]byte{junk: []byte("not a font at all"), latin: goregular.TTF} {
		if err := os.WriteFile(name, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := New(Options{FontPath: junk}); err == nil {
		t.Error("junk accepted as a font")
	}
	if _, err := New(Options{FontPath: latin}); !errors.Is(err, ErrNotCJK) {
		t.Errorf("Latin-only font: %v", err)
	}
	// Unusable fonts on the search list are named in the error.
	_, err = New(Options{SearchPaths: []string{junk, latin}})
	if !errors.Is(err, ErrNoFont) || !strings.Contains(err.Error(), "goregular.ttf") {
		t.Errorf("unusable fonts: %v", err)
	}
	if _, err := New(Options{FontPath: latin, Dots: 100}); err == nil {
		t.Error("width not a multiple of the cell accepted")
	}
}

func TestRealign(t *testing.T) {
	for _, b := range [][]byte{nil, []byte("ttcf\x00\x01\x00\x00\x00\x00\x00\x09"), []byte("ttcf\x00\x01\x00\x00\x00\x00\x00\x01\x00\x00\x00\x10"),
		{0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 'h', 'e', 'a', 'd', 0, 0, 0, 0, 0x7f, 0, 0, 0, 0, 0, 0, 9}} {
		if _, err := realign(b, 0); err == nil {
			t.Errorf("realign(%q) accepted", b)
		}
	}
	// A valid font survives realignment.
	out, err := realign(goregular.TTF, 0)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "re.ttf")
	if err := os.WriteFile(path, out, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := New(Options{FontPath: path}); !errors.Is(err, ErrNotCJK) {
		t.Errorf("realigned Go font: %v", err)
	}
}

// TestWritePage writes both copies of a receipt as PNG files, as the demo's
// simulated printer does: each the picture of the paper the driver prints,
// the fed lines before the cut included.
func TestWritePage(t *testing.T) {
	r := renderer(t, Options{})
	dir := t.TempDir()
	var heights []int
	for _, s := range receipt.Copies(sampleReceipt()) {
		page := receipt.Page(s, r.Columns())
		path := filepath.Join(dir, string(s.Copy)+".png")
		if err := r.WritePage(path, page); err != nil {
			t.Fatal(err)
		}
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(f)
		f.Close()
		if err != nil || img.Bounds().Dx() != r.Width() || img.Bounds().Dy() < 40*pitch(1) {
			t.Fatalf("%s: %v %v", path, err, img.Bounds())
		}
		printed := printer.DecodePages(printer.Encode(page, printer.DefaultFeed))[0]
		if want := r.Page(printed); !bytes.Equal(want.Pix, r.Paper(page).Pix) || img.Bounds() != want.Rect {
			t.Errorf("%s copy: the picture is not of the page as printed", s.Copy)
		}
		heights = append(heights, img.Bounds().Dy())
	}
	// The cardholder copy has no signature block: it is shorter.
	if len(heights) != 2 || heights[1] >= heights[0] {
		t.Errorf("heights %v", heights)
	}
}

// FuzzESCPOS draws arbitrary ESC/POS streams: no panic, every picture the
// paper's width and within MaxHeight. Seeds are in testdata/fuzz/FuzzESCPOS.
func FuzzESCPOS(f *testing.F) {
	f.Add([]byte("\x1b@\x1d!\x77\x1c&\xd2\xf8\x1c.\n\x1dV\x01tail"))
	r, err := New(Options{})
	f.Fuzz(func(t *testing.T, b []byte) {
		if errors.Is(err, ErrNoFont) && os.Getenv("POSAGENT_REQUIRE_BENCH") != "1" {
			t.Skipf("%v", err)
		}
		if err != nil {
			t.Fatal(err)
		}
		for _, img := range r.ESCPOS(b) {
			if img.Rect.Dx() != r.Width() || img.Rect.Dy() > MaxHeight || img.Rect.Dy() < topMargin {
				t.Fatalf("picture %v", img.Rect)
			}
		}
	})
}

func TestMaxHeight(t *testing.T) {
	r := renderer(t, Options{})
	// 1000 lines at eight times the height would be 200k dots of paper.
	b := append([]byte("\x1d!\x77"), bytes.Repeat([]byte("x\n"), 1000)...)
	imgs := r.ESCPOS(b)
	if len(imgs) != 1 || imgs[0].Rect.Dy() > MaxHeight || imgs[0].Rect.Dy() < MaxHeight-pitch(8)-cutMargin {
		t.Fatalf("%d pictures, %v", len(imgs), imgs[0].Rect)
	}
}
