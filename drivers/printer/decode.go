package printer

import (
	"strings"

	"golang.org/x/text/encoding/simplifiedchinese"
)

// Decoder turns an ESC/POS stream back into the text a printer would put on
// paper, one page per cut. The printer emulator and tests use it; it knows
// the commands Encoder sends and skips the parameters of the other common
// ones. Formatting is dropped: the page is the text as UTF-8.
type Decoder struct {
	// Query, when set, is called for each real-time status request (DLE
	// EOT n) as it is decoded, so an emulator can answer it at once.
	Query func(n byte)
	// Cut, when set, is called with each page's text at a cut.
	Cut func(page string)
	// Feed, when set, is called for each line fed (LF, ESC d n), so an
	// emulator can run out of paper part way down a slip.
	Feed func()

	page    strings.Builder
	gb      []byte // Chinese-mode bytes not yet decoded
	chinese bool
	// state is the command being parsed: the bytes of its prefix so far.
	state []byte
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

// Discard drops the text since the last cut, as a printer does with a job it
// could not print; the state of Chinese mode is kept.
func (d *Decoder) Discard() {
	d.gb = d.gb[:0]
	d.page.Reset()
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
		d.page.WriteByte('\n')
		d.feed()
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
		d.page.WriteByte(c)
	}
}

func (d *Decoder) command(cmd []byte) {
	switch {
	case cmd[0] == ESC && cmd[1] == '@':
		d.chinese = false
	case cmd[0] == ESC && cmd[1] == 'd':
		for range cmd[2] {
			d.page.WriteByte('\n')
			d.feed()
		}
	case cmd[0] == FS && cmd[1] == '&':
		d.chinese = true
	case cmd[0] == FS && cmd[1] == '.':
		d.chinese = false
	case cmd[0] == GS && cmd[1] == 'V':
		if d.Cut != nil {
			d.Cut(d.page.String())
		}
		d.page.Reset()
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
	d.page.Write(s)
	d.gb = d.gb[:0]
}

func (d *Decoder) feed() {
	if d.Feed != nil {
		d.Feed()
	}
}
