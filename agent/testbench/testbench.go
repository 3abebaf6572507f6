// Package testbench starts the real counterparts the integration tests talk to
// (a mosquitto broker on a random loopback port), each owned by one test and
// stopped by its cleanup. When a counterpart is not installed the test is
// skipped, unless POSAGENT_REQUIRE_BENCH=1 (set by `make test`), where a
// missing counterpart fails the test instead of silently testing less.
package testbench

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
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

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Mosquitto is a running mosquitto broker.
type Mosquitto struct {
	URL  string
	Port int
	cmd  *exec.Cmd
	done chan struct{}
}

// StartMosquitto starts mosquitto on a free loopback port with anonymous access
// and returns once it accepts connections. It is stopped when the test ends.
func StartMosquitto(t testing.TB) *Mosquitto {
	t.Helper()
	bin := Need(t, "mosquitto")
	dir := t.TempDir()
	port := FreePort(t)
	conf := filepath.Join(dir, "mosquitto.conf")
	// user root: as root mosquitto otherwise drops to the mosquitto user, which
	// cannot read a config in a root-owned temp dir. Nagle off: 40 ms per message otherwise.
	body := fmt.Sprintf("listener %d 127.0.0.1\nallow_anonymous true\nset_tcp_nodelay true\npersistence false\n", port)
	if os.Geteuid() == 0 {
		body += "user root\n"
	}
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-c", conf)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start mosquitto: %v", err)
	}
	m := &Mosquitto{URL: fmt.Sprintf("tcp://127.0.0.1:%d", port), Port: port, cmd: cmd, done: make(chan struct{})}
	var log strings.Builder
	logDone := make(chan struct{})
	go func() {
		defer close(logDone)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			log.WriteString(sc.Text() + "\n")
		}
	}()
	go func() { <-logDone; cmd.Wait(); close(m.done) }()
	t.Cleanup(m.Stop)
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 200*time.Millisecond)
		if err == nil {
			c.Close()
			return m
		}
		select {
		case <-m.done:
			t.Fatalf("mosquitto exited: %s", log.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("mosquitto not listening on %d after 10 s", port)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop stops the broker and waits for it.
func (m *Mosquitto) Stop() {
	select {
	case <-m.done:
		return
	default:
	}
	m.cmd.Process.Kill()
	<-m.done
}
