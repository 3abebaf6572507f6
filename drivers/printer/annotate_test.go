package printer

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/text/encoding/simplifiedchinese"

	"github.com/posagent/posagent/agent/receipt"
	"github.com/posagent/posagent/agent/testkit/golden"
)

// annotate lists an ESC/POS stream one command or text run per line, bytes in
// hex and what they mean, so a golden diff reads as a change of layout.
func annotate(b []byte) string {
	var out strings.Builder
	emit := func(raw []byte, what string) { fmt.Fprintf(&out, "%-24s %s\n", fmt.Sprintf("% X", raw), what) }
	names := map[string]string{"\x1b@": "ESC @ init", "\x1ba": "ESC a align", "\x1bE": "ESC E bold",
		"\x1d!": "GS ! size", "\x1bd": "ESC d feed lines", "\x1dV": "GS V cut", "\x1c&": "FS & Chinese on",
		"\x1c.": "FS . Chinese off", "\x10\x04": "DLE EOT status"}
	chinese := false
	for i := 0; i < len(b); {
		c := b[i]
		switch {
		case c == ESC || c == GS || c == FS || c == DLE:
			n := 2
			if i+2 <= len(b) {
				if p := params(b[i : i+2]); p > 0 {
					n += p
				}
			}
			n = min(n, len(b)-i)
			cmd := b[i : i+n]
			name := names[string(cmd[:min(2, len(cmd))])]
			if string(cmd[:2]) == "\x1c&" {
				chinese = true
			} else if string(cmd[:2]) == "\x1c." {
				chinese = false
			}
			emit(cmd, name)
			i += n
		case c == LF:
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

// TestGoldenAnnotated keeps a readable twin of the byte golden file.
func TestGoldenAnnotated(t *testing.T) {
	golden.Check(t, filepath.Join("testdata", "sale_merchant.annotated.golden"), []byte(annotate(Encode(receipt.Copies(sampleReceipt())[0], 32, 4))))
}
