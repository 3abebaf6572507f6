package printer

import (
	"strings"

	"golang.org/x/text/encoding/simplifiedchinese"
)

// Decoder turns an ESC/POS stream back into the text a printer would put on
// paper, one page per cut. The printer emulator and tests use it; it knows
// the commands Encoder sends and skips the parameters of the other common
// ones. Page and Cut give the text as UTF-8 without formatting; Lines and
// CutPage give the same text as lines that keep the formatting each run was
// printed in (bold, size, justification), for a picture of the paper.
type Decoder struct {
	// Query, when set, is called for each real-time status request (DLE
	// EOT n) as it is decoded, so an emulator can answer it at once.
	Query func(n byte)
	// Cut, when set, is called with each page's text at a cut.
	Cut func(page string)
	// Feed, when set, is called for each line fed (LF, ESC d n), so an
	// emulator can run out of paper part way down a page.
	Feed func()
	// CutPage, when set, is called at each cut with the page's formatted
	// lines (the same text Cut gets).
	CutPage func(Page)

	page    strings.Builder
	gb      []byte // Chinese-mode bytes not yet decoded
	chinese bool
	// state is the command being parsed: the bytes of its prefix so far.
	state []byte

	lines  []Line // finished lines of the page
	cur    Line   // the line being printed, without its last run
	format Format // formatting in effect for the next character
	align  Align  // justification in effect for the next line
	// run is the text of cur's last run, in runFormat; a builder, so a
	// long line arriving byte by byte costs linear time, not quadratic.
	run       strings.Builder
	runFormat Format
}

// Write decodes p; it never fails.
func (d *Decoder) Write(p []byte) (int, error) {
	for _, c := range p {
		d.byte(c)
	}
	return len(p), nil
}

// Page is the text since the last cut (or reset), as printed so far.
func (d *Decoder) Page() string {
	d.flushGB()
	return d.page.String()
}

// Lines is the page since the last cut as formatted lines, a line not yet
// ended by a line feed last.
func (d *Decoder) Lines() Page {
	d.flushGB()
	return d.snapshot(false)
}

// Discard drops the text since the last cut, as a printer does with a job it
// could not print; the state of Chinese mode and the formatting are kept.
func (d *Decoder) Discard() {
	d.gb = d.gb[:0]
	d.page.Reset()
	d.lines, d.cur = nil, Line{}
	d.run.Reset()
}

// params is how many parameter bytes follow a command prefix; -1 means the
// prefix is not complete yet.
func params(cmd []byte) int {
	switch cmd[0] {
	case ESC:
		if len(cmd) < 2 {
			return -1
		}
		switch cmd[1] {
		case '@', '<':
			return 0
		case 'a', 'E', '!', 'd', '-', 'M', 't', 'J', 'G', 'R', 'V', '{', 'r', 'e', '3':
			return 1
		case '$':
			return 2
		case 'p':
			return 3
		}
		return 0
	case GS:
		if len(cmd) < 2 {
			return -1
		}
		switch cmd[1] {
		case '!', 'r', 'B', 'H', 'f', 'h', 'w', 'a', 'I':
			return 1
		case 'V':
			if len(cmd) < 3 {
				return -1
			}
			if cmd[2] == 65 || cmd[2] == 66 {
				return 2 // GS V m n: m and n
			}
			return 1
		}
		return 0
	case FS:
		if len(cmd) < 2 {
			return -1
		}
		return 0
	case DLE:
		if len(cmd) < 2 {
			return -1
		}
		if cmd[1] == EOT || cmd[1] == 0x05 {
			return 1
		}
		return 0
	}
	return 0
}

func (d *Decoder) byte(c byte) {
	if len(d.state) > 0 {
		d.state = append(d.state, c)
		n := params(d.state)
		// The prefix is ESC/GS/FS/DLE plus the command letter (and for GS V
		// the mode byte, which counts among the parameters).
		if n < 0 || len(d.state) < 2+n {
			return
		}
		d.command(d.state)
		d.state = d.state[:0]
		return
	}
	switch c {
	case ESC, GS, FS, DLE:
		d.flushGB()
		d.state = append(d.state, c)
	case LF:
		d.flushGB()
		d.newline()
	default:
		if c < 0x20 || c == 0x7F {
			return // other controls (CR, HT …) print nothing here
		}
		if d.chinese {
			d.gb = append(d.gb, c)
			return
		}
		if c >= 0x80 {
			c = '?' // outside Chinese mode the printer's code page is not UTF-8
		}
		d.text(string(rune(c)))
	}
}

func (d *Decoder) command(cmd []byte) {
	switch {
	case cmd[0] == ESC && cmd[1] == '@':
		d.chinese = false
		d.format, d.align = Format{}, Left
	case cmd[0] == ESC && cmd[1] == 'd':
		for range cmd[2] {
			d.newline()
		}
	case cmd[0] == ESC && cmd[1] == 'E':
		d.format.Bold = cmd[2]&1 != 0
	case cmd[0] == ESC && cmd[1] == 'a':
		// ESC a takes 0-2 or their ASCII digits '0'-'2'.
		if a := Align(cmd[2] & 0x0F); a <= Right {
			d.align = a
		}
	case cmd[0] == ESC && cmd[1] == '!':
		// Print mode: bit 3 emphasis, bit 4 double height, bit 5 double width.
		d.format.Bold = cmd[2]&0x08 != 0
		d.format.Width, d.format.Height = 1+int(cmd[2]>>5&1), 1+int(cmd[2]>>4&1)
	case cmd[0] == GS && cmd[1] == '!':
		d.format.Width, d.format.Height = 1+int(cmd[2]>>4&7), 1+int(cmd[2]&7)
	case cmd[0] == FS && cmd[1] == '&':
		d.chinese = true
	case cmd[0] == FS && cmd[1] == '.':
		d.chinese = false
	case cmd[0] == GS && cmd[1] == 'V':
		if d.Cut != nil {
			d.Cut(d.page.String())
		}
		if d.CutPage != nil {
			d.CutPage(d.snapshot(true))
		}
		d.page.Reset()
		d.lines, d.cur = nil, Line{}
		d.run.Reset()
	case cmd[0] == DLE && cmd[1] == EOT:
		if d.Query != nil {
			d.Query(cmd[2])
		}
	}
}

func (d *Decoder) flushGB() {
	if len(d.gb) == 0 {
		return
	}
	s, err := simplifiedchinese.GB18030.NewDecoder().Bytes(d.gb)
	if err != nil {
		s = []byte(strings.Repeat("?", len(d.gb)))
	}
	d.text(string(s))
	d.gb = d.gb[:0]
}

// text adds printed text to the page and to the current line, in a run of
// its own when the formatting changed since the line's last run.
func (d *Decoder) text(s string) {
	d.page.WriteString(s)
	if len(d.cur.Runs) == 0 && d.run.Len() == 0 {
		// A printer justifies a line by the setting at its first character.
		d.cur.Align = d.align
	}
	if f := d.format.norm(); f != d.runFormat {
		d.endRun()
		d.runFormat = f
	}
	d.run.WriteString(s)
}

// endRun moves the open run, if any, into the current line.
func (d *Decoder) endRun() {
	if d.run.Len() > 0 {
		d.cur.Runs = append(d.cur.Runs, Run{Text: d.run.String(), Format: d.runFormat})
		d.run.Reset()
	}
}

// newline ends the current line (LF, or each line ESC d feeds).
func (d *Decoder) newline() {
	d.page.WriteByte('\n')
	d.endRun()
	if len(d.cur.Runs) == 0 {
		// An empty line is as tall as the size in effect (ESC/POS feeds by
		// the line height, which grows with the character height).
		d.cur.Align = d.align
		d.cur.Empty = d.format.norm()
	}
	d.lines = append(d.lines, d.cur)
	d.cur = Line{}
	d.feed()
}

// snapshot copies the page's lines; cut marks it as ended by a cut.
func (d *Decoder) snapshot(cut bool) Page {
	p := Page{Lines: append([]Line(nil), d.lines...), Cut: cut}
	if len(d.cur.Runs) > 0 || d.run.Len() > 0 {
		// The current line keeps growing: hand out a copy.
		cur := d.cur
		cur.Runs = append([]Run(nil), cur.Runs...)
		if d.run.Len() > 0 {
			cur.Runs = append(cur.Runs, Run{Text: d.run.String(), Format: d.runFormat})
		}
		p.Lines = append(p.Lines, cur)
		p.unterminated = true
	}
	return p
}

func (d *Decoder) feed() {
	if d.Feed != nil {
		d.Feed()
	}
}
