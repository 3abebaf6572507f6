package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/posagent/posagent/agent/central/monitor"
	"github.com/posagent/posagent/agent/sim/inproc"
	"github.com/posagent/posagent/agent/sim/ledger"
	"github.com/posagent/posagent/agent/testkit/bench"
	"github.com/posagent/posagent/provisioning"
)

// These tests run the real posagent binary as separate processes: what a
// terminal runs, killed as a power cut kills it.

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "posagent-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "posagent")
	build := exec.Command("go", "build", "-o", binary, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build posagent:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// assertNoFullPAN fails when text holds the full number of any simulated card.
func assertNoFullPAN(t *testing.T, where, text string) {
	t.Helper()
	for name, p := range inproc.Profiles {
		if strings.Contains(text, p.PAN) {
			t.Errorf("%s contains the full PAN of the %s card", where, name)
		}
	}
}

// startPaused starts a demo that freezes at point and returns once it says so.
func startPaused(t *testing.T, stateDir, point string) (*exec.Cmd, *bytes.Buffer) {
	t.Helper()
	cmd := exec.Command(binary, "demo", "--state-dir", stateDir, "--pause-at", point)
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	paused := make(chan bool, 1)
	var errLog strings.Builder
	go func() {
		sc := bufio.NewScanner(stderr)
		said := false
		for sc.Scan() {
			errLog.WriteString(sc.Text() + "\n")
			if !said && sc.Text() == "PAUSED at "+point {
				said = true
				paused <- true
			}
		}
		if !said {
			paused <- false
		}
	}()
	select {
	case ok := <-paused:
		if !ok {
			cmd.Wait()
			t.Fatalf("posagent ended before pausing at %s:\n%s\n%s", point, stdout.String(), errLog.String())
		}
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("posagent did not pause at %s within 60 s", point)
	}
	return cmd, &stdout
}

// A real posagent is SIGKILLed inside each step in turn and restarted on the
// same state dir: it ends live, the host is left with nothing charged but the
// voided test sale, no finished step's side effect is repeated, and the state
// file parses after every kill.
func TestSIGKILLInsideEachStep(t *testing.T) {
	stateDir := t.TempDir()
	var allOutput strings.Builder
	for _, point := range inproc.Points() {
		cmd, stdout := startPaused(t, stateDir, point)
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		err := cmd.Wait()
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
			t.Fatalf("at %s: process ended with %v, want killed by SIGKILL", point, err)
		}
		allOutput.WriteString(stdout.String())
		b, err := os.ReadFile(filepath.Join(stateDir, "state.json"))
		if err != nil {
			t.Fatalf("after kill at %s: %v", point, err)
		}
		cp, err := provisioning.Decode(b)
		if err != nil {
			t.Fatalf("after kill at %s the state file is corrupt: %v", point, err)
		}
		t.Logf("killed at %-16s checkpoint: step=%s attempt=%d boot=%d", point, cp.Step, cp.Attempt, cp.Boot)
	}

	out, err := exec.Command(binary, "demo", "--state-dir", stateDir).CombinedOutput()
	allOutput.Write(out)
	if err != nil {
		t.Fatalf("final run: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "demo| final state: live") {
		t.Fatalf("final run did not end live:\n%s", out)
	}

	led, err := ledger.Read(filepath.Join(stateDir, "simhost-ledger.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	sum := inproc.Summarize(led)
	if sum.Outstanding() != 0 || sum.Count("voided") != 1 {
		t.Errorf("host ledger: %d sales still charged, %d voided; want 0 and 1 (%v)", sum.Outstanding(), sum.Count("voided"), sum.Sales)
	}
	// Side effects repeat only where the kill fell inside them after the host
	// booked: sign-on once more (host.signon) and the sign-on for business
	// once more (host.signon-business), the sale twice more (host.sale: the
	// answer lost; card.second-ac: approved, the card's verdict not in; each
	// reversed first), the void once more (host.void, reversed first), the
	// settlement once more (host.settle: answered again, closing nothing).
	// A kill at card.first-ac sends nothing.
	if n := sum.Messages[ledger.KindSignOn]; n != 4 {
		t.Errorf("%d sign-ons, want 4", n)
	}
	settled := 0
	for _, e := range led {
		if e.Event == ledger.EventSettled {
			settled++
		}
	}
	if n := sum.Messages[ledger.KindSettlement]; n != 2 || settled != 1 {
		t.Errorf("%d settlements sent, %d batches closed; want 2 and 1", n, settled)
	}
	// The second CA key was fetched again after the kill inside it; the
	// end of each download sent again after the kill at it.
	if n, e := sum.Messages[ledger.KindCAPK], sum.Messages[ledger.KindCAPKEnd]; n != 4 || e != 2 {
		t.Errorf("%d key fetches, %d key download ends; want 4 and 2", n, e)
	}
	if n := sum.Messages[ledger.KindSale]; n != 3 {
		t.Errorf("%d sales sent, want 3 (two reversed)", n)
	}
	if n := sum.Messages[ledger.KindVoid]; n != 2 {
		t.Errorf("%d voids sent, want 2 (one reversed)", n)
	}
	if sum.Count("reversed") != 2 || sum.Reversals["void/"+fmt.Sprintf("%06d", voidSTAN(led))] != 1 {
		t.Errorf("reversals: %v, sales %v", sum.Reversals, sum.Sales)
	}

	b, err := os.ReadFile(filepath.Join(stateDir, "state.json"))
	if err != nil {
		t.Fatal(err)
	}
	cp, err := provisioning.Decode(b)
	if err != nil || cp.Step != provisioning.StepLive || cp.Slip == nil || !cp.Slip.Printed {
		t.Fatalf("final checkpoint: %v %+v", err, cp)
	}
	// The kill after printing makes the next print a marked duplicate.
	slip, err := os.ReadFile(filepath.Join(stateDir, "slips", fmt.Sprintf("sale-%06d-merchant.txt", cp.Sale.STAN)))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(slip), "DUPLICATED") {
		t.Errorf("reprint after a kill mid-print is not marked:\n%s", slip)
	}
	assertNoFullPAN(t, "the demo's output", allOutput.String())
	filepath.Walk(stateDir, func(path string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			b, _ := os.ReadFile(path)
			assertNoFullPAN(t, path, string(b))
		}
		return nil
	})
}

// voidSTAN is the STAN of the first void the host booked.
func voidSTAN(led []ledger.Entry) int {
	for _, e := range led {
		if e.Event == ledger.EventVoided {
			return e.STAN
		}
	}
	return -1
}

// The demo against an external broker (a real mosquitto): the retained status
// of the terminal says live.
func TestDemoWithMosquitto(t *testing.T) {
	m := bench.StartMosquitto(t)
	cmd := exec.Command(binary, "demo", "--mqtt", m.URL)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, out)
	}
	text := string(out)
	for _, want := range []string{"demo| final state: live", "step| test-sale", "622202*********0128", "slip|", "monitor|"} {
		if !strings.Contains(text, want) {
			t.Errorf("demo output lacks %q", want)
		}
	}
	assertNoFullPAN(t, "demo output", text)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := monitor.Latest(ctx, m.URL, "10000001")
	if err != nil {
		t.Fatal(err)
	}
	if st.Step != provisioning.StepLive || st.State != provisioning.StateLive {
		t.Errorf("retained status = %s/%s, want live", st.Step, st.State)
	}
	if st.Sale == nil || st.Sale.Masked != "622202*********0128" || st.Void == nil {
		t.Errorf("retained status lacks the test sale: %+v", st)
	}
}

// Each rejected card ends the demo in needs-attention with the rule's message
// on the screen and in the retained MQTT status.
func TestDemoRejectionsOnScreenAndMQTT(t *testing.T) {
	m := bench.StartMosquitto(t)
	cases := map[string]string{
		"foreign":       provisioning.RejectNotUnionPay,
		"expired":       provisioning.RejectExpired,
		"name-mismatch": provisioning.RejectNameMismatch,
		"other-account": provisioning.RejectOtherAccount,
		"credit":        provisioning.RejectCardType,
		"bad-luhn":      provisioning.RejectBadLuhn,
	}
	for profile, code := range cases {
		t.Run(profile, func(t *testing.T) {
			cmd := exec.Command(binary, "demo", "--mqtt", m.URL, "--card", profile)
			out, err := cmd.CombinedOutput()
			if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
				t.Fatalf("demo with %s card: %v, want exit 1\n%s", profile, err, out)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			st, err := monitor.Latest(ctx, m.URL, "10000001")
			if err != nil {
				t.Fatal(err)
			}
			if st.Error == nil || st.Error.Code != code || st.Step != provisioning.StepBindCard || st.State != provisioning.StateFailed {
				t.Fatalf("retained status = %s/%s %+v, want %s", st.Step, st.State, st.Error, code)
			}
			var screen strings.Builder
			for _, line := range strings.Split(string(out), "\n") {
				if strings.HasPrefix(line, "screen|") {
					screen.WriteString(strings.TrimPrefix(line, "screen|"))
				}
			}
			// The screen wraps long lines: compare without the frame and spaces.
			squash := func(s string) string {
				return strings.Join(strings.FieldsFunc(s, func(r rune) bool { return r == ' ' || r == '|' || r == '│' }), "")
			}
			if !strings.Contains(squash(screen.String()), squash(st.Error.Message)) || !strings.Contains(screen.String(), code) {
				t.Errorf("screen does not show %s %q:\n%s", code, st.Error.Message, screen.String())
			}
			assertNoFullPAN(t, "demo output", string(out))
		})
	}
}

func TestUsageAndConfigErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("terminal:\n  mid: \"12345\"\n  tid: \"10000001\"\n  serial: PA-1\nstate_dir: "+dir+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{nil, 2, "usage"},
		{[]string{"frobnicate"}, 2, "usage"},
		{[]string{"run"}, 2, "usage"},
		{[]string{"run", "--config", filepath.Join(dir, "missing.yaml")}, 2, "missing.yaml"},
		{[]string{"run", "--config", bad}, 2, "terminal.mid"},
		{[]string{"demo", "--card", "no-such-card"}, 1, "no-such-card"},
		{[]string{"version"}, 0, "posagent"},
	} {
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), tc.args, &stdout, &stderr)
		if code != tc.code || !strings.Contains(stdout.String()+stderr.String(), tc.want) {
			t.Errorf("posagent %v = %d %q %q, want %d and %q", tc.args, code, stdout.String(), stderr.String(), tc.code, tc.want)
		}
	}
}

// The daemon entry point runs the flow from a config file to live.
func TestRunWithConfigFile(t *testing.T) {
	dir := t.TempDir()
	example, err := os.ReadFile(filepath.Join("..", "..", "testdata", "posagent.example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := strings.Replace(string(example), "state_dir: /var/lib/posagent", "state_dir: "+dir, 1)
	path := filepath.Join(dir, "posagent.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"run", "--config", path}, &stdout, &stderr); code != 0 {
		t.Fatalf("run = %d\n%s\n%s", code, stdout.String(), stderr.String())
	}
	if !strings.Contains(stdout.String(), "step| live") {
		t.Errorf("no live step:\n%s", stdout.String())
	}
}
