// Package printer drives an ESC/POS receipt printer over a serial line: it
// prints pages of styled lines (Page: text in bold or double size, left,
// centred or right), feeds and cuts after each, and reads the real-time
// status back on the same line (DLE EOT) before and after every page. Chinese
// text is sent in GB18030.
//
// It knows nothing of what it prints: which lines are a title or an amount,
// and how a receipt is laid out, is its caller's business (agent/receipt for
// the UnionPay sales slip). A Decoder reads the same stream back into Pages,
// for an emulator and for tests; package printertest has a fake printer.
//
// The package never opens a device: it is given an io.ReadWriter (usually a
// serialport.Port) and never closes it.
package printer

import (
	"strings"
	"unicode/utf8"

	"golang.org/x/text/encoding/simplifiedchinese"
)

// ESC/POS control bytes.
const (
	LF  = 0x0A
	ESC = 0x1B
	GS  = 0x1D
	FS  = 0x1C
	DLE = 0x10
	EOT = 0x04
)

// Align is the justification set with ESC a.
type Align byte

// Justifications.
const (
	Left   Align = 0
	Center Align = 1
	Right  Align = 2
)

// Encoder builds an ESC/POS byte stream. Its methods return the Encoder so a
// page reads top to bottom; Bytes returns the result. The zero value is ready.
type Encoder struct {
	buf []byte
}

// Init resets the printer (ESC @): formatting back to defaults, Chinese mode off.
func (e *Encoder) Init() *Encoder { e.buf = append(e.buf, ESC, '@'); return e }

// Align sets the justification of the following lines (ESC a n).
func (e *Encoder) Align(a Align) *Encoder { e.buf = append(e.buf, ESC, 'a', byte(a)); return e }

// Bold turns emphasis on or off (ESC E n).
func (e *Encoder) Bold(on bool) *Encoder { e.buf = append(e.buf, ESC, 'E', b2b(on)); return e }

// Size sets the character size (GS ! n): width and height are multipliers
// from 1 to 8, clamped. Size(1, 1) is normal, Size(2, 2) double size.
func (e *Encoder) Size(width, height int) *Encoder {
	w, h := clamp(width), clamp(height)
	e.buf = append(e.buf, GS, '!', byte((w-1)<<4|(h-1)))
	return e
}

// Text prints s without ending the line. ASCII goes as is; runs of other
// characters are sent in GB18030 inside FS & … FS . (Chinese mode), which the
// printer leaves again before the next ASCII. Control characters are replaced
// by '?' so text from a merchant record can never smuggle in a command.
func (e *Encoder) Text(s string) *Encoder {
	for s != "" {
		i := strings.IndexFunc(s, func(r rune) bool { return r >= utf8.RuneSelf })
		if i < 0 {
			i = len(s)
		}
		e.ascii(s[:i])
		s = s[i:]
		j := strings.IndexFunc(s, func(r rune) bool { return r < utf8.RuneSelf })
		if j < 0 {
			j = len(s)
		}
		if j > 0 {
			e.chinese(s[:j])
		}
		s = s[j:]
	}
	return e
}

func (e *Encoder) ascii(s string) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c == 0x7F {
			c = '?'
		}
		e.buf = append(e.buf, c)
	}
}

func (e *Encoder) chinese(s string) {
	enc := simplifiedchinese.GB18030.NewEncoder()
	e.buf = append(e.buf, FS, '&')
	for _, r := range s {
		if r == utf8.RuneError || (r >= 0x80 && r < 0xA0) {
			e.buf = append(e.buf, '?') // C1 controls and invalid UTF-8
			continue
		}
		b, err := enc.Bytes([]byte(string(r)))
		if err != nil || len(b) == 0 {
			e.buf = append(e.buf, '?')
			continue
		}
		e.buf = append(e.buf, b...)
	}
	e.buf = append(e.buf, FS, '.')
}

// Line prints s and ends the line (LF).
func (e *Encoder) Line(s string) *Encoder { return e.Text(s).LF() }

// LF ends the line.
func (e *Encoder) LF() *Encoder { e.buf = append(e.buf, LF); return e }

// Feed prints the buffer and feeds n lines (ESC d n), 0 to 255.
func (e *Encoder) Feed(n int) *Encoder {
	e.buf = append(e.buf, ESC, 'd', byte(max(0, min(n, 255))))
	return e
}

// Cut makes a partial cut (GS V 1): the slip stays attached by a tab, so a
// second copy printed right after does not fall on the floor.
func (e *Encoder) Cut() *Encoder { e.buf = append(e.buf, GS, 'V', 1); return e }

// Bytes returns the stream built so far.
func (e *Encoder) Bytes() []byte { return e.buf }

// DefaultFeed is how many lines a printer feeds before the cut unless told
// otherwise (Options.Feed): enough for the last line of a 58 mm printer to
// clear its cutter.
const DefaultFeed = 4

// Encode is p as ESC/POS, as Printer.Print sends it: a reset (ESC @), each
// line in its justification and each run in its format, then feed lines fed
// (ESC d) so the last line clears the cutter, and a partial cut (GS V 1),
// whatever p.Cut says.
//
// Formatting commands are sent only where the formatting changes, and the
// printer is back to normal text before the feed, so the fed lines are
// normal height. An empty line is fed in its Empty format. Decoding the
// result gives p's lines back, then the fed lines: adjacent runs of one
// format merged, sizes from 1 to 8, and what the printer cannot print
// (control characters, what GB18030 lacks) as '?'.
func Encode(p Page, feed int) []byte {
	var e Encoder
	e.Init().Align(Left)
	align, cur := Left, Format{}.norm()
	set := func(f Format) {
		f = f.norm()
		if f.Bold != cur.Bold {
			e.Bold(f.Bold)
		}
		if f.Width != cur.Width || f.Height != cur.Height {
			e.Size(f.Width, f.Height)
		}
		cur = f
	}
	for _, l := range p.Lines {
		a := l.Align
		if a > Right {
			a = Left
		}
		if a != align {
			e.Align(a)
			align = a
		}
		empty := true
		for _, r := range l.Runs {
			if r.Text == "" {
				continue
			}
			set(r.Format)
			e.Text(r.Text)
			empty = false
		}
		if empty {
			set(l.Empty)
		}
		e.LF()
	}
	set(Format{})
	return e.Feed(feed).Cut().Bytes()
}

func b2b(on bool) byte {
	if on {
		return 1
	}
	return 0
}

func clamp(n int) int { return max(1, min(n, 8)) }
