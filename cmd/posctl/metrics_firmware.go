//go:build firmware

package main

import (
	"errors"
	"io"

	"github.com/posagent/posagent/agent/central/monitor"
)

// serveMetrics: the firmware build of posctl runs on the terminal, where no one
// scrapes, and it is spared client_golang's weight.
func serveMetrics(string, *monitor.Options, io.Writer) (func(), error) {
	return nil, errors.New("--metrics is not in this build (firmware); run posctl watch --metrics from a central host")
}
