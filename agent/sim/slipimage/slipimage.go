// Package slipimage draws printed sales slips as pictures of thermal paper:
// white paper, black text on the printer's dot grid (12×24-dot font A cells, a
// Chinese character two cells wide), bold and double-size runs as the ESC/POS
// stream asked for them, and a dashed line where the cutter cut.
//
// Its input is what the printer decoded (printer.Page, or raw ESC/POS bytes),
// not the slip's data, so the picture shows what the printer was actually told
// to print — a bug in the layout or the encoder shows in the picture too.
//
// Drawing Chinese needs a CJK font from the system. Options.FontPath names one;
// otherwise the paths in DefaultFontPaths are tried in order. When none is
// usable, New returns an error matching ErrNoFont that says which Debian
// package to install; nothing in this package panics on a missing or bad font.
package slipimage

import (
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"os"
	"strings"
	"sync"

	"golang.org/x/image/font"
	"golang.org/x/image/font/gofont/gomono"
	"golang.org/x/image/font/opentype"
	"golang.org/x/image/font/sfnt"
	"golang.org/x/image/math/fixed"

	"github.com/posagent/posagent/agent/receipt"
	"github.com/posagent/posagent/drivers/printer"
)

// Printable widths in dots of the two common thermal printers (8 dots/mm).
const (
	Dots58 = 384 // 58 mm paper, 48 mm printable: 32 columns of font A
	Dots80 = 576 // 80 mm paper, 72 mm printable: 48 columns of font A
)

// The printer's grid: font A is 12×24 dots, a line feed moves 30 dots (the
// ESC/POS default line spacing) for normal-height text.
const (
	CellWidth  = 12
	CellHeight = 24
	lineGap    = 6
	topMargin  = 16 // paper above the first line: the tear-off edge of the previous slip
	cutMargin  = 12 // paper between the last line and the cut, beyond the feed lines
)

// MaxHeight bounds a picture's height in dots (2 m of paper, some fifty
// slips): lines beyond it are left out, so a stream of line feeds or a page
// that is never cut cannot make a picture that exhausts memory.
const MaxHeight = 16000

// DefaultFontPaths are tried in order when Options.FontPath is empty. Each is
// the CJK font of a Debian package; the first is the smallest (1.6 MB):
//
//	/usr/share/fonts/truetype/wqy/wqy-microhei.ttc             fonts-wqy-microhei
//	/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc               fonts-wqy-zenhei
//	/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc     fonts-noto-cjk
//	/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf  fonts-droid-fallback
//	/usr/share/fonts/truetype/arphic/uming.ttc                 fonts-arphic-uming
var DefaultFontPaths = []string{
	"/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
	"/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
	"/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
	"/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf",
	"/usr/share/fonts/truetype/arphic/uming.ttc",
}

// FontPackage is the Debian package that provides the first default font.
const FontPackage = "fonts-wqy-microhei"

// Errors callers branch on.
var (
	// ErrNoFont: no usable CJK font at the paths searched.
	ErrNoFont = errors.New("slipimage: no CJK font found (apt-get install " + FontPackage + ", or give a font path)")
	// ErrNotCJK: the font file parsed but has no Chinese characters, so a
	// slip drawn with it would show boxes where its labels are.
	ErrNotCJK = errors.New("slipimage: font has no Chinese characters")
)

// probe is Chinese every slip prints: a font must have all of it to be used.
const probe = "银联签购单商户存根持卡人金额卡号"

// Options configure a Renderer. The zero value searches DefaultFontPaths and
// draws 58 mm slips.
type Options struct {
	// FontPath is a TrueType/OpenType font or collection (.ttf, .otf, .ttc)
	// with Chinese characters. When set, only it is tried, and its own error
	// is returned.
	FontPath string
	// SearchPaths replaces DefaultFontPaths when FontPath is empty.
	SearchPaths []string
	// Dots is the printable width in dots: Dots58 (the default) or Dots80,
	// or any multiple of CellWidth.
	Dots int
}

// Renderer draws slips with one font at one paper width. It is safe for
// concurrent use; glyphs are rasterised once and kept.
type Renderer struct {
	path     string
	dots     int
	margin   int
	baseline int // y of the baseline within a cell

	mu     sync.Mutex
	face   font.Face // the CJK font, for what Go Mono lacks
	font   *sfnt.Font
	latin  font.Face // Go Mono: one column wide, like the printer's font A
	mono   *sfnt.Font
	buf    sfnt.Buffer
	glyphs map[rune]*image.Alpha
}

// New loads the font and returns a Renderer.
func New(opts Options) (*Renderer, error) {
	dots := opts.Dots
	if dots <= 0 {
		dots = Dots58
	}
	if dots%CellWidth != 0 || dots > 4096 {
		return nil, fmt.Errorf("slipimage: printable width %d dots: want a multiple of %d up to 4096", dots, CellWidth)
	}
	var f *sfnt.Font
	var path string
	if opts.FontPath != "" {
		var err error
		if f, err = loadFont(opts.FontPath); err != nil {
			return nil, err
		}
		path = opts.FontPath
	} else {
		paths := opts.SearchPaths
		if paths == nil {
			paths = DefaultFontPaths
		}
		var errs []string
		for _, p := range paths {
			ff, err := loadFont(p)
			if err == nil {
				f, path = ff, p
				break
			}
			if !errors.Is(err, os.ErrNotExist) {
				errs = append(errs, err.Error()) // a font that is there but unusable is worth saying
			}
		}
		if f == nil {
			msg := fmt.Sprintf("%v; searched %s", ErrNoFont, strings.Join(paths, ", "))
			if len(errs) > 0 {
				msg += "; " + strings.Join(errs, "; ")
			}
			return nil, &noFontError{msg: msg}
		}
	}
	r := &Renderer{path: path, dots: dots, font: f, glyphs: map[rune]*image.Alpha{}}
	// Paper is wider than what the head prints on: 58 mm paper is 464 dots
	// for 384 printable, 80 mm is 640 for 576.
	r.margin = 40
	if dots > Dots58 {
		r.margin = 32
	}
	// 22 px leaves a dot of white around a Chinese character in its 24×24
	// cells, as printer fonts do, so neighbouring characters do not touch.
	face, err := opentype.NewFace(f, &opentype.FaceOptions{Size: 22, DPI: 72, Hinting: font.HintingNone})
	if err != nil {
		return nil, fmt.Errorf("slipimage: font %s: %w", path, err)
	}
	r.face = face
	if r.mono, err = opentype.Parse(gomono.TTF); err != nil {
		return nil, fmt.Errorf("slipimage: Go Mono: %w", err)
	}
	// Go Mono advances 0.6 em: 20 px makes it exactly one 12-dot column.
	if r.latin, err = opentype.NewFace(r.mono, &opentype.FaceOptions{Size: 20, DPI: 72, Hinting: font.HintingNone}); err != nil {
		return nil, fmt.Errorf("slipimage: Go Mono: %w", err)
	}
	// Centre the Chinese characters in their cells; Latin shares their
	// baseline, as in the printer's own GB font.
	b, _, ok := face.GlyphBounds('中')
	if !ok {
		return nil, fmt.Errorf("slipimage: font %s: %w", path, ErrNotCJK)
	}
	top, bottom := b.Min.Y.Floor(), b.Max.Y.Ceil()
	r.baseline = (CellHeight-(bottom-top))/2 - top
	return r, nil
}

// noFontError carries the search list in its message and matches ErrNoFont.
type noFontError struct{ msg string }

func (e *noFontError) Error() string        { return e.msg }
func (e *noFontError) Is(target error) bool { return target == ErrNoFont }

// loadFont reads a font file and picks the first collection member with
// every probe character.
func loadFont(path string) (*sfnt.Font, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("slipimage: font: %w", err)
	}
	c, err := opentype.ParseCollection(b)
	if err != nil {
		return nil, fmt.Errorf("slipimage: font %s: %w", path, err)
	}
	lastErr := fmt.Errorf("slipimage: font %s: %w", path, ErrNotCJK)
	for i := range c.NumFonts() {
		f, err := c.Font(i)
		if err != nil {
			// wqy-microhei.ttc, the smallest Debian CJK font, has tables
			// that do not start on 4-byte boundaries, which x/image's
			// parser rejects: give it an aligned copy of the member.
			var ab []byte
			if ab, err = realign(b, i); err == nil {
				f, err = opentype.Parse(ab)
			}
		}
		if err != nil {
			lastErr = fmt.Errorf("slipimage: font %s (#%d): %w", path, i, err)
			continue
		}
		if hasAll(f, probe) {
			return f, nil
		}
	}
	return nil, lastErr
}

func hasAll(f *sfnt.Font, s string) bool {
	var buf sfnt.Buffer
	for _, r := range s {
		if x, err := f.GlyphIndex(&buf, r); err != nil || x == 0 {
			return false
		}
	}
	return true
}

// realign copies member i of an SFNT file or collection into a standalone
// font whose tables each start on a 4-byte boundary, as the OpenType spec
// requires. Checksums are left as they were: the parser ignores them.
func realign(b []byte, i int) ([]byte, error) {
	errBad := errors.New("slipimage: font: malformed table directory")
	u32 := func(o int) (int, bool) {
		if o < 0 || o+4 > len(b) {
			return 0, false
		}
		return int(b[o])<<24 | int(b[o+1])<<16 | int(b[o+2])<<8 | int(b[o+3]), true
	}
	off := 0
	if len(b) >= 4 && string(b[:4]) == "ttcf" {
		n, ok := u32(8)
		if !ok || i >= n {
			return nil, errBad
		}
		if off, ok = u32(12 + 4*i); !ok {
			return nil, errBad
		}
	}
	if off+12 > len(b) {
		return nil, errBad
	}
	n := int(b[off+4])<<8 | int(b[off+5])
	dir := off + 12
	if n == 0 || dir+16*n > len(b) {
		return nil, errBad
	}
	out := make([]byte, 12+16*n, len(b)-off+4*n)
	copy(out, b[off:dir+16*n])
	for t := range n {
		e := 12 + 16*t
		o, _ := u32(dir + 16*t + 8)
		l, _ := u32(dir + 16*t + 12)
		if o+l > len(b) || o+l < o {
			return nil, errBad
		}
		for len(out)%4 != 0 {
			out = append(out, 0)
		}
		no := len(out)
		out[e+8], out[e+9], out[e+10], out[e+11] = byte(no>>24), byte(no>>16), byte(no>>8), byte(no)
		out = append(out, b[o:o+l]...)
	}
	return out, nil
}

// FontPath is the font file in use.
func (r *Renderer) FontPath() string { return r.path }

// Width is the picture's width in pixels: the printable dots and the paper's
// margins either side.
func (r *Renderer) Width() int { return r.dots + 2*r.margin }

// Columns is how many font A columns fit on a line: the width to lay slips out
// at (receipt.Page) for this paper.
func (r *Renderer) Columns() int { return r.dots / CellWidth }

// HasGlyph reports whether c is drawn as itself rather than the font's
// "missing" box.
func (r *Renderer) HasGlyph(c rune) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.faceFor(c) != nil
}

// faceFor is the face that has c: Go Mono for one-column characters it has,
// else the CJK font; nil when neither has it. Called with r.mu held.
func (r *Renderer) faceFor(c rune) font.Face {
	if receipt.RuneWidth(c) == 1 {
		if x, err := r.mono.GlyphIndex(&r.buf, c); err == nil && x != 0 {
			return r.latin
		}
	}
	if x, err := r.font.GlyphIndex(&r.buf, c); err == nil && x != 0 {
		return r.face
	}
	return nil
}

// row is one physical print line: the runs that fit on it.
type row struct {
	runs   []printer.Run
	width  int // dots
	height int // size multiplier of the tallest run
	align  printer.Align
}

// rows breaks a page's lines into print lines, wrapping at the right edge as
// the printer does when a line is too long.
func (r *Renderer) rows(p printer.Page) []row {
	var out []row
	for _, l := range p.Lines {
		cur := row{height: max(1, l.Empty.Height), align: l.Align}
		if len(l.Runs) > 0 {
			cur.height = 1
		}
		for _, run := range l.Runs {
			w, h := max(1, run.Width), max(1, run.Height)
			var text strings.Builder
			flush := func() {
				if text.Len() > 0 {
					cur.runs = append(cur.runs, printer.Run{Text: text.String(), Format: run.Format})
					text.Reset()
				}
			}
			for _, c := range run.Text {
				cw := receipt.RuneWidth(c) * CellWidth * w
				if cw == 0 {
					continue
				}
				if cur.width+cw > r.dots && cur.width > 0 {
					flush()
					out = append(out, cur)
					cur = row{height: 1, align: l.Align}
				}
				text.WriteRune(c)
				cur.width += cw
				cur.height = max(cur.height, h)
			}
			flush()
		}
		out = append(out, cur)
	}
	return out
}

func pitch(height int) int { return CellHeight*height + lineGap }

// Page draws one printed page. A page that ended with a cut gets the cut line
// at the bottom; one that did not ends where the paper was torn off.
func (r *Renderer) Page(p printer.Page) *image.Gray {
	rows := r.rows(p)
	h := topMargin
	for i, rw := range rows {
		if h+pitch(rw.height)+cutMargin > MaxHeight {
			rows = rows[:i]
			break
		}
		h += pitch(rw.height)
	}
	h += cutMargin
	img := image.NewGray(image.Rect(0, 0, r.Width(), h))
	for i := range img.Pix {
		img.Pix[i] = 255 // white paper; draw.Draw with image.White takes the slow generic path
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	y := topMargin
	for _, rw := range rows {
		x := r.margin
		switch rw.align {
		case printer.Center:
			x += (r.dots - rw.width) / 2
		case printer.Right:
			x += r.dots - rw.width
		}
		for _, run := range rw.runs {
			w, hh := max(1, run.Width), max(1, run.Height)
			// Characters of a line share its bottom, as on the printer.
			top := y + CellHeight*(rw.height-hh)
			for _, c := range run.Text {
				g := r.glyph(c)
				if g == nil {
					continue
				}
				blit(img, g, x, top, w, hh, run.Bold)
				x += g.Rect.Dx() * w
			}
		}
		y += pitch(rw.height)
	}
	if p.Cut {
		cutLine(img, h-1)
	}
	return img
}

// glyph is c rasterised into its cells (one or two wide), or nil for a
// character that takes no column. Called with r.mu held.
func (r *Renderer) glyph(c rune) *image.Alpha {
	if g, ok := r.glyphs[c]; ok {
		return g
	}
	cols := receipt.RuneWidth(c)
	if cols == 0 {
		r.glyphs[c] = nil
		return nil
	}
	cw := cols * CellWidth
	cell := image.NewAlpha(image.Rect(0, 0, cw, CellHeight))
	face := r.faceFor(c)
	if face == nil {
		face = r.face // draws the font's "missing" box, which is what a printer does too
	}
	dr, mask, mp, adv, ok := face.Glyph(fixed.P(0, r.baseline), c)
	if ok && !dr.Empty() {
		a := adv.Ceil()
		if a <= cw {
			// Centre a narrow glyph in its cells, as fixed-pitch fonts do.
			draw.Draw(cell, dr.Add(image.Pt((cw-a)/2, 0)), mask, mp, draw.Over)
		} else {
			// A proportional font's wide Latin letter (M, W): squeeze it
			// into the cell instead of overlapping its neighbours.
			wide := image.NewAlpha(image.Rect(0, 0, a+1, CellHeight))
			draw.Draw(wide, dr, mask, mp, draw.Over)
			squeeze(cell, wide)
		}
	}
	r.glyphs[c] = cell
	return cell
}

// squeeze scales src horizontally into dst by averaging the columns that
// fall on each destination column.
func squeeze(dst, src *image.Alpha) {
	sw, dw := src.Rect.Dx(), dst.Rect.Dx()
	for y := range dst.Rect.Dy() {
		for x := range dw {
			x0, x1 := x*sw/dw, max((x+1)*sw/dw, x*sw/dw+1)
			sum := 0
			for sx := x0; sx < x1; sx++ {
				sum += int(src.AlphaAt(sx, y).A)
			}
			dst.SetAlpha(x, y, color.Alpha{A: uint8(sum / (x1 - x0))})
		}
	}
}

// blit prints mask at (x, y) scaled by w×h dots per pixel, as a printer
// doubles its dots for double size; bold strikes each dot twice, the second
// a dot to the right, as ESC E does on a thermal head.
func blit(img *image.Gray, mask *image.Alpha, x, y, w, h int, bold bool) {
	b := img.Rect
	put := func(px, py int, a uint8) {
		if px < b.Min.X || px >= b.Max.X || py < b.Min.Y || py >= b.Max.Y {
			return
		}
		i := img.PixOffset(px, py)
		if v := 255 - a; v < img.Pix[i] {
			img.Pix[i] = v
		}
	}
	for my := range mask.Rect.Dy() {
		for mx := range mask.Rect.Dx() {
			a := mask.AlphaAt(mx, my).A
			if a == 0 {
				continue
			}
			for dy := range h {
				for dx := range w {
					px, py := x+mx*w+dx, y+my*h+dy
					put(px, py, a)
					if bold {
						put(px+1, py, a)
					}
				}
			}
		}
	}
}

// cutLine draws the cut across the paper: dashes, as the edge a partial cut
// leaves looks on a photo of a slip.
func cutLine(img *image.Gray, y int) {
	for x := img.Rect.Min.X; x < img.Rect.Max.X; x++ {
		if x/6%2 == 0 {
			img.SetGray(x, y, color.Gray{Y: 0})
		}
	}
}

// ESCPOS decodes an ESC/POS stream and draws each of its pages (see
// printer.DecodePages): one picture per cut, and one for text left after the
// last cut.
func (r *Renderer) ESCPOS(b []byte) []*image.Gray {
	var out []*image.Gray
	for _, p := range printer.DecodePages(b) {
		out = append(out, r.Page(p))
	}
	return out
}
