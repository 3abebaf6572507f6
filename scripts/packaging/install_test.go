// Package packaging holds what `make install` lays out in a terminal's root
// file system (systemd unit, busybox/sysvinit script, default config, the
// service user) and the tests that install it into a temp DESTDIR and run
// the installed daemon the way the firmware will.
package packaging

import (
	"bufio"
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/posagent/posagent/agent/config"
	"github.com/posagent/posagent/agent/testkit/bench"
)

// root is the module root (go test runs in scripts/packaging).
const root = "../.."

// bins builds posagent and posctl for this machine once per test binary.
var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "posagent-pkg-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	for _, c := range []string{"posagent", "posctl"} {
		cmd := exec.Command("go", "build", "-trimpath", "-o", filepath.Join(dir, c), "./cmd/"+c)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "build %s: %v\n%s", c, err, out)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// install runs scripts/install.sh into a fresh DESTDIR and returns it.
func install(t *testing.T, destdir, prefix string) string {
	t.Helper()
	cmd := exec.Command("bash", "scripts/install.sh", filepath.Join(binDir, "posagent"), filepath.Join(binDir, "posctl"))
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "DESTDIR="+destdir, "PREFIX="+prefix)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("install.sh: %v\n%s", err, out)
	}
	return string(out)
}

func TestInstallLayout(t *testing.T) {
	dest := t.TempDir()
	install(t, dest, "/usr")
	want := map[string]fs.FileMode{
		"usr/bin/posagent":                    0o755,
		"usr/bin/posctl":                      0o755,
		"etc/posagent/posagent.yaml":          0o640,
		"lib/systemd/system/posagent.service": 0o644,
		"etc/init.d/posagent":                 0o755,
		"usr/lib/sysusers.d/posagent.conf":    0o644,
		"var/lib/posagent":                    fs.ModeDir | 0o700,
	}
	got := map[string]fs.FileMode{}
	filepath.WalkDir(dest, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() && p != filepath.Join(dest, "var/lib/posagent") {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dest, p)
		got[rel] = fi.Mode()
		return nil
	})
	for p, m := range want {
		if got[p] != m {
			t.Errorf("%s: mode %v, want %v", p, got[p], m)
		}
	}
	for p := range got {
		if _, ok := want[p]; !ok {
			t.Errorf("unexpected file %s", p)
		}
	}

	// The installed default config is what `posagent run` accepts.
	cfg, err := config.Load(filepath.Join(dest, "etc/posagent/posagent.yaml"))
	if err == nil {
		err = cfg.ValidateForRun()
	}
	if err != nil {
		t.Fatalf("installed default config: %v", err)
	}
	if cfg.StateDir != "/var/lib/posagent" {
		t.Errorf("default state_dir %q, want /var/lib/posagent", cfg.StateDir)
	}
	if cfg.Devices.CardReader != "sim" || cfg.Host.Address != "sim" || cfg.MQTT.URL != "" {
		t.Errorf("default config must ship on simulated devices with reporting off: %+v %+v", cfg.Devices, cfg.Host)
	}
	// Uncommenting the real-device lines gives a valid config too.
	raw, _ := os.ReadFile(filepath.Join(dest, "etc/posagent/posagent.yaml"))
	real := string(raw)
	for _, kv := range [][2]string{
		{"  card_reader: sim\n  # card_reader: pcsc ", "  card_reader: pcsc #"},
		{"  printer: sim\n  # printer: serial ", "  printer: serial #"},
		{"  # printer_line:\n  #   device: /dev/ttyS1\n  #   baud: 9600", "  printer_line:\n    device: /dev/ttyS1\n    baud: 9600"},
		{"  address: sim ", "  address: \"127.0.0.1:5000\" "},
		{"  keypad: sim\n  # keypad: input ", "  keypad: input #"},
		{"  # keypad_input: /dev/input/event0 ", "  keypad_input: /dev/input/event0 #"},
	} {
		if !strings.Contains(real, kv[0]) {
			t.Fatalf("default config lacks %q", kv[0])
		}
		real = strings.Replace(real, kv[0], kv[1], 1)
	}
	if _, err := config.Parse([]byte(real)); err != nil {
		t.Errorf("default config with the real devices uncommented: %v", err)
	}

	unit, _ := os.ReadFile(filepath.Join(dest, "lib/systemd/system/posagent.service"))
	for _, d := range []string{"Restart=on-failure", "RestartPreventExitStatus=2", "StateDirectory=posagent",
		"ReadWritePaths=/var/lib/posagent", "ProtectSystem=strict", "ProtectHome=yes", "PrivateTmp=yes",
		"NoNewPrivileges=yes", "SupplementaryGroups=dialout input", "User=posagent", "LimitCORE=0",
		"ExecStart=/usr/bin/posagent run --config ${CREDENTIALS_DIRECTORY}/posagent.yaml"} {
		if !bytes.Contains(unit, []byte("\n"+d+"\n")) {
			t.Errorf("unit lacks %s", d)
		}
	}
	verifyUnit(t, dest)
}

// verifyUnit runs systemd-analyze verify on the installed unit. It checks
// that ExecStart is executable on this machine, so the copy it verifies
// names the DESTDIR's binary; nothing else is changed.
func verifyUnit(t *testing.T, dest string) {
	sa, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Log("systemd-analyze not installed: unit not verified")
		return
	}
	unit, err := os.ReadFile(filepath.Join(dest, "lib/systemd/system/posagent.service"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	u := filepath.Join(dir, "posagent.service")
	fixed := strings.ReplaceAll(string(unit), "/usr/bin/posagent", filepath.Join(dest, "usr/bin/posagent"))
	if err := os.WriteFile(u, []byte(fixed), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(sa, "verify", "--man=no", u).CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
	// The exposure score is informational (lower is better; under 2 is "OK").
	if out, err := exec.Command(sa, "security", "--offline=yes", "--no-pager", u).CombinedOutput(); err == nil {
		if m := regexp.MustCompile(`Overall exposure level for \S+: (\S+ \S+)`).FindSubmatch(out); m != nil {
			t.Logf("systemd-analyze security: exposure %s", m[1])
		}
	}
}

// An upgrade keeps the terminal's own config; PREFIX moves the binaries and
// the paths the unit and init script name.
func TestReinstallKeepsConfigAndPrefix(t *testing.T) {
	dest := t.TempDir()
	install(t, dest, "/usr/local")
	conf := filepath.Join(dest, "etc/posagent/posagent.yaml")
	if err := os.WriteFile(conf, []byte("# the terminal's own\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	os.Chmod(filepath.Join(dest, "var/lib/posagent"), 0o755)
	out := install(t, dest, "/usr/local")
	if b, _ := os.ReadFile(conf); string(b) != "# the terminal's own\n" {
		t.Errorf("reinstall replaced the config: %q", b)
	}
	if !strings.Contains(out, "posagent.yaml.dist") {
		t.Errorf("reinstall does not say where the new default went: %s", out)
	}
	if fi, err := os.Stat(filepath.Join(dest, "var/lib/posagent")); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("state dir after reinstall: %v %v, want 0700", err, fi.Mode().Perm())
	}
	for _, f := range []string{"lib/systemd/system/posagent.service", "etc/init.d/posagent"} {
		b, _ := os.ReadFile(filepath.Join(dest, f))
		if !bytes.Contains(b, []byte("/usr/local/bin/posagent")) || bytes.Contains(b, []byte("/usr/bin/posagent")) {
			t.Errorf("%s does not name /usr/local/bin/posagent", f)
		}
	}
	if _, err := os.Stat(filepath.Join(dest, "usr/local/bin/posagent")); err != nil {
		t.Error(err)
	}
}

// simConfig writes the installed default config with stateDir and, when
// url is set, MQTT reporting to it.
func simConfig(t *testing.T, dest, stateDir, url string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dest, "etc/posagent/posagent.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := strings.Replace(string(b), "state_dir: /var/lib/posagent", "state_dir: "+stateDir, 1)
	if url != "" {
		cfg = strings.Replace(cfg, `  url: ""  `, `  url: "`+url+`"`, 1)
	}
	p := filepath.Join(t.TempDir(), "posagent.yaml")
	if err := os.WriteFile(p, []byte(cfg), 0o640); err != nil {
		t.Fatal(err)
	}
	return p
}

// The init script's start/status/stop/restart against the installed binary.
// The agent is held at a pause point (a wrapper adds --pause-at), so it is
// still running while status is asked.
func TestInitScript(t *testing.T) {
	dest := t.TempDir()
	install(t, dest, "/usr")
	dir := t.TempDir()
	wrapper := filepath.Join(dir, "posagent-paused")
	script := "#!/bin/sh\nexec " + filepath.Join(dest, "usr/bin/posagent") + ` "$@" --pause-at enter:bind-card` + "\n"
	if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	pidfile := filepath.Join(dir, "posagent.pid")
	env := append(os.Environ(), "DAEMON="+wrapper, "PIDFILE="+pidfile,
		"CONFIG="+simConfig(t, dest, filepath.Join(dir, "state"), ""))
	shells := []string{"sh"}
	if bb, err := exec.LookPath("busybox"); err == nil {
		shells = append(shells, bb+" sh")
	}
	for _, shell := range shells {
		t.Run(strings.Fields(filepath.Base(shell))[0], func(t *testing.T) {
			initd := func(verb string) (int, string) {
				args := append(strings.Fields(shell), filepath.Join(dest, "etc/init.d/posagent"), verb)
				cmd := exec.Command(args[0], args[1:]...)
				cmd.Env = env
				out, err := cmd.CombinedOutput()
				code := 0
				if ee, ok := err.(*exec.ExitError); ok {
					code = ee.ExitCode()
				} else if err != nil {
					t.Fatal(err)
				}
				return code, string(out)
			}
			pid := func() int {
				b, _ := os.ReadFile(pidfile)
				n, _ := strconv.Atoi(strings.TrimSpace(string(b)))
				return n
			}
			t.Cleanup(func() {
				if p := pid(); p > 0 {
					syscall.Kill(p, syscall.SIGKILL)
				}
			})
			if code, out := initd("status"); code != 3 {
				t.Errorf("status before start = %d %q, want 3", code, out)
			}
			if code, out := initd("start"); code != 0 {
				t.Fatalf("start = %d %q", code, out)
			}
			first := pid()
			// No core files, from the script's limit and the agent's own.
			if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/limits", first)); err == nil &&
				!regexp.MustCompile(`(?m)^Max core file size\s+0\s+0\s`).Match(b) {
				t.Errorf("the agent may dump core:\n%s", b)
			}
			if b, _ := os.ReadFile(filepath.Join(dest, "etc/init.d/posagent")); !bytes.Contains(b, []byte("\n\tulimit -c 0\n")) {
				t.Error("the init script does not turn core dumps off")
			}
			// The pid file names the agent itself, not a shell around it.
			if exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", first)); err != nil || filepath.Base(exe) != "posagent" {
				t.Errorf("pid file names %d (%s, %v), want the posagent process", first, exe, err)
			}
			if code, out := initd("status"); code != 0 || !strings.Contains(out, "running") {
				t.Errorf("status = %d %q, want 0 running", code, out)
			}
			if code, out := initd("start"); code != 0 || !strings.Contains(out, "already running") || pid() != first {
				t.Errorf("second start = %d %q", code, out)
			}
			if code, out := initd("restart"); code != 0 || pid() == first || pid() == 0 {
				t.Errorf("restart = %d %q, pid %d → %d", code, out, first, pid())
			}
			if err := syscall.Kill(first, 0); err == nil {
				t.Errorf("restart left the old agent %d running", first)
			}
			second := pid()
			if code, out := initd("stop"); code != 0 {
				t.Errorf("stop = %d %q", code, out)
			}
			if err := syscall.Kill(second, 0); err == nil {
				t.Errorf("stop left the agent %d running", second)
			}
			if _, err := os.Stat(pidfile); err == nil {
				t.Error("stop left the pid file")
			}
			if code, out := initd("status"); code != 3 {
				t.Errorf("status after stop = %d %q, want 3", code, out)
			}
			// A dead agent with its pid file left behind (a crash).
			os.WriteFile(pidfile, []byte(strconv.Itoa(second)+"\n"), 0o644)
			if code, out := initd("status"); code != 1 || !strings.Contains(out, "stale") {
				t.Errorf("status with a stale pid file = %d %q, want 1", code, out)
			}
			os.Remove(pidfile)
		})
	}
}

// The installed daemon runs a whole install, reporting to mosquitto, in a
// mount namespace where every file system is read-only except its state
// dir (what ProtectSystem=strict + ReadWritePaths give it under systemd, and
// a read-only rootfs on the terminal): it must still end live. strace then
// lists every path it tried to create, write, rename or remove, and all of
// them must be in the state dir: a write that failed with EROFS and was
// shrugged off would be caught here too.
func TestWritesOnlyInStateDir(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for a mount namespace (unshare -m)")
	}
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		t.Skip("unshare (util-linux) not installed")
	}
	if out, err := exec.Command(unshare, "-m", "true").CombinedOutput(); err != nil {
		t.Skipf("no mount namespaces here: %v %s", err, out)
	}
	m := bench.StartMosquitto(t)
	dest := t.TempDir()
	install(t, dest, "/usr")
	work := t.TempDir()
	state := filepath.Join(work, "state")
	out := filepath.Join(work, "trace")
	for _, d := range []string{state, out} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	cfg := simConfig(t, dest, state, m.URL)
	strace, _ := exec.LookPath("strace")
	// Inside the namespace: the state dir (and the trace's dir, for strace's
	// own output) become their own mounts, then every other mount but the
	// kernel's (/proc, /sys) and /dev (ptys, serial lines) is remounted
	// read-only. Remounting / must work; a probe proves it took.
	sh := `set -e
mount --make-rprivate /
mount --bind "$STATE" "$STATE"
mount --bind "$OUT" "$OUT"
mount -o remount,bind,ro /
awk '{print $5}' /proc/self/mountinfo | while read -r mp; do
	case "$mp" in /|/proc|/proc/*|/sys|/sys/*|/dev|/dev/*|"$STATE"|"$OUT") continue ;; esac
	mount -o remount,bind,ro "$mp" 2>/dev/null || echo "not read-only: $mp" >&2
done
if touch /tmp/.posagent-rw-probe 2>/dev/null || touch "$CFG.probe" 2>/dev/null; then
	echo "the root file system is still writable" >&2
	exit 90
fi
if [ -n "$STRACE" ]; then
	exec "$STRACE" -f -qq -e trace=%file -o "$OUT/trace" "$BIN" run --config "$CFG"
fi
exec "$BIN" run --config "$CFG"
`
	cmd := exec.Command(unshare, "-m", "sh", "-c", sh)
	cmd.Env = append(os.Environ(), "STATE="+state, "OUT="+out, "CFG="+cfg, "STRACE="+strace,
		"BIN="+filepath.Join(dest, "usr/bin/posagent"))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case err = <-done:
	case <-time.After(2 * time.Minute):
		cmd.Process.Kill()
		t.Fatalf("posagent on a read-only root did not end within 2 min:\n%s", stderr.String())
	}
	if err != nil || !strings.Contains(stdout.String(), "step| live") {
		t.Fatalf("posagent on a read-only root: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	if _, err := os.Stat(filepath.Join(state, "state.json")); err != nil {
		t.Errorf("no checkpoint in the state dir: %v", err)
	}
	if strace == "" {
		t.Log("strace not installed: only the read-only namespace was checked")
		return
	}
	writes, err := writtenPaths(filepath.Join(out, "trace"))
	if err != nil {
		t.Fatal(err)
	}
	inState := 0
	for _, p := range writes {
		switch {
		case p == state || strings.HasPrefix(p, state+"/"):
			inState++
		case strings.HasPrefix(p, "/dev/"):
			// Device nodes (ptys, the console) are I/O, not storage.
		default:
			t.Errorf("posagent tried to write %s, outside its state dir", p)
		}
	}
	if inState == 0 {
		t.Error("strace saw no write at all: the trace is not what it claims")
	}
	t.Logf("strace: %d write/create/rename/remove calls, all in the state dir", inState)
}

// Calls of strace -e trace=%file that change the file system, and open flags
// that can.
var (
	changeCall = regexp.MustCompile(`^\d+\s+(mkdir|mkdirat|rename|renameat|renameat2|unlink|unlinkat|rmdir|creat|link|linkat|symlink|symlinkat|chmod|fchmodat|chown|fchownat|lchown|truncate|utimensat|mknod|mknodat)\(`)
	openCall   = regexp.MustCompile(`^\d+\s+(open|openat|openat2)\(`)
	quoted     = regexp.MustCompile(`"((?:[^"\\]|\\.)*)"`)
)

// writtenPaths returns every path strace shows being created, opened for
// writing, renamed or removed, whatever the call's result. Relative paths
// are left as they are (and so fail the state-dir check): the agent uses
// absolute ones.
func writtenPaths(trace string) ([]string, error) {
	f, err := os.Open(trace)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var paths []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		write := changeCall.MatchString(line)
		if openCall.MatchString(line) {
			write = strings.Contains(line, "O_WRONLY") || strings.Contains(line, "O_RDWR") || strings.Contains(line, "O_CREAT") || strings.Contains(line, "O_TRUNC")
		}
		if !write {
			continue
		}
		for _, m := range quoted.FindAllStringSubmatch(line, -1) {
			paths = append(paths, m[1])
		}
	}
	return paths, sc.Err()
}

// writtenPaths on lines strace 6 printed for touch, mv, rm, mkdir, rmdir and
// a read: every change is found, reads are not.
func TestWrittenPaths(t *testing.T) {
	trace := `13175 openat(AT_FDCWD, "/usr/lib/locale/C.utf8/LC_CTYPE", O_RDONLY|O_CLOEXEC) = 3
13175 openat(AT_FDCWD, "/tmp/st-a", O_WRONLY|O_CREAT|O_NOCTTY|O_NONBLOCK, 0666) = 3
13175 utimensat(0, NULL, NULL, 0)       = 0
13176 renameat2(AT_FDCWD, "/tmp/st-a", AT_FDCWD, "/tmp/st-b", RENAME_NOREPLACE) = 0
13177 unlinkat(AT_FDCWD, "/tmp/st-b", 0) = 0
13178 mkdir("/tmp/st-d", 0777)          = 0
13179 rmdir("/tmp/st-d")                = 0
13174 openat(AT_FDCWD, "/dev/null", O_WRONLY|O_CREAT|O_TRUNC, 0666) = 3
13180 openat(AT_FDCWD, "/etc/hostname", O_RDONLY) = 3
13181 openat(AT_FDCWD, "/var/lib/x/.state.json.tmp", O_RDWR|O_CREAT|O_EXCL|O_CLOEXEC, 0600) = -1 EROFS (Read-only file system)
13174 --- SIGCHLD {si_signo=SIGCHLD, si_code=CLD_EXITED, si_pid=13180, si_uid=0, si_status=0, si_utime=0, si_stime=0} ---
`
	p := filepath.Join(t.TempDir(), "trace")
	if err := os.WriteFile(p, []byte(trace), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := writtenPaths(p)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"/tmp/st-a", "/tmp/st-a", "/tmp/st-b", "/tmp/st-b", "/tmp/st-d", "/tmp/st-d", "/dev/null", "/var/lib/x/.state.json.tmp"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("writtenPaths = %q, want %q", got, want)
	}
}
