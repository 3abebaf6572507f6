package outbox

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// childEnv names the directory a re-executed test binary appends to until it
// is killed; see crashChild.
const childEnv = "OUTBOX_CRASH_CHILD"

func TestMain(m *testing.M) {
	if dir := os.Getenv(childEnv); dir != "" {
		os.Exit(crashChild(dir))
	}
	os.Exit(m.Run())
}

// crashOpts makes small segments so that the kills land in rolls and segment
// deletions too, and bounds high enough that nothing is dropped (a drop would
// be a legitimate gap that the test could not tell from a loss).
var crashOpts = Options{SegmentBytes: 300, MaxRecords: 1 << 20, MaxBytes: 1 << 30}

func crashPayload(seq uint64) []byte {
	// Lengths vary so records straddle segment boundaries at varying offsets.
	return fmt.Appendf(nil, "seq=%d;%s", seq, strings.Repeat("p", int(seq%37)))
}

// crashChild appends forever, acknowledging now and then, and prints
// "a SEQ" after each Append and "k SEQ" after each Ack has returned: the parent
// holds it to exactly those promises. Only the kill ends it (or a safety cap).
func crashChild(dir string) int {
	o, err := Open(dir, crashOpts)
	if err != nil {
		fmt.Fprintln(os.Stderr, "child open:", err)
		return 2
	}
	for i := range 100000 {
		seq, err := o.AppendWith("events", i%5 == 0, func(seq uint64) ([]byte, error) { return crashPayload(seq), nil })
		if err != nil {
			fmt.Fprintln(os.Stderr, "child append:", err)
			return 2
		}
		fmt.Fprintf(os.Stdout, "a %d\n", seq) // os.Stdout is unbuffered: one write per line
		if seq%4 == 0 && seq > 3 {
			if err := o.Ack(seq - 3); err != nil {
				fmt.Fprintln(os.Stderr, "child ack:", err)
				return 2
			}
			fmt.Fprintf(os.Stdout, "k %d\n", seq-3)
		}
	}
	return 0
}

// TestCrash SIGKILLs a child that appends in a loop at a random moment, 20
// times on the same directory, and checks after each kill that the outbox holds
// everything the child was told was durable, with no gap and nothing beyond
// the one Append that may have been in flight; and that the next child's seqs
// continue after it.
func TestCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("re-executes the test binary")
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	dir := t.TempDir()
	var next uint64 = 1 // the seq the next child must start at
	var acked uint64
	for iter := range 20 {
		killAfter := rng.IntN(60) // 0: killed while it opens
		appended, ackedByChild := runAndKill(t, dir, killAfter)

		for i, s := range appended {
			if s != next+uint64(i) {
				t.Fatalf("iter %d: child appended %v, want a run from %d", iter, appended, next)
			}
		}
		lastReported := next - 1 + uint64(len(appended))
		acked = max(acked, ackedByChild)

		o, err := Open(dir, crashOpts)
		if err != nil {
			t.Fatalf("iter %d (killed after %d lines): Open: %v", iter, killAfter, err)
		}
		st := o.Stats()
		recs := peekAll(t, o)
		o.Close()

		last := st.NextSeq - 1
		if last != lastReported && last != lastReported+1 {
			t.Fatalf("iter %d: outbox ends at %d, child reported up to %d", iter, last, lastReported)
		}
		if st.Acked < acked || st.Acked > last {
			t.Fatalf("iter %d: cursor %d, child reported ack %d, last %d", iter, st.Acked, acked, last)
		}
		if uint64(len(recs)) != last-st.Acked {
			t.Fatalf("iter %d: %d records between ack %d and last %d: %v", iter, len(recs), st.Acked, last, seqs(recs))
		}
		for i, r := range recs {
			want := st.Acked + 1 + uint64(i)
			if r.Seq != want || !bytes.Equal(r.Payload, crashPayload(want)) {
				t.Fatalf("iter %d: record %d is seq %d %q, want %d", iter, i, r.Seq, r.Payload, want)
			}
		}
		next, acked = st.NextSeq, st.Acked
	}
	t.Logf("%d records appended over 20 kills", next-1)
}

// runAndKill starts a child on dir, SIGKILLs it once it has reported
// killAfter lines, and returns every seq it reported appended and the highest
// it reported acknowledged.
func runAndKill(t *testing.T, dir string, killAfter int) (appended []uint64, acked uint64) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+dir)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); errors.Is(err, syscall.ENOEXEC) {
		// An armv7 test binary run through qemu-user (make test-arm) cannot
		// exec itself without binfmt_misc.
		t.Skipf("cannot re-execute the test binary: %v", err)
	} else if err != nil {
		t.Fatal(err)
	}
	killed := false
	kill := func() {
		if !killed {
			cmd.Process.Kill() // SIGKILL: no deferred code, no flush in the child
			killed = true
		}
	}
	defer kill()
	if killAfter == 0 {
		kill()
	}
	sc := bufio.NewScanner(out)
	lines := 0
	for sc.Scan() { // after the kill, this drains what the child wrote before dying
		f := strings.Fields(sc.Text())
		if len(f) != 2 {
			t.Fatalf("child said %q", sc.Text())
		}
		v, err := strconv.ParseUint(f[1], 10, 64)
		if err != nil {
			t.Fatalf("child said %q", sc.Text())
		}
		switch f[0] {
		case "a":
			appended = append(appended, v)
		case "k":
			acked = v
		}
		lines++
		if lines == killAfter {
			kill()
		}
	}
	err = cmd.Wait()
	if !killed || stderr.Len() > 0 {
		t.Fatalf("child ended by itself (%v): %s", err, stderr.String())
	}
	return appended, acked
}
