package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/posagent/posagent/agent/config/configtest"
)

// demoKeys runs `posagent demo --keys FILE` (the installer's menu driven by
// a key script) and returns its output and exit code.
func demoKeys(t *testing.T, keys string, extra ...string) (string, int) {
	t.Helper()
	args := append([]string{"demo", "--keys", filepath.Join("..", "..", "testdata", "keys", keys)}, extra...)
	out, err := exec.Command(binary, args...).CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return string(out), code
}

func TestDemoKeysInstall(t *testing.T) {
	out, code := demoKeys(t, "install.keys")
	if code != 0 || !strings.Contains(out, "demo| final state: live") {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	for _, want := range []string{"安装密码 PASSWORD", "****", "商户号 MID", "终端号 TID"} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q on the screens", want)
		}
	}
	if strings.Contains(out, "2468") {
		t.Error("the installer password is shown")
	}
	assertNoFullPAN(t, "demo output", out)
}

// TestDemoKeysLockout: three wrong passwords lock install mode, and the lock
// outlives the process: the next run on the same state dir, with the right
// password, still finds it locked and never starts the install.
func TestDemoKeysLockout(t *testing.T) {
	dir := t.TempDir()
	out, code := demoKeys(t, "lockout.keys", "--state-dir", dir)
	if code != 1 || !strings.Contains(out, "LOCKED") || !strings.Contains(out, "before the install started") {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	out, code = demoKeys(t, "install.keys", "--state-dir", dir)
	if code != 1 || !strings.Contains(out, "LOCKED") || strings.Contains(out, "step| selftest") {
		t.Fatalf("second run: exit %d:\n%s", code, out)
	}
}

// TestDemoKeysIdleResume: an idle timeout mid-entry goes back to the menu
// without losing anything, and the install resumes from its checkpoint: the
// self test runs once, and the card step is entered again after the idle.
func TestDemoKeysIdleResume(t *testing.T) {
	out, code := demoKeys(t, "idle-resume.keys")
	if code != 0 || !strings.Contains(out, "demo| final state: live") {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	if n := strings.Count(out, "step| selftest        running"); n != 1 {
		t.Errorf("self test ran %d times, want once (resume from the checkpoint)", n)
	}
	if n := strings.Count(out, "step| bind-card       running"); n != 2 {
		t.Errorf("bind-card entered %d times, want 2 (before and after the idle)", n)
	}
	if !strings.Contains(out, "超时 Idle") {
		t.Errorf("no idle notice:\n%s", out)
	}
}

// TestRunTTYKeypad: `run` with devices.keypad: tty reads the installer's
// keys from stdin through the TTY keypad driver ('f' is F1, Enter is OK) and
// installs behind the menu and its password.
func TestRunTTYKeypad(t *testing.T) {
	dir := t.TempDir()
	example, err := os.ReadFile(filepath.Join("..", "..", "testdata", "posagent.example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := strings.Replace(string(example), "state_dir: /var/lib/posagent", "state_dir: "+filepath.Join(dir, "state"), 1)
	cfg = strings.Replace(cfg, "\n  keypad: sim ", "\n  keypad: tty ", 1)
	if !strings.Contains(cfg, "keypad: tty") {
		t.Fatal("example config has no keypad line to change")
	}
	path := filepath.Join(dir, "posagent.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(binary, "run", "--config", path)
	cmd.Stdin = strings.NewReader("f2468\r1\r\r\r\r\r")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("run: %v\n%s", err, out)
	}
	for _, want := range []string{"安装密码 PASSWORD", "step| live            live", "installer: install finished"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

// TestRunKeypadBackendsFailClearly: a GPIO matrix on a machine without GPIO,
// and an input-event device that is not there, stop `run` at start with an
// error naming the keypad, before anything is installed.
func TestRunKeypadBackendsFailClearly(t *testing.T) {
	for _, tc := range []struct {
		name  string
		edits [][2]string
		want  string
	}{
		{"matrix without GPIO", [][2]string{
			{"\n  keypad: sim ", "\n  keypad: matrix "},
			{"    rows: []", "    rows: [GPIO5, GPIO6]"},
			{"    cols: []", "    cols: [GPIO12, GPIO16]"},
			{"    keys: []", `    keys: ["1 2", "CANCEL ENTER"]`},
		}, "no GPIO"},
		{"input device missing", [][2]string{
			{"\n  keypad: sim ", "\n  keypad: input "},
			{`  keypad_input: ""`, `  keypad_input: "/dev/input/event-posagent-missing"`},
		}, "event-posagent-missing"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			edits := append([][2]string{{"state_dir: /var/lib/posagent", "state_dir: " + filepath.Join(dir, "state")}}, tc.edits...)
			cfg := filepath.Join(dir, "posagent.yaml")
			if err := configtest.WriteEdited(filepath.Join("..", "..", "testdata", "posagent.example.yaml"), cfg, edits); err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command(binary, "run", "--config", cfg).CombinedOutput()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 1 {
				t.Fatalf("run: %v, want exit 1\n%s", err, out)
			}
			if !strings.Contains(string(out), "keypad") || !strings.Contains(string(out), tc.want) {
				t.Errorf("error does not name the keypad problem (%q):\n%s", tc.want, out)
			}
			if strings.Contains(string(out), "step| selftest") {
				t.Errorf("the install started without a keypad:\n%s", out)
			}
		})
	}
}
