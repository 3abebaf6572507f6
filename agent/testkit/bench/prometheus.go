package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Prometheus is a running Prometheus server that scrapes the test's targets.
// URL is its HTTP API and UI ("http://127.0.0.1:PORT").
type Prometheus struct {
	URL string
	log *lockedLog
}

// ScrapeInterval is how often a test Prometheus scrapes: the shortest that
// keeps its own work small, so a test sees a change within about a second.
const ScrapeInterval = time.Second

// StartPrometheus starts Prometheus on a loopback port reserved for the test,
// scraping /metrics of each target (host:port) every ScrapeInterval, with its
// storage in a temp dir, and returns once it reports ready (/-/ready). It is
// stopped when the test ends.
func StartPrometheus(t testing.TB, targets ...string) *Prometheus {
	t.Helper()
	bin := Need(t, "prometheus")
	dir := t.TempDir()
	quoted := make([]string, len(targets))
	for i, tg := range targets {
		quoted[i] = strconv.Quote(tg)
	}
	conf := fmt.Sprintf(`global:
  scrape_interval: %[1]s
  scrape_timeout: %[1]s
  evaluation_interval: %[1]s
scrape_configs:
  - job_name: test
    static_configs:
      - targets: [%[2]s]
`, ScrapeInterval, strings.Join(quoted, ", "))
	confFile := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(confFile, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := ReserveAddr(t)
	p := &Prometheus{URL: "http://" + addr, log: &lockedLog{}}
	cmd := exec.Command(bin,
		"--config.file="+confFile,
		"--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr,
		"--log.level=warn")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start prometheus: %v", err)
	}
	done := make(chan struct{})
	logDone := make(chan struct{})
	go func() {
		defer close(logDone)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			p.log.add(sc.Text())
		}
	}()
	go func() { <-logDone; cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		// SIGTERM: a clean shutdown is quick with a WAL this small; SIGKILL
		// if it is not.
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})

	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(p.URL + "/-/ready")
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p
			}
		}
		select {
		case <-done:
			t.Fatalf("prometheus exited: %s", p.log)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("prometheus not ready after 20 s (last: %v): %s", err, p.log)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Log is what Prometheus wrote to stderr so far (warnings and errors).
func (p *Prometheus) Log() string { return p.log.String() }

// Query evaluates expr now (GET /api/v1/query) and returns the value of its
// single sample; found is false when the result is empty (no such series
// yet). A result that is not one sample is an error, as is a failed query.
func (p *Prometheus) Query(ctx context.Context, expr string) (value float64, found bool, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.URL+"/api/v1/query?query="+url.QueryEscape(expr), nil)
	if err != nil {
		return 0, false, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, false, fmt.Errorf("prometheus: query %s: %w", expr, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, false, fmt.Errorf("prometheus: query %s: %w", expr, err)
	}
	var r struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			ResultType string `json:"resultType"`
			Result     []struct {
				Value [2]any `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return 0, false, fmt.Errorf("prometheus: query %s: HTTP %d: %q", expr, resp.StatusCode, body)
	}
	if r.Status != "success" {
		return 0, false, fmt.Errorf("prometheus: query %s: %s", expr, r.Error)
	}
	switch {
	case r.Data.ResultType != "vector":
		return 0, false, fmt.Errorf("prometheus: query %s: a %s, want a vector", expr, r.Data.ResultType)
	case len(r.Data.Result) == 0:
		return 0, false, nil
	case len(r.Data.Result) > 1:
		return 0, false, fmt.Errorf("prometheus: query %s: %d samples, want one (aggregate it)", expr, len(r.Data.Result))
	}
	s, ok := r.Data.Result[0].Value[1].(string)
	if !ok {
		return 0, false, fmt.Errorf("prometheus: query %s: value %v", expr, r.Data.Result[0].Value[1])
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, false, fmt.Errorf("prometheus: query %s: value %q", expr, s)
	}
	return v, true, nil
}
