//go:build cgo

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/posagent/posagent/agent"
	"github.com/posagent/posagent/agent/acquirer"
	"github.com/posagent/posagent/agent/cardsim"
	"github.com/posagent/posagent/agent/devsim"
	"github.com/posagent/posagent/agent/hostsim"
	"github.com/posagent/posagent/agent/testbench"
	"github.com/posagent/posagent/drivers/cardreader"
	"github.com/posagent/posagent/drivers/cardreader/pcsc"
	"github.com/posagent/posagent/drivers/magstripe"
	"github.com/posagent/posagent/provisioning"
	"github.com/posagent/posagent/provisioning/pan"
)

// hardwareRig is a terminal's real device stack, each behind the interface
// the terminal reaches it through: a virtual chip card in vpcd's first slot
// read through pcscd and ebfe/scard, an ESC/POS printer emulator behind a
// pty opened with tarm/serial, and the acquirer host simulator over TCP.
type hardwareRig struct {
	dir, state string
	host       *hostsim.Server
	hostAddr   string
	ledger     string
	printer    *devsim.Printer
	config     string
	stopCard   func()
}

const (
	rigTMK   = "0123456789ABCDEFFEDCBA9876543210"
	debitPAN = "6222021234567890128" // testdata/cards/debit.yaml
)

func newHardwareRig(t *testing.T, profile string) *hardwareRig {
	t.Helper()
	testbench.NeedPCSC(t)
	r := &hardwareRig{dir: t.TempDir()}
	r.state = filepath.Join(r.dir, "state")

	tmk, err := acquirer.ParseKey(rigTMK)
	if err != nil {
		t.Fatal(err)
	}
	r.ledger = filepath.Join(r.dir, "host-ledger.jsonl")
	l, err := hostsim.OpenLedger(r.ledger)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	// The host knows the issuer keys of the test cards, so it verifies the
	// ARQC the real chip read produced for the sale.
	cards, err := hostsim.LoadCards(filepath.Join("..", "..", "testdata", "cards"))
	if err != nil {
		t.Fatal(err)
	}
	r.host, err = hostsim.New(hostsim.Config{TMK: tmk, Ledger: l, Cards: cards, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	addr, err := r.host.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.host.Close() })

	r.printer, err = devsim.NewPrinter(filepath.Join(r.dir, "printer"), filepath.Join(r.dir, "slips"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.printer.Close() })

	if profile != "" {
		r.plugCard(t, profile)
	}
	r.hostAddr = addr.String()
	r.writeConfig(t, r.hostAddr, nil)
	return r
}

// plugCard inserts a virtual card of profile into vpcd's first slot until
// the test ends.
func (r *hardwareRig) plugCard(t *testing.T, profile string) {
	t.Helper()
	card, err := cardsim.Open(filepath.Join("..", "..", "testdata", "cards", profile+".yaml"), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	plugged := make(chan struct{})
	done := make(chan error, 1)
	go func() { done <- cardsim.Plug(ctx, cardsim.VPCDAddr(0), card, func() { close(plugged) }) }()
	r.stopCard = func() {
		cancel()
		<-done
		// pcscd must have seen the card go before the PC/SC lock is let go,
		// or the next test reads this card.
		svc := pcsc.New()
		defer svc.Close()
		wctx, wcancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer wcancel()
		if err := cardreader.WaitPresent(wctx, svc, "Virtual PCD 00 00", false); err != nil {
			t.Errorf("card never left the slot: %v", err)
		}
	}
	t.Cleanup(r.stopCard)
	select {
	case <-plugged:
	case err := <-done:
		t.Fatalf("plug card into vpcd: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("vpcd never took the card")
	}
}

// writeConfig writes the example config pointed at the rig's devices, with
// extra replacements of example lines.
func (r *hardwareRig) writeConfig(t *testing.T, hostAddr string, extra [][2]string) {
	t.Helper()
	example, err := os.ReadFile(filepath.Join("..", "..", "testdata", "posagent.example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := string(example)
	for _, kv := range append([][2]string{
		{"  address: sim ", "  address: \"" + hostAddr + "\" "},
		{"  card_reader: sim ", "  card_reader: pcsc "},
		{`  pcsc_reader: ""`, `  pcsc_reader: "Virtual PCD 00 00"`},
		{"  printer: sim ", "  printer: serial "},
		{"    device: \"\"             # e.g. /dev/ttyS1", "    device: \"" + r.printer.Path() + "\" # e.g. /dev/ttyS1"},
		{"state_dir: /var/lib/posagent", "state_dir: " + r.state},
	}, extra...) {
		if !strings.Contains(cfg, kv[0]) {
			t.Fatalf("example config has no %q", kv[0])
		}
		cfg = strings.Replace(cfg, kv[0], kv[1], 1)
	}
	r.config = filepath.Join(r.dir, "posagent.yaml")
	if err := os.WriteFile(r.config, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
}

// inject stores the TMK the way the key-injection step does.
func (r *hardwareRig) inject(t *testing.T) {
	t.Helper()
	if err := os.MkdirAll(r.state, 0o700); err != nil {
		t.Fatal(err)
	}
	tmk, _ := acquirer.ParseKey(rigTMK)
	ks := &acquirer.FileKeyStore{Path: filepath.Join(r.state, agent.KeyFile)}
	if err := ks.SaveKeys(acquirer.Keys{TMK: tmk}); err != nil {
		t.Fatal(err)
	}
}

func (r *hardwareRig) run(t *testing.T) (string, string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, "run", "--config", r.config)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return stdout.String(), stderr.String(), err
}

func TestRunOnRealDevices(t *testing.T) {
	r := newHardwareRig(t, "debit")
	r.inject(t)
	stdout, stderr, err := r.run(t)
	if err != nil {
		t.Fatalf("posagent run: %v\nstdout:\n%s\nstderr:\n%s", err, stdout, stderr)
	}
	if !strings.Contains(stdout, "step| live") {
		t.Errorf("never went live:\n%s", stdout)
	}
	assertNoFullPAN(t, "stdout", stdout)
	assertNoFullPAN(t, "stderr", stderr)

	// The host saw a chip sale with the card's cryptogram, then its void.
	entries, err := hostsim.ReadLedger(r.ledger)
	if err != nil {
		t.Fatal(err)
	}
	var sales, voids int
	for _, e := range entries {
		switch {
		case e.Event == hostsim.EventApproved && e.Kind == "sale":
			sales++
			if e.Card != pan.Mask(debitPAN) {
				t.Errorf("host booked card %q, want the masked debit card", e.Card)
			}
		case e.Event == hostsim.EventVoided:
			voids++
		case e.Event == hostsim.EventReversed:
			t.Errorf("unexpected reversal: %+v", e)
		}
	}
	if sales != 1 || voids != 1 {
		t.Errorf("ledger: %d sales, %d voids, want 1 and 1: %+v", sales, voids, entries)
	}

	// The test sale's slip came out of the serial printer: merchant and
	// cardholder copies, card masked.
	slips := r.printer.Slips()
	if len(slips) != 2 {
		t.Fatalf("printer got %d slips, want 2", len(slips))
	}
	for i, s := range slips {
		assertNoFullPAN(t, "slip", s)
		if !strings.Contains(s, pan.Mask(debitPAN)) {
			t.Errorf("slip %d has no masked card number:\n%s", i+1, s)
		}
	}

	// The checkpoint is live, and nothing secret is in the state dir.
	raw, err := os.ReadFile(filepath.Join(r.state, "state.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cp struct{ Step string }
	if err := json.Unmarshal(raw, &cp); err != nil || cp.Step != string(provisioning.StepLive) {
		t.Errorf("checkpoint step %q (%v), want live", cp.Step, err)
	}
	keys, err := os.ReadFile(filepath.Join(r.state, agent.KeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if !json.Valid(keys) {
		t.Errorf("key file is not JSON")
	}
	if fi, _ := os.Stat(filepath.Join(r.state, agent.KeyFile)); fi.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v, want 0600", fi.Mode().Perm())
	}
	filepath.WalkDir(r.state, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			b, _ := os.ReadFile(p)
			assertNoFullPAN(t, p, string(b))
		}
		return nil
	})
}

func TestRunWithoutInjectedTMK(t *testing.T) {
	r := newHardwareRig(t, "debit")
	stdout, stderr, err := r.run(t)
	var ee *exec.ExitError
	if err == nil || !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("run without a TMK: %v, want exit 1\n%s", err, stderr)
	}
	if !strings.Contains(stderr, "no terminal master key") || !strings.Contains(stderr, "posctl keys inject") {
		t.Errorf("stderr does not say what to do:\n%s", stderr)
	}
	if strings.Contains(stdout, "step|") {
		t.Errorf("flow started without keys:\n%s", stdout)
	}
	if entries, _ := hostsim.ReadLedger(r.ledger); len(entries) != 0 {
		t.Errorf("host booked %d entries", len(entries))
	}
}

// TestRunSwipe swipes a card on a magstripe reader behind a pty while the
// chip reader stays empty: the swipe goes through tarm/serial, the frame
// parser and the insert-or-swipe source into the flow's binding rules. A
// stripe does not say debit or credit, so binding refuses it (E_CARD_TYPE):
// settlement cards are bound by chip.
func TestRunSwipe(t *testing.T) {
	r := newHardwareRig(t, "")
	r.inject(t)
	mag, err := devsim.NewMagReader(filepath.Join(r.dir, "magstripe"), magstripe.MagTek)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mag.Close() })
	r.writeConfig(t, r.hostAddr, [][2]string{
		{"  magstripe: none ", "  magstripe: serial "},
		{"  magstripe_line:          # serial only; same keys and defaults as printer_line\n    device: \"\"",
			"  magstripe_line:\n    device: \"" + mag.Path() + "\""},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// CANCEL answers the rejection: abort, so the run ends.
	cmd := exec.CommandContext(ctx, binary, "run", "--config", r.config, "--keys", "CANCEL")
	var stdout, stderr testbench.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Swipe once the flow asks for the card (the line is open by then; a
	// swipe onto a closed line is lost, as on a real one).
	for !strings.Contains(stdout.String(), "bind-card       running") {
		if ctx.Err() != nil {
			t.Fatalf("never asked for the card:\n%s\n%s", stdout.String(), stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := mag.Swipe(devsim.Profile{PAN: debitPAN, Name: "ZHANG/SAN", Expiry: "3012", ServiceCode: "101"}); err != nil {
		t.Fatal(err)
	}
	err = cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("run: %v, want exit 1 (aborted)\n%s\n%s", err, stdout.String(), stderr.String())
	}
	out := stdout.String()
	if !strings.Contains(out, "E_CARD_TYPE") || !strings.Contains(stderr.String(), "card swiped") ||
		!strings.Contains(stderr.String(), pan.Mask(debitPAN)) {
		t.Errorf("swiped card did not reach binding:\n%s\n%s", out, stderr.String())
	}
	assertNoFullPAN(t, "stdout", out)
	assertNoFullPAN(t, "stderr", stderr.String())
	if strings.Contains(out+stderr.String(), "=3012101") {
		t.Error("track data in the output")
	}
}
