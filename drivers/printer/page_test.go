package printer_test

import (
	"slices"
	"testing"

	"github.com/posagent/posagent/drivers/printer"
)

func TestDecoderFormatCommands(t *testing.T) {
	var e printer.Encoder
	e.Init().Align(printer.Center).Bold(true).Text("AB").Bold(false).Size(2, 3).Line("中文").
		Size(1, 1).Align(printer.Right).LF().Init().Line("x")
	b := append(e.Bytes(), printer.ESC, '!', 0x38, 'y', printer.LF, printer.ESC, 'a', '1', 'z', printer.GS, 'V', 1, 't', 'a', 'i', 'l')
	pages := printer.DecodePages(b)
	if len(pages) != 2 || !pages[0].Cut || pages[1].Cut {
		t.Fatalf("pages %+v", pages)
	}
	l := pages[0].Lines
	if len(l) != 5 {
		t.Fatalf("%d lines: %+v", len(l), l)
	}
	want0 := []printer.Run{{Text: "AB", Format: printer.Format{Bold: true, Width: 1, Height: 1}}, {Text: "中文", Format: printer.Format{Width: 2, Height: 3}}}
	if l[0].Align != printer.Center || !slices.Equal(l[0].Runs, want0) || l[0].Height() != 3 || l[0].Text() != "AB中文" {
		t.Errorf("line 0: %+v", l[0])
	}
	if l[1].Align != printer.Right || len(l[1].Runs) != 0 || l[1].Height() != 1 {
		t.Errorf("empty right-aligned line: %+v", l[1])
	}
	if l[2].Align != printer.Left || l[2].Runs[0] != (printer.Run{Text: "x", Format: printer.Format{Width: 1, Height: 1}}) {
		t.Errorf("ESC @ did not reset: %+v", l[2])
	}
	if r := l[3].Runs[0]; r != (printer.Run{Text: "y", Format: printer.Format{Bold: true, Width: 2, Height: 2}}) {
		t.Errorf("ESC ! 0x38: %+v", r)
	}
	// 'z' was printed after ESC a '1' (ASCII digit form) and cut before a
	// line feed ended its line.
	if l[4].Align != printer.Center || l[4].Text() != "z" || pages[0].Text() != "AB中文\n\nx\ny\nz" {
		t.Errorf("last line %+v, page text %q", l[4], pages[0].Text())
	}
	if pages[1].Text() != "tail" {
		t.Errorf("tail %q", pages[1].Text())
	}
}
