package ui

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/posagent/posagent/agent/receipt"
)

// DefaultCols is the Console's text width when Cols is not set: the 32 columns
// of the slip, which is also about what a POS terminal's LCD shows.
const DefaultCols = 32

// Console is a Display that prints each screen as a framed box of text on W,
// for the demo and for logs of a headless run. With Cols 24:
//
//	+- 签到 SIGN ON -----------+
//	| 正在连接收单主机         |
//	| [CANCEL] Abort           |
//	+--------------------------+
//
// Lines are wrapped to Cols display columns, a Chinese character counting two;
// the frame adds 4 columns, and every printed line starts with Prefix. A box is
// written with one Write under a mutex, so concurrent Draws never interleave.
type Console struct {
	W      io.Writer
	Cols   int    // text columns inside the frame; DefaultCols when <= 0
	Prefix string // put before every printed line, e.g. "screen| "

	mu sync.Mutex
}

var _ Display = (*Console)(nil)

// Draw prints one screen. It returns ctx's error without printing if ctx is
// done, and W's error wrapped.
func (c *Console) Draw(ctx context.Context, title string, lines []string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	box := c.render(title, lines)
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, err := io.WriteString(c.W, box); err != nil {
		return fmt.Errorf("ui: console: %w", err)
	}
	return nil
}

// render builds the box as text, one "\n"-terminated line per row.
func (c *Console) render(title string, lines []string) string {
	cols := c.Cols
	if cols <= 0 {
		cols = DefaultCols
	}
	var b strings.Builder
	row := func(s string) {
		b.WriteString(c.Prefix)
		b.WriteString(s)
		b.WriteByte('\n')
	}
	border := "+" + strings.Repeat("-", cols+2) + "+"
	text := func(s string) {
		for _, l := range receipt.Wrap(s, cols) {
			row("| " + l + strings.Repeat(" ", max(cols-receipt.Width(l), 0)) + " |")
		}
	}
	title = strings.TrimSpace(strings.ReplaceAll(title, "\n", " "))
	switch tw := receipt.Width(title); {
	case title == "":
		row(border)
	case tw <= cols-2:
		// "+- " + title + " " + dashes + "+" is cols+4 wide.
		row("+- " + title + " " + strings.Repeat("-", cols-tw-1) + "+")
	default:
		// Too long for the border: give it rows of its own under a plain one.
		row(border)
		text(title)
		row(border)
	}
	for _, l := range lines {
		text(l)
	}
	row(border)
	return b.String()
}
