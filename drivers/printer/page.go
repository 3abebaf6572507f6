package printer

import "strings"

// Format is the character formatting of a run of text. The zero Format is
// the printer's normal text: not bold, normal size.
type Format struct {
	// Bold is emphasis (ESC E): each dot struck twice.
	Bold bool
	// Width and Height are size multipliers (GS !), 1 to 8; 0 means 1 and
	// larger values print as 8. A double-height run keeps the columns of a
	// layout measured in columns; a double-width one takes twice as many.
	Width, Height int
}

// norm is f as the printer applies it: sizes from 1 to 8.
func (f Format) norm() Format {
	f.Width, f.Height = clamp(f.Width), clamp(f.Height)
	return f
}

// Run is text printed in one format.
type Run struct {
	Text string
	Format
}

// Line is one printed line: its runs of text, left to right, and its
// justification. A line is one line on paper whatever its text holds: a
// control character in it (a line feed too) prints as '?'. A line wider
// than the paper wraps, as the printer wraps it.
type Line struct {
	Runs  []Run
	Align Align // Left, Center or Right
	// Empty is the format in effect for a line without text: its height is
	// how far the paper moves (a blank line in double height feeds twice as
	// far as a normal one).
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

// Page is what is printed up to a cut: the lines in order, top to bottom.
// Printer.Print and Encode print a Page's lines and then feed and cut; the
// Decoder gives back a Page for what it was sent, its Cut set when a cut
// ended it (a page taken before the cut, or the tail of a stream without
// one, has Cut false). Print and Encode cut whatever Cut says.
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
