//go:build !firmware

package agent

import (
	"log/slog"

	"github.com/posagent/posagent/agent/sim"
	"github.com/posagent/posagent/agent/slipimage"
)

// slipPictures draws the simulated printer's slips as PNG pictures, so the
// demo leaves a slip one can look at. Without a CJK font (Debian's
// fonts-wqy-microhei) the demo goes on with text slips only. Firmware
// builds leave the renderer out: a terminal has a real printer.
func slipPictures(width int, log *slog.Logger) sim.Pictures {
	r, err := slipimage.New(slipimage.Options{Dots: width * slipimage.CellWidth})
	if err != nil {
		log.Warn("slip pictures off", "err", err)
		return nil
	}
	return r
}
