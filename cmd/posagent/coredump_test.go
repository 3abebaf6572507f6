package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/posagent/posagent/agent/config/configtest"
	"github.com/posagent/posagent/agent/testkit/bench"
)

// TestRunHasNoCoreDumps: `posagent run` turns core dumps off for itself:
// the kernel shows its core size limit as 0 while it runs, whatever limit
// it was started with.
func TestRunHasNoCoreDumps(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "posagent.yaml")
	if err := configtest.WriteEdited(filepath.Join("..", "..", "testdata", "posagent.example.yaml"), cfg, [][2]string{
		{"state_dir: /var/lib/posagent", "state_dir: " + filepath.Join(dir, "state")},
	}); err != nil {
		t.Fatal(err)
	}
	// Started with core dumps allowed, as a shell with ulimit -c unlimited
	// would start it.
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_CORE, &rl); err != nil {
		t.Fatal(err)
	}
	if rl.Max == 0 {
		t.Skip("core dumps are off for this test process already (hard limit 0)")
	}
	if err := syscall.Setrlimit(syscall.RLIMIT_CORE, &syscall.Rlimit{Cur: rl.Max, Max: rl.Max}); err != nil {
		t.Fatal(err)
	}
	defer syscall.Setrlimit(syscall.RLIMIT_CORE, &rl)
	cmd := exec.Command(binary, "run", "--config", cfg, "--pause-at", "enter:selftest")
	var stderr bench.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(stderr.String(), "PAUSED at enter:selftest") {
		if time.Now().After(deadline) {
			t.Fatalf("never paused:\n%s", stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(cmd.Process.Pid) + "/limits")
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "Max core file size") {
			if f := strings.Fields(l); len(f) < 6 || f[4] != "0" || f[5] != "0" {
				t.Errorf("posagent run: %s", l)
			}
			return
		}
	}
	t.Fatalf("no core limit in /proc/%d/limits:\n%s", cmd.Process.Pid, b)
}
