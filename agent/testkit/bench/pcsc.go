package bench

import (
	"os"
	"syscall"
	"testing"
)

// PCSCSocket is pcscd's fixed socket: one daemon per machine.
const PCSCSocket = "/run/pcscd/pcscd.comm"

// NeedPCSC skips (or, with POSAGENT_REQUIRE_BENCH=1, fails) a test when no
// pcscd is running (scripts/pcsc-bench.sh up starts one), and otherwise
// takes the machine-wide PC/SC lock for the rest of the test.
//
// vpcd has exactly two slots and pcscd is one per machine, while `go test
// ./...` runs packages in parallel: two packages plugging cards into the same
// slots would read each other's cards. The lock is a flock on a file in the
// temp dir, so it is released even when a test process is killed.
func NeedPCSC(t testing.TB) {
	t.Helper()
	// The lock first: a holder may be restarting pcscd (the driver's
	// restart test), and its socket is gone only until that test ends.
	LockPCSC(t)
	if _, err := os.Stat(PCSCSocket); err != nil {
		if os.Getenv("POSAGENT_REQUIRE_BENCH") == "1" {
			t.Fatalf("no pcscd socket (run scripts/pcsc-bench.sh up): %v", err)
		}
		t.Skip("no pcscd (scripts/pcsc-bench.sh up); POSAGENT_REQUIRE_BENCH=1 makes this a failure")
	}
}

// LockPCSC holds the machine-wide PC/SC lock until the test ends.
func LockPCSC(t testing.TB) {
	t.Helper()
	f, err := os.OpenFile(os.TempDir()+"/posagent-pcsc.lock", os.O_CREATE|os.O_RDWR, 0o666)
	if err != nil {
		t.Fatalf("pcsc lock: %v", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		t.Fatalf("pcsc lock: %v", err)
	}
	t.Cleanup(func() { f.Close() }) // closing the last descriptor releases the flock
}
