package ui

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/posagent/posagent/agent/receipt"
)

// More ends a body row when the body did not fit, so the installer knows text
// was cut. It is ASCII on purpose: "…" is ambiguous-width and may take one or
// two columns depending on the LCD's font.
const More = ".."

// Layout fits a screen onto a text display of rows × cols display columns (a
// Chinese character counting two) and returns exactly rows rows, none wider
// than cols and without trailing spaces:
//
//   - row 0 is the title, centred;
//   - the footer (typically the keys that answer) sits on the bottom rows, so
//     the installer always sees what to press;
//   - the body fills the rows between, wrapped; a body that does not fit is
//     cut and its last visible row ends with More.
//
// A footer taller than the display keeps its first rows. rows below 1 or cols
// below 4 give a blank screen of at least one row: there is nothing useful to
// show on such a display, but the caller's loop must not crash either.
func Layout(rows, cols int, title string, body, footer []string) []string {
	rows = max(rows, 1)
	out := make([]string, 0, rows)
	if cols < 4 {
		for len(out) < rows {
			out = append(out, "")
		}
		return out
	}
	t := truncate(strings.TrimSpace(strings.ReplaceAll(title, "\n", " ")), cols)
	out = append(out, strings.TrimRight(strings.Repeat(" ", (cols-receipt.Width(t))/2)+t, " "))

	var foot []string
	for _, f := range footer {
		foot = append(foot, receipt.Wrap(f, cols)...)
	}
	if len(foot) > rows-1 {
		foot = foot[:rows-1]
	}
	area := rows - 1 - len(foot)
	var text []string
	for _, b := range body {
		text = append(text, receipt.Wrap(b, cols)...)
	}
	if len(text) > area && area > 0 {
		last := truncate(text[area-1], cols-len(More))
		text = append(text[:area-1], strings.TrimRight(last, " ")+More)
	}
	if len(text) > area {
		text = text[:area]
	}
	out = append(out, text...)
	for len(out) < rows-len(foot) {
		out = append(out, "")
	}
	return append(out, foot...)
}

// truncate cuts s to at most w display columns, never inside a rune.
func truncate(s string, w int) string {
	n := 0
	for i, r := range s {
		rw := receipt.RuneWidth(r)
		if n+rw > w {
			return s[:i]
		}
		n += rw
	}
	return s
}

// Pad right-pads s with spaces to w display columns.
func Pad(s string, w int) string {
	return s + strings.Repeat(" ", max(w-receipt.Width(s), 0))
}

// Grid is a Display that stands in for the terminal's LCD: every screen is
// laid out on exactly Rows × Cols (see Layout) and printed framed on W, so
// what the demo and the golden transcripts show is what fits on the glass.
// With Rows 4 and Cols 16:
//
//	+----------------+
//	|  安装 INSTALL  |
//	|密码 Password:  |
//	|****            |
//	|OK 确认 X 退出  |
//	+----------------+
//
// Draw's title is row 0 and its lines the rows under it; a caller that wants
// a footer pinned to the bottom lays the screen out itself with Layout and
// passes the result, which Grid then draws unchanged.
type Grid struct {
	W      io.Writer
	Rows   int
	Cols   int
	Prefix string // put before every printed line, e.g. "screen| "

	mu sync.Mutex
}

var _ Display = (*Grid)(nil)

// Draw prints one screen, with one Write under a mutex so concurrent Draws
// never interleave. It returns ctx's error without printing if ctx is done.
func (g *Grid) Draw(ctx context.Context, title string, lines []string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	rows := Layout(g.Rows, g.Cols, title, lines, nil)
	cols := max(g.Cols, 0)
	var b strings.Builder
	border := g.Prefix + "+" + strings.Repeat("-", cols) + "+\n"
	b.WriteString(border)
	for _, r := range rows {
		b.WriteString(g.Prefix + "|" + Pad(r, cols) + "|\n")
	}
	b.WriteString(border)
	g.mu.Lock()
	defer g.mu.Unlock()
	if _, err := io.WriteString(g.W, b.String()); err != nil {
		return fmt.Errorf("ui: grid: %w", err)
	}
	return nil
}
