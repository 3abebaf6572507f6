package bench

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

// WaitFor wakes on the write that completes the text, across writes that
// split it, and gives up only when its context ends.
func TestBufferWaitFor(t *testing.T) {
	var b Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- b.WaitFor(ctx, "step| live") }()
	for i, part := range []string{"step| sign-on\n", "step| li", "ve\n"} {
		fmt.Fprint(&b, part)
		if i < 2 {
			select {
			case err := <-done:
				t.Fatalf("WaitFor returned %v after %q", err, b.String())
			default:
			}
		}
	}
	if err := <-done; err != nil {
		t.Fatalf("WaitFor = %v, want nil", err)
	}
	over, cancel2 := context.WithCancel(context.Background())
	cancel2()
	if err := b.WaitFor(over, "never written"); !errors.Is(err, context.Canceled) {
		t.Errorf("WaitFor with an ended context = %v, want context.Canceled", err)
	}
}
