package cardreadertest

import (
	"context"
	"fmt"
	"strings"
	"testing"
)

// recorder is a TB that records failures instead of failing.
type recorder struct {
	errs     []string
	cleanups []func()
}

func (r *recorder) Helper()                   {}
func (r *recorder) Errorf(f string, a ...any) { r.errs = append(r.errs, fmt.Sprintf(f, a...)) }
func (r *recorder) Cleanup(f func())          { r.cleanups = append(r.cleanups, f) }
func (r *recorder) finish() {
	for i := len(r.cleanups) - 1; i >= 0; i-- {
		r.cleanups[i]()
	}
}

func TestPlaybackFailsOnUnusedAndUnexpected(t *testing.T) {
	ctx := context.Background()
	r := &recorder{}
	p := NewPlayback(r, Ex("00A4040000", "9000"), Ex("00B2010C00", "6A83"))
	if got, err := p.Transmit(ctx, X("00A4040000")); err != nil || fmt.Sprintf("%X", got) != "9000" {
		t.Fatalf("%X %v", got, err)
	}
	r.finish()
	if len(r.errs) != 1 || !strings.Contains(r.errs[0], "1 of 2 scripted exchanges unused") {
		t.Fatalf("unused exchange not reported: %q", r.errs)
	}

	r = &recorder{}
	p = NewPlayback(r, Ex("00A4040000", "9000"))
	if _, err := p.Transmit(ctx, X("00B2010C00")); err == nil {
		t.Fatal("unexpected command accepted")
	}
	if len(r.errs) != 1 || !strings.Contains(r.errs[0], "got command 00B2010C00") {
		t.Fatalf("unexpected command not reported: %q", r.errs)
	}
	p.Transmit(ctx, X("00A4040000"))
	if _, err := p.Transmit(ctx, X("00A4040000")); err == nil || len(r.errs) != 2 {
		t.Fatalf("command after the script: %v %q", err, r.errs)
	}
	p.Close()
	if _, err := p.Transmit(ctx, X("00")); err == nil {
		t.Fatal("transmit after close")
	}
}
