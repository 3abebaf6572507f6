// Package testbench starts the real counterparts the integration tests talk to
// (a mosquitto broker on loopback ports reserved for the test), each owned by one test and
// stopped by its cleanup. When a counterpart is not installed the test is
// skipped, unless POSAGENT_REQUIRE_BENCH=1 (set by `make test`), where a
// missing counterpart fails the test instead of silently testing less.
package bench

import (
	"os"
	"os/exec"
	"sync"
	"testing"
)

// Need skips or fails t when the named program is not on PATH, and returns its path.
func Need(t testing.TB, program string) string {
	t.Helper()
	p, err := exec.LookPath(program)
	if err == nil {
		return p
	}
	if os.Getenv("POSAGENT_REQUIRE_BENCH") == "1" {
		t.Fatalf("%s is not installed (run `make test`, which installs it)", program)
	}
	t.Skipf("%s is not installed; `make test` installs it", program)
	return ""
}

// Mosquitto is a running mosquitto broker. URL is its plain listener ("" when
// it has none); TLSURL and PKI are set for a TLS listener.
type Mosquitto struct {
	URL     string
	Port    int
	TLSURL  string
	TLSPort int
	PKI     *PKI

	bin, dir, conf string
	mu             sync.Mutex
	cmd            *exec.Cmd
	done           chan struct{}
}

// StartMosquitto starts mosquitto on a free loopback port with anonymous access
// and returns once it accepts connections. It is stopped when the test ends.
func StartMosquitto(t testing.TB) *Mosquitto {
	t.Helper()
	return StartMosquittoWith(t, MosquittoConfig{})
}

// Stop kills the broker (SIGKILL: an outage, not a shutdown) and waits for it.
// Calling it on a stopped broker does nothing.
func (m *Mosquitto) Stop() {
	m.mu.Lock()
	cmd, done := m.cmd, m.done
	m.mu.Unlock()
	if cmd == nil {
		return
	}
	select {
	case <-done:
		return
	default:
	}
	cmd.Process.Kill()
	<-done
}
