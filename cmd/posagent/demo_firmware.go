//go:build firmware

package main

import (
	"context"
	"fmt"
	"io"
)

// runDemo: a firmware build has no simulators, so no demo. The terminal's
// install is `posagent run` on its own devices.
func runDemo(_ context.Context, _ []string, _, stderr io.Writer) int {
	fmt.Fprintln(stderr, "posagent: demo is not in this build (firmware has no simulated devices); use posagent run --config FILE")
	return 2
}
