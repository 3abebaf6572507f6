package magstripe

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/posagent/posagent/provisioning/pan"
)

// TestSwipeWith: the fallback is decided per swiped chip card, with its PAN,
// and a refused card's tracks never reach Sensitive.
func TestSwipeWith(t *testing.T) {
	var asked []string
	lent := 0
	r := NewReader(stream(MagTek.Encode('0', t1Good, t2Chip), MagTek.Encode('0', t2Good), MagTek.Encode('0', t2Fall6)),
		Config{Framing: MagTek, Now: func() time.Time { return now }, Sensitive: func(Sensitive) { lent++ }})
	allow := func(p pan.PAN) bool {
		asked = append(asked, p.Masked())
		return len(asked) > 1
	}
	ctx := context.Background()
	if _, err := r.SwipeWith(ctx, allow); !errors.Is(err, ErrChipCard) || lent != 0 {
		t.Fatalf("first chip swipe: %v, tracks lent %d times", err, lent)
	}
	// A magstripe card does not ask.
	if sw, err := r.SwipeWith(ctx, allow); err != nil || sw.Fallback || len(asked) != 1 {
		t.Fatalf("magstripe card: %+v %v, asked %d", sw, err, len(asked))
	}
	if sw, err := r.SwipeWith(ctx, allow); err != nil || !sw.Fallback || lent != 2 {
		t.Fatalf("allowed fallback: %+v %v", sw, err)
	}
	if len(asked) != 2 || asked[0] != "621790*********0120" {
		t.Errorf("asked with %q", asked)
	}
}
