//go:build firmware

package agent

import (
	"log/slog"

	"github.com/posagent/posagent/agent/sim"
)

// slipPictures: firmware builds draw no slip pictures (see pictures_demo.go).
func slipPictures(int, *slog.Logger) sim.Pictures { return nil }
