//go:build !firmware

package main

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/posagent/posagent/agent/central/monitor"
)

// TestWatchMetricsAddressInUse: a metrics address that cannot be bound fails
// the command at once (exit 1, one line), before it connects to the broker.
func TestWatchMetricsAddressInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var stdout, stderr bytes.Buffer
	code := run([]string{"watch", "--mqtt", "tcp://127.0.0.1:1", "--metrics", ln.Addr().String()}, &stdout, &stderr)
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	if !strings.HasPrefix(stderr.String(), "posctl: monitor: metrics: ") || !strings.Contains(stderr.String(), "address already in use") ||
		strings.Count(stderr.String(), "\n") != 1 {
		t.Errorf("stderr should be the one line of the listen error:\n%s", stderr.String())
	}
}

// TestServeMetrics: --metrics makes the watch fold into a Metrics served at
// the address it prints.
func TestServeMetrics(t *testing.T) {
	var o monitor.Options
	var stderr bytes.Buffer
	stop, err := serveMetrics("127.0.0.1:0", &o, &stderr)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	m, ok := o.Fleet.(*monitor.Metrics)
	if !ok {
		t.Fatalf("the watch folds into %T, want *monitor.Metrics", o.Fleet)
	}
	m.Apply("pos/v1/10000001/state", []byte(`{"state":"online","tid":"10000001"}`))
	addr := regexp.MustCompile(`^posctl: metrics on (http://127\.0\.0\.1:[0-9]+/metrics)\n$`).FindStringSubmatch(stderr.String())
	if addr == nil {
		t.Fatalf("stderr does not name the address:\n%s", stderr.String())
	}
	resp, err := http.Get(addr[1])
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), `posagent_terminals_presence{presence="online"} 1`) {
		t.Errorf("GET %s:\n%s", addr[1], body)
	}
}
