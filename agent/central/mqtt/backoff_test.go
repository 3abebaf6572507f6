package mqtt

import (
	"math/rand/v2"
	"testing"
	"time"
)

// topRand draws the top of every range: the waits are then the bounds
// themselves, which makes the schedule visible.
type topRand struct{}

func (topRand) Int64N(n int64) int64 { return n - 1 }

// ceiling is min(max, base·2^n), the formula's bound, computed without
// the doubling loop backoff.next uses.
func ceiling(base, max time.Duration, n int) time.Duration {
	if n >= 30 || base<<n > max { // 1 s << 33 would overflow
		return max
	}
	return base << n
}

// Full jitter: each wait is within [0, min(cap, base·2^n)], the cap holds
// however long the failures go on, and a seeded source gives the same
// schedule every run.
func TestBackoffFullJitterWithinBounds(t *testing.T) {
	const base, max = time.Second, time.Minute
	b := backoff{base: base, max: max, rand: rand.New(rand.NewPCG(1, 2))}
	again := backoff{base: base, max: max, rand: rand.New(rand.NewPCG(1, 2))}
	belowHalf := 0
	for n := 0; n < 200; n++ {
		bound := ceiling(base, max, n)
		d := b.next()
		if d < 0 || d > bound {
			t.Fatalf("attempt %d: wait %v outside [0, %v]", n, d, bound)
		}
		if d2 := again.next(); d2 != d {
			t.Fatalf("attempt %d: the same seed drew %v and %v", n, d, d2)
		}
		if n >= 6 && d < max/2 {
			belowHalf++
		}
	}
	// Full jitter spreads over the whole window, not just its top (as
	// "equal jitter" would): about half of the capped waits fall below
	// half the cap. 194 draws; a fair split is 97, and 60..134 is beyond
	// five standard deviations.
	if belowHalf < 60 || belowHalf > 134 {
		t.Errorf("%d of 194 capped waits below half the cap: not spread over [0, cap]", belowHalf)
	}
}

// The bounds double from the base to the cap and stay there; reset starts
// over from the base.
func TestBackoffDoublesToCapAndResets(t *testing.T) {
	b := backoff{base: time.Second, max: time.Minute, rand: topRand{}}
	want := []time.Duration{1, 2, 4, 8, 16, 32, 60, 60, 60}
	for i, w := range want {
		if d := b.next(); d != w*time.Second {
			t.Errorf("attempt %d: wait %v, want %v", i, d, w*time.Second)
		}
	}
	b.reset()
	if d := b.next(); d != time.Second {
		t.Errorf("after reset: wait %v, want the base, 1s", d)
	}
	// A cap below the base caps the first wait too (tests' quick retries).
	small := backoff{base: time.Second, max: 50 * time.Millisecond, rand: topRand{}}
	if d := small.next(); d != 50*time.Millisecond {
		t.Errorf("cap below base: wait %v, want 50ms", d)
	}
	// Thousands of failures in a row do not overflow the doubling.
	long := backoff{base: time.Second, max: time.Minute, rand: topRand{}, attempt: 1 << 20}
	if d := long.next(); d != time.Minute {
		t.Errorf("after 2^20 attempts: wait %v, want the cap", d)
	}
}

func TestJitter(t *testing.T) {
	if d := jitter(topRand{}, 0); d != 0 {
		t.Errorf("jitter(0) = %v", d)
	}
	r := rand.New(rand.NewPCG(3, 4))
	for range 1000 {
		if d := jitter(r, 10*time.Second); d < 0 || d > 10*time.Second {
			t.Fatalf("jitter(10s) = %v", d)
		}
	}
	if d := jitter(topRand{}, 10*time.Second); d != 10*time.Second {
		t.Errorf("top of jitter(10s) = %v, want 10s (the range is closed)", d)
	}
}

func TestIntervalSeconds(t *testing.T) {
	for d, want := range map[time.Duration]int64{30 * time.Second: 30, 50 * time.Millisecond: 1, 1500 * time.Millisecond: 2, time.Minute: 60} {
		if got := intervalSeconds(d); got != want {
			t.Errorf("intervalSeconds(%v) = %d, want %d", d, got, want)
		}
	}
}
