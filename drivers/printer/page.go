package printer

import "strings"

// Format is the character formatting a run of text was printed in.
type Format struct {
	Bold bool
	// Width and Height are the size multipliers (1 to 8); 0 reads as 1.
	Width, Height int
	// Align is the justification; it applies to whole lines (see Line.Align).
	Align Align
}

// norm is f as kept on a run: sizes at least 1, and without the alignment,
// which belongs to the line, so runs differing only in it are merged.
func (f Format) norm() Format {
	f.Width, f.Height = max(1, f.Width), max(1, f.Height)
	f.Align = Left
	return f
}

// Run is text printed in one format.
type Run struct {
	Text string
	Format
}

// Line is one printed line: its runs of text and its justification.
type Line struct {
	Runs  []Run
	Align Align
	// Empty is the format in effect when an empty line was fed: its height
	// is how far the paper moved.
	Empty Format
}

// Text is the line's text without formatting.
func (l Line) Text() string {
	var b strings.Builder
	for _, r := range l.Runs {
		b.WriteString(r.Text)
	}
	return b.String()
}

// Height is the line's tallest size multiplier (at least 1).
func (l Line) Height() int {
	h := max(1, l.Empty.Height)
	for _, r := range l.Runs {
		h = max(h, r.Height)
	}
	return h
}

// Page is what a printer put on paper up to a cut: the lines in order. Cut
// says a cut ended it (a page taken before the cut, or the tail of a stream
// without one, has Cut false).
type Page struct {
	Lines []Line
	Cut   bool
	// unterminated says the last line was not ended by a line feed.
	unterminated bool
}

// Text is the page as Decoder.Page gives it: each line's text followed by a
// newline, the last line without one when no line feed ended it.
func (p Page) Text() string {
	var b strings.Builder
	for i, l := range p.Lines {
		b.WriteString(l.Text())
		if i < len(p.Lines)-1 || !p.unterminated {
			b.WriteByte('\n')
		}
	}
	return b.String()
}

// DecodePages decodes a whole ESC/POS stream into its pages: one per cut, and
// the text after the last cut as a final page without Cut when there is any.
func DecodePages(b []byte) []Page {
	var pages []Page
	d := Decoder{CutPage: func(p Page) { pages = append(pages, p) }}
	d.Write(b)
	if rest := d.Lines(); len(rest.Lines) > 0 {
		pages = append(pages, rest)
	}
	return pages
}
