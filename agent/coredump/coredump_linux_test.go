package coredump

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestDisable runs Disable in a child process (it cannot be undone, and the
// test binary itself should stay dumpable) and has the child report what
// the kernel then says: core limit 0, not dumpable; /proc/self/limits
// agrees.
func TestDisable(t *testing.T) {
	if os.Getenv("COREDUMP_TEST_CHILD") == "1" {
		limit, dumpable, err := state()
		fmt.Printf("before limit=%d dumpable=%v err=%v\n", limit, dumpable, err)
		if err := Disable(); err != nil {
			fmt.Println("disable:", err)
			os.Exit(1)
		}
		limit, dumpable, err = state()
		fmt.Printf("after limit=%d dumpable=%v err=%v\n", limit, dumpable, err)
		b, _ := os.ReadFile("/proc/self/limits")
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "Max core file size") {
				fmt.Println("limits:", strings.Join(strings.Fields(l), " "))
			}
		}
		os.Exit(0)
	}
	cmd := exec.Command(os.Args[0], "-test.run", "^TestDisable$")
	cmd.Env = append(os.Environ(), "COREDUMP_TEST_CHILD=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	got := string(out)
	for _, want := range []string{"after limit=0 dumpable=false err=<nil>", "limits: Max core file size 0 0 bytes"} {
		if !strings.Contains(got, want) {
			t.Errorf("child lacks %q:\n%s", want, got)
		}
	}
	if !strings.Contains(got, "before") || strings.Contains(got, "before limit=0 dumpable=false") {
		t.Logf("the child started without core dumps already (a limit from the environment):\n%s", got)
	}
}

// state reports the core size limit and whether the process is dumpable,
// for tests.
func state() (limit uint64, dumpable bool, err error) {
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_CORE, &rl); err != nil {
		return 0, false, err
	}
	d, err := unix.PrctlRetInt(unix.PR_GET_DUMPABLE, 0, 0, 0, 0)
	if err != nil {
		return 0, false, err
	}
	return rl.Max, d != 0, nil
}
