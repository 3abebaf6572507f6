//go:build !firmware

package agent

import (
	"errors"
	"fmt"

	"github.com/posagent/posagent/agent/sim/inproc"
	"github.com/posagent/posagent/agent/sim/slipimage"
)

// slipFontPaths are where the slip pictures' CJK font is looked for (nil:
// slipimage.DefaultFontPaths). Tests point them at nothing to see the demo
// on a machine without the font.
var slipFontPaths []string

// slipPictures draws the simulated printer's slips as PNG pictures, so the
// demo leaves a slip one can look at. Without a CJK font (Debian's
// fonts-wqy-microhei) the demo goes on with text slips only, and the error
// says so in one line for the screen. Firmware builds leave the renderer
// out: a terminal has a real printer.
func slipPictures(width int) (inproc.Pictures, error) {
	r, err := slipimage.New(slipimage.Options{Dots: width * slipimage.CellWidth, SearchPaths: slipFontPaths})
	if errors.Is(err, slipimage.ErrNoFont) {
		// `make demo` installs nothing; the project's script does, on request.
		return nil, fmt.Errorf("slips as text only: no CJK font for the pictures (scripts/deps.sh demo installs %s)", slipimage.FontPackage)
	}
	if err != nil {
		return nil, fmt.Errorf("slips as text only: %w", err)
	}
	return r, nil
}
