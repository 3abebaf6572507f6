// Package firmware runs the firmware build itself — the armv7 binary `make
// cross` makes, with cgo PC/SC and without the simulators — under qemu-user
// against the real device stack of agent/testkit/rig: pcscd with a virtual
// chip card, a pty ESC/POS printer and the acquirer simulator over TCP. The
// firmware links no simulated device, so this is the install a terminal
// runs, on an emulated CPU.
package firmware

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/posagent/posagent/agent/config/configtest"
	"github.com/posagent/posagent/agent/sim/ledger"
	"github.com/posagent/posagent/agent/testkit/bench"
	"github.com/posagent/posagent/agent/testkit/rig"
)

// TestFirmwareInstallUnderQEMU: POSAGENT_FIRMWARE_BIN names the firmware
// binary and POSAGENT_QEMU the emulator (qemu-arm for armv7); the test is
// skipped without them (make test sets both after make cross).
func TestFirmwareInstallUnderQEMU(t *testing.T) {
	bin, qemu := os.Getenv("POSAGENT_FIRMWARE_BIN"), os.Getenv("POSAGENT_QEMU")
	if bin == "" || qemu == "" {
		t.Skip("set POSAGENT_FIRMWARE_BIN and POSAGENT_QEMU (make test does, after make cross)")
	}
	if !filepath.IsAbs(bin) {
		bin = filepath.Join(rig.Root(t), bin) // as make names it, from the module root
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("POSAGENT_FIRMWARE_BIN: %v", err)
	}
	qemuPath, err := exec.LookPath(qemu)
	if err != nil {
		t.Fatalf("%s: %v", qemu, err)
	}
	bench.NeedPCSC(t)
	rig.PlugCard(t, "debit")
	r := rig.New(t, rig.Options{})
	// The rig starts "BIN run --config …": a wrapper makes that the
	// emulator running the firmware binary. Plain qemu-arm, not -L: with
	// the armhf libc installed that would mix two libcs (TESTBENCH.md).
	wrapper := filepath.Join(t.TempDir(), "posagent-under-qemu")
	script := "#!/bin/sh\nexec " + qemuPath + " " + bin + " \"$@\"\n"
	if err := os.WriteFile(wrapper, []byte(script), 0o700); err != nil {
		t.Fatal(err)
	}
	a := r.StartAgent(t, wrapper, "firmware")
	select {
	case <-a.Done:
	case <-time.After(3 * time.Minute):
		a.Kill()
		t.Fatalf("the firmware install did not end within 3 min:\n%s", a.Stdout())
	}
	out := a.Stdout()
	if !a.State.Success() || !strings.Contains(out, "step| live") {
		errLog, _ := os.ReadFile(filepath.Join(r.Logs, "firmware.err"))
		t.Fatalf("firmware run: %v\nstdout:\n%s\nstderr:\n%s", a.State, out, errLog)
	}
	entries, err := ledger.Read(r.Ledger)
	if err != nil {
		t.Fatal(err)
	}
	var sales, voids int
	for _, e := range entries {
		switch {
		case e.Kind == ledger.KindSale && e.Event == ledger.EventApproved:
			sales++
		case e.Kind == ledger.KindVoid && e.Event == ledger.EventVoided:
			voids++
		}
	}
	if sales != 1 || voids != 1 {
		t.Fatalf("the host booked %d sales and %d voids, want the test sale and its void", sales, voids)
	}
	// What the firmware said of itself: its version line is the first
	// thing a builder checks.
	v, err := exec.Command(qemuPath, bin, "version").Output()
	if err != nil || !strings.HasPrefix(string(v), "posagent ") {
		t.Fatalf("version: %v %q", err, v)
	}
	t.Logf("firmware %s under %s: live, 1 sale, 1 void", strings.TrimSpace(string(v)), qemu)
}

// TestFirmwareHasNoSimulators: the firmware binary refuses the demo and a
// config naming a simulated device, each with exit 2 and a sentence saying
// so, before it touches the state dir.
func TestFirmwareHasNoSimulators(t *testing.T) {
	bin, qemu := os.Getenv("POSAGENT_FIRMWARE_BIN"), os.Getenv("POSAGENT_QEMU")
	if bin == "" || qemu == "" {
		t.Skip("set POSAGENT_FIRMWARE_BIN and POSAGENT_QEMU (make test does, after make cross)")
	}
	if !filepath.IsAbs(bin) {
		bin = filepath.Join(rig.Root(t), bin)
	}
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	cfg := filepath.Join(dir, "posagent.yaml")
	err := configtest.WriteEdited(filepath.Join(rig.Root(t), "testdata", "posagent.example.yaml"), cfg,
		[][2]string{{"state_dir: /var/lib/posagent", "state_dir: " + state}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"demo"}, "demo is not in this build"},
		{[]string{"run", "--config", cfg}, `devices.card_reader: "sim" is not in this build`},
	} {
		out, err := exec.Command(qemu, append([]string{bin}, tc.args...)...).CombinedOutput()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(string(out), tc.want) {
			t.Errorf("%v: %v, output %q; want exit 2 saying %q", tc.args, err, out, tc.want)
		}
	}
	if _, err := os.Stat(state); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the refused run made its state dir: %v", err)
	}
}
