package mqtt

import (
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"
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
		d := b.next(false)
		if d < 0 || d > bound {
			t.Fatalf("attempt %d: wait %v outside [0, %v]", n, d, bound)
		}
		if d2 := again.next(false); d2 != d {
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
		if d := b.next(false); d != w*time.Second {
			t.Errorf("attempt %d: wait %v, want %v", i, d, w*time.Second)
		}
	}
	b.reset()
	if d := b.next(false); d != time.Second {
		t.Errorf("after reset: wait %v, want the base, 1s", d)
	}
	// A cap below the base caps the first wait too (tests' quick retries).
	small := backoff{base: time.Second, max: 50 * time.Millisecond, rand: topRand{}}
	if d := small.next(false); d != 50*time.Millisecond {
		t.Errorf("cap below base: wait %v, want 50ms", d)
	}
	// Thousands of failures in a row do not overflow the doubling.
	long := backoff{base: time.Second, max: time.Minute, rand: topRand{}, attempt: 1 << 20}
	if d := long.next(false); d != time.Minute {
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

// Busy answers in a row raise the cap, doubling it up to BusyFactor times
// the configured one; the next answer that is not busy brings the cap back,
// and so does a reset.
func TestBackoffBusyRaisesCap(t *testing.T) {
	b := backoff{base: time.Second, max: time.Minute, rand: topRand{}}
	for range 7 {
		b.next(false) // 1, 2 … 32, 60 s: at the cap
	}
	for i, w := range []time.Duration{120, 240, 480, 480, 480} {
		if d := b.next(true); d != w*time.Second {
			t.Errorf("busy answer %d in a row: wait %v, want %v", i+1, d, w*time.Second)
		}
	}
	if d := b.next(false); d != time.Minute {
		t.Errorf("after a failure that is not busy: wait %v, want the cap, 1m", d)
	}
	if d := b.next(true); d != 2*time.Minute {
		t.Errorf("busy again: wait %v, want 2m (the count starts over)", d)
	}
	b.reset()
	if d := b.next(true); d != time.Second {
		t.Errorf("busy after reset: wait %v, want the base (a raised cap does not skip the doubling)", d)
	}
	// Early in a run the doubling, not the cap, bounds the wait.
	early := backoff{base: time.Second, max: time.Minute, rand: topRand{}}
	for i, w := range []time.Duration{1, 2, 4} {
		if d := early.next(true); d != w*time.Second {
			t.Errorf("busy attempt %d of a new run: wait %v, want %v", i, d, w*time.Second)
		}
	}
	// A cap raised many times does not overflow.
	long := backoff{base: time.Second, max: 10 * time.Minute, rand: topRand{}, attempt: 1 << 20, busy: 1 << 20}
	if d := long.next(true); d != BusyFactor*10*time.Minute {
		t.Errorf("after 2^20 busy answers: wait %v, want %v", d, BusyFactor*10*time.Minute)
	}
}

// What counts as busy, on the errors paho itself returns: "server
// unavailable", and no CONNACK in time from a broker that took the TCP
// connection; a refused dial, a broker that closes without a CONNACK, and a
// refused login do not. A dial timeout (a node gone without a reset) cannot
// be made on loopback: it is built in paho's form.
func TestBusyAnswer(t *testing.T) {
	silent := listen(t, func(c net.Conn) { _, _ = io.Copy(io.Discard, c) })
	closing := listen(t, func(c net.Conn) { _, _ = packets.ReadPacket(c) })
	gone, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := gone.Addr().String()
	gone.Close()
	dialTimeout := fmt.Errorf("%w : %w", packets.ErrorNetworkError, &net.OpError{Op: "dial", Net: "tcp", Err: timeoutErr{}})
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"server unavailable", packets.ConnErrors[packets.ErrRefusedServerUnavailable], true},
		{"no CONNACK in time", pahoConnect(t, silent), true},
		{"connection refused", pahoConnect(t, refused), false},
		{"closed without CONNACK", pahoConnect(t, closing), false},
		{"dial timeout", dialTimeout, false},
		{"bad login", packets.ConnErrors[packets.ErrRefusedBadUsernameOrPassword], false},
		{"not authorised", packets.ConnErrors[packets.ErrRefusedNotAuthorised], false},
	} {
		if got := busyAnswer(tc.err); got != tc.want {
			t.Errorf("%s (%v): busy = %v, want %v", tc.name, tc.err, got, tc.want)
		}
	}
}

// listen serves every connection to a loopback listener with serve, then
// closes it.
func listen(t *testing.T, serve func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(5 * time.Second))
				serve(c)
			}()
		}
	}()
	return ln.Addr().String()
}

// pahoConnect is the error of one paho connection attempt to addr, with the
// options the session uses and a short connect timeout.
func pahoConnect(t *testing.T, addr string) error {
	t.Helper()
	c := paho.NewClient(paho.NewClientOptions().AddBroker("tcp://" + addr).SetClientID("busy-test").
		SetConnectTimeout(200 * time.Millisecond).SetProtocolVersion(ProtocolVersion).
		SetConnectRetry(false).SetAutoReconnect(false))
	tok := c.Connect()
	if !tok.WaitTimeout(5 * time.Second) {
		t.Fatalf("connect to %s did not end", addr)
	}
	if tok.Error() == nil {
		t.Fatalf("connect to %s succeeded", addr)
	}
	return tok.Error()
}

type timeoutErr struct{}

func (timeoutErr) Error() string { return "i/o timeout" }
func (timeoutErr) Timeout() bool { return true }
