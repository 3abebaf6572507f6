// Package reporttest starts report.Reporters for tests of the packages that
// read what terminals report (monitor, posctl): one reporter per simulated
// terminal, started and closed with the test.
package reporttest

import (
	"context"
	"testing"
	"time"

	"github.com/posagent/posagent/agent/central/report"
)

// Start starts a reporter with o and closes it when the test ends.
func Start(t testing.TB, o report.Options) *report.Reporter {
	t.Helper()
	r, err := report.New(o)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = r.Close(ctx)
	})
	return r
}
