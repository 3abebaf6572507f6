package provisioning_test

import (
	"context"
	"testing"
)

// BenchmarkInstall is one whole install on in-process fakes: the flow's own
// cost (checkpoint encoding, rules, reports) without any device latency.
func BenchmarkInstall(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		r := newRig()
		cp, err := r.flow().Run(context.Background())
		if err != nil || cp.Step != "live" {
			b.Fatalf("Run = %v at %s", err, cp.Step)
		}
	}
}
