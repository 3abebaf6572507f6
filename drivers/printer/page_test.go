package printer

import (
	"slices"
	"strings"
	"testing"

	"github.com/posagent/posagent/agent/receipt"
)

// TestDecodePagesKeepsFormatting decodes a slip copy into formatted lines: the
// text is the slip's, and the title and amount come back bold and double
// height as Encode sent them, every other line plain.
func TestDecodePagesKeepsFormatting(t *testing.T) {
	for _, s := range receipt.Copies(sampleReceipt()) {
		pages := DecodePages(Encode(s, 32, 4))
		if len(pages) != 1 || !pages[0].Cut {
			t.Fatalf("%s copy: %d pages (cut %v)", s.Copy, len(pages), len(pages) > 0 && pages[0].Cut)
		}
		p := pages[0]
		if want := receipt.Text(s, 32) + "\n\n\n\n"; p.Text() != want {
			t.Errorf("%s copy: text\n%s\nwant\n%s", s.Copy, p.Text(), want)
		}
		var emph []string
		for _, l := range p.Lines {
			for _, r := range l.Runs {
				big := r.Bold && r.Height == 2 && r.Width == 1
				plain := !r.Bold && r.Height == 1 && r.Width == 1
				switch {
				case big:
					emph = append(emph, strings.TrimSpace(r.Text))
				case !plain:
					t.Errorf("run %q in %+v", r.Text, r.Format)
				}
			}
		}
		if want := []string{"银联POS签购单", "POS SALES SLIP", "RMB 0.01"}; !slices.Equal(emph, want) {
			t.Errorf("%s copy: emphasised %q, want %q", s.Copy, emph, want)
		}
	}
}

func TestDecoderFormatCommands(t *testing.T) {
	var e Encoder
	e.Init().Align(Center).Bold(true).Text("AB").Bold(false).Size(2, 3).Line("中文").
		Size(1, 1).Align(Right).LF().Init().Line("x")
	b := append(e.Bytes(), ESC, '!', 0x38, 'y', LF, ESC, 'a', '1', 'z', GS, 'V', 1, 't', 'a', 'i', 'l')
	pages := DecodePages(b)
	if len(pages) != 2 || !pages[0].Cut || pages[1].Cut {
		t.Fatalf("pages %+v", pages)
	}
	l := pages[0].Lines
	if len(l) != 5 {
		t.Fatalf("%d lines: %+v", len(l), l)
	}
	want0 := []Run{{"AB", Format{Bold: true, Width: 1, Height: 1}}, {"中文", Format{Width: 2, Height: 3}}}
	if l[0].Align != Center || !slices.Equal(l[0].Runs, want0) || l[0].Height() != 3 || l[0].Text() != "AB中文" {
		t.Errorf("line 0: %+v", l[0])
	}
	if l[1].Align != Right || len(l[1].Runs) != 0 || l[1].Height() != 1 {
		t.Errorf("empty right-aligned line: %+v", l[1])
	}
	if l[2].Align != Left || l[2].Runs[0] != (Run{"x", Format{Width: 1, Height: 1}}) {
		t.Errorf("ESC @ did not reset: %+v", l[2])
	}
	if r := l[3].Runs[0]; r != (Run{"y", Format{Bold: true, Width: 2, Height: 2}}) {
		t.Errorf("ESC ! 0x38: %+v", r)
	}
	// 'z' was printed after ESC a '1' (ASCII digit form) and cut before a
	// line feed ended its line.
	if l[4].Align != Center || l[4].Text() != "z" || pages[0].Text() != "AB中文\n\nx\ny\nz" {
		t.Errorf("last line %+v, page text %q", l[4], pages[0].Text())
	}
	if pages[1].Text() != "tail" {
		t.Errorf("tail %q", pages[1].Text())
	}
}
