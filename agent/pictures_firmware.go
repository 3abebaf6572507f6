//go:build firmware

package agent

import "github.com/posagent/posagent/agent/sim/inproc"

// slipPictures: firmware builds draw no slip pictures (see pictures_demo.go).
func slipPictures(int) (inproc.Pictures, error) { return nil, nil }
