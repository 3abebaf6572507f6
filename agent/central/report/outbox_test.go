package report

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/posagent/posagent/agent/central/mqtt"
	"github.com/posagent/posagent/agent/central/mqtt/mqtttest"
	"github.com/posagent/posagent/agent/central/outbox"
	"github.com/posagent/posagent/agent/testkit/bench"
)

// openOutbox opens the outbox in dir and closes it at cleanup: register it
// before the reporter that uses it, so that the reporter's Close runs first.
func openOutbox(t *testing.T, dir string) *outbox.Outbox {
	t.Helper()
	return openOutboxWith(t, dir, outbox.Options{})
}

// deliverAfterRestart starts a broker and a subscriber, then a reporter on the
// outbox in dir that an earlier run left with n unacknowledged reports, and
// checks that the current status and then every event, seq 1..n in order,
// arrive; then that the next report continues at seq n+1.
func deliverAfterRestart(t *testing.T, dir string, n int) {
	t.Helper()
	b := startBroker(t, "127.0.0.1:0")
	s := subscribe(t, b.URL(), terminalTopics...)
	ob := openOutbox(t, dir)
	if st := ob.Stats(); st.Records != n {
		t.Fatalf("outbox after the first run holds %d records, want %d", st.Records, n)
	}
	r := newReporter(t, b.URL(), func(o *testOptions) { o.Queue = ob })

	st := s.Until(t, "status", func(m mqtttest.Msg) bool { return m.Topic == mqtt.StatusTopic(tid) })
	if m := message(t, st); m.Seq != uint64(n) || m.Message != fmt.Sprintf("report %d", n) {
		t.Errorf("first status after restart = seq %d %q, want the last report of the first run, seq %d", m.Seq, m.Message, n)
	}
	got := collectEvents(t, s, 1, uint64(n))
	for i, m := range got {
		if want := fmt.Sprintf("report %d", i+1); m.Message != want || m.TID != tid {
			t.Errorf("event %d = %q (tid %q), want %q", i, m.Message, m.TID, want)
		}
	}
	r.Report(context.Background(), statuses(1)[0])
	collectEvents(t, s, uint64(n)+1, uint64(n)+1)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if st := ob.Stats(); st.Records != 0 || st.Acked != uint64(n)+1 {
		t.Errorf("outbox after flush = %+v, want empty and acked %d", st, n+1)
	}
	s.noFullPAN(t)
}

// A broker outage and then a restart without a flush (Close with a context
// that is already over: nothing acknowledged) lose nothing and keep seq.
func TestOutboxKeepsReportsAcrossRestart(t *testing.T) {
	const n = 12
	dir := t.TempDir()

	ob := openOutbox(t, dir)
	r, err := newTerminal(testOptions{Options: mqtt.Options{URL: "tcp://" + bench.ReserveAddr(t), TID: tid, MID: mid, Serial: serial, Logger: quietLogger(), RetryInterval: 50 * time.Millisecond}, Queue: ob})
	if err != nil {
		t.Fatal(err)
	}
	reportAll(t, r, statuses(n))
	over, cancel := context.WithCancel(context.Background())
	cancel()
	if err := r.Close(over); !errors.Is(err, context.Canceled) {
		t.Errorf("Close with the broker down = %v, want the flush cut short", err)
	}
	if err := ob.Close(); err != nil {
		t.Fatal(err)
	}

	deliverAfterRestart(t, dir, n)
}

// seq continues across restarts when everything was delivered: each run's
// events follow the last run's, none missing (a resend of one the broker had
// acknowledged is a legal duplicate, dropped on seq).
func TestOutboxSeqContinuesAfterRestart(t *testing.T) {
	const n = 5
	dir := t.TempDir()
	b := startBroker(t, "127.0.0.1:0")
	s := subscribe(t, b.URL(), terminalTopics...)

	for run := range 3 {
		ob, err := outbox.Open(dir, outbox.Options{})
		if err != nil {
			t.Fatal(err)
		}
		r, err := newTerminal(testOptions{Options: mqtt.Options{URL: b.URL(), TID: tid, MID: mid, Serial: serial, Logger: quietLogger(), RetryInterval: 50 * time.Millisecond}, Queue: ob})
		if err != nil {
			t.Fatal(err)
		}
		for _, st := range statuses(n) {
			r.Report(context.Background(), st)
		}
		first := uint64(run*n) + 1
		collectEvents(t, s, first, first+n-1)
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		if err := r.Close(ctx); err != nil {
			t.Fatal(err)
		}
		cancel()
		if st := ob.Stats(); st.Records != 0 || st.NextSeq != first+n {
			t.Errorf("run %d: outbox after Close = %+v, want empty, next seq %d", run, st, first+n)
		}
		if err := ob.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// Environment of the child process of TestOutboxSurvivesSIGKILL.
const (
	killDirEnv = "POSAGENT_REPORT_KILL_DIR"
	killNEnv   = "POSAGENT_REPORT_KILL_N"
	killURLEnv = "POSAGENT_REPORT_KILL_URL"
	killTIDEnv = "POSAGENT_REPORT_KILL_TID"
	killReady  = "reported"
)

// TestKillChild is the agent that TestOutboxSurvivesSIGKILL kills: it reports
// with the broker down, says so, and waits for its SIGKILL.
func TestKillChild(t *testing.T) {
	dir := os.Getenv(killDirEnv)
	if dir == "" {
		t.Skip("the child of TestOutboxSurvivesSIGKILL")
	}
	n, err := strconv.Atoi(os.Getenv(killNEnv))
	if err != nil {
		t.Fatal(err)
	}
	ob, err := outbox.Open(dir, outbox.Options{})
	if err != nil {
		t.Fatal(err)
	}
	// Credentials and TLS files come from the core suite's SIGKILL cases
	// (suite_test.go); empty for an open broker.
	r, err := newTerminal(testOptions{Options: mqtt.Options{URL: os.Getenv(killURLEnv), TID: os.Getenv(killTIDEnv), MID: mid, Serial: serial, Logger: quietLogger(), RetryInterval: 50 * time.Millisecond,
		Username: os.Getenv("POSAGENT_WILL_USER"), Password: os.Getenv("POSAGENT_WILL_PASS"),
		CAFile: os.Getenv("POSAGENT_WILL_CA"), CertFile: os.Getenv("POSAGENT_WILL_CERT"), KeyFile: os.Getenv("POSAGENT_WILL_KEY")}, Queue: ob})
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range statuses(n) {
		r.Report(context.Background(), st)
	}
	fmt.Println(killReady)
	time.Sleep(time.Minute) // the parent kills us long before
	t.Fatal("not killed")
}

// A SIGKILL while the broker is down loses nothing: Report returned only once
// the event was on disk.
func TestOutboxSurvivesSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a child process")
	}
	const n = 9
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestKillChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), killDirEnv+"="+dir, killNEnv+"="+strconv.Itoa(n), killURLEnv+"=tcp://"+bench.ReserveAddr(t), killTIDEnv+"="+tid)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if sc.Text() == killReady {
				ready <- true
				break
			}
		}
		ready <- false
		for sc.Scan() { // drain, so the child never blocks on a full pipe
		}
	}()
	select {
	case ok := <-ready:
		if !ok {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatal("the child ended before reporting")
		}
	case <-time.After(2 * wait):
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatal("the child did not report in time")
	}
	if err := cmd.Process.Kill(); err != nil { // SIGKILL on Unix
		t.Fatal(err)
	}
	_ = cmd.Wait()

	deliverAfterRestart(t, dir, n)
}
