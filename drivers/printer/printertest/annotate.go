package printertest

import (
	"fmt"
	"strings"

	"golang.org/x/text/encoding/simplifiedchinese"

	"github.com/posagent/posagent/drivers/printer"
)

// commands are the ESC/POS commands printer.Encoder sends (and DLE EOT, the
// status request): name and number of parameter bytes.
var commands = map[string]struct {
	name   string
	params int
}{
	"\x1b@":    {"ESC @ init", 0},
	"\x1ba":    {"ESC a align", 1},
	"\x1bE":    {"ESC E bold", 1},
	"\x1b!":    {"ESC ! print mode", 1},
	"\x1bd":    {"ESC d feed lines", 1},
	"\x1d!":    {"GS ! size", 1},
	"\x1dV":    {"GS V cut", 1},
	"\x1c&":    {"FS & Chinese on", 0},
	"\x1c.":    {"FS . Chinese off", 0},
	"\x10\x04": {"DLE EOT status", 1},
}

// param says what a command's parameter means, for the commands whose
// parameter is a setting.
func param(cmd []byte) string {
	if len(cmd) < 3 {
		return ""
	}
	n := cmd[2]
	switch string(cmd[:2]) {
	case "\x1ba":
		if a := n & 0x0F; a <= 2 {
			return " " + [...]string{"left", "centre", "right"}[a]
		}
	case "\x1bE":
		if n&1 != 0 {
			return " on"
		}
		return " off"
	case "\x1d!":
		return fmt.Sprintf(" %dx%d", 1+n>>4&7, 1+n&7)
	case "\x1bd":
		return fmt.Sprintf(" %d", n)
	case "\x1dV":
		switch n {
		case 0, 48, 65:
			return " full"
		case 1, 49, 66:
			return " partial"
		}
	}
	return ""
}

// Annotate lists an ESC/POS stream one command or text run per line: the
// bytes in hex and what they mean, text decoded (GB18030 inside FS & … FS .),
// so a golden file's diff reads as a change of layout. A command it does not
// know is listed as its first two bytes and "?".
func Annotate(b []byte) string {
	var out strings.Builder
	emit := func(raw []byte, what string) { fmt.Fprintf(&out, "%-24s %s\n", fmt.Sprintf("% X", raw), what) }
	chinese := false
	for i := 0; i < len(b); {
		c := b[i]
		switch {
		case c == printer.ESC || c == printer.GS || c == printer.FS || c == printer.DLE:
			n := min(2, len(b)-i)
			cmd, ok := commands[string(b[i:i+n])]
			if !ok {
				emit(b[i:i+n], "?")
				i += n
				continue
			}
			if n += cmd.params; string(b[i:i+2]) == "\x1dV" && i+2 < len(b) && (b[i+2] == 65 || b[i+2] == 66) {
				n++ // GS V m n
			}
			n = min(n, len(b)-i)
			switch string(b[i : i+2]) {
			case "\x1c&":
				chinese = true
			case "\x1c.":
				chinese = false
			}
			emit(b[i:i+n], cmd.name+param(b[i:i+n]))
			i += n
		case c == printer.LF:
			emit(b[i:i+1], "LF")
			i++
		default:
			j := i
			for j < len(b) && b[j] >= 0x20 && b[j] != 0x7F {
				j++
			}
			if j == i {
				emit(b[i:i+1], "?")
				i++
				continue
			}
			text := string(b[i:j])
			if chinese {
				if s, err := simplifiedchinese.GB18030.NewDecoder().String(text); err == nil {
					text = s
				}
			}
			fmt.Fprintf(&out, "%-24s %q\n", fmt.Sprintf("(%d bytes)", j-i), text)
			i = j
		}
	}
	return out.String()
}
