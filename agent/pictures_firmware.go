//go:build firmware

package agent

import "github.com/posagent/posagent/agent/sim"

// slipPictures: firmware builds draw no slip pictures (see pictures_demo.go).
func slipPictures(int) (sim.Pictures, error) { return nil, nil }
