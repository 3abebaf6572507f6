//go:build cgo

package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/posagent/posagent/agent"
	"github.com/posagent/posagent/agent/config/configtest"
	"github.com/posagent/posagent/agent/sim/devsim"
	"github.com/posagent/posagent/agent/sim/hostsim"
	"github.com/posagent/posagent/agent/sim/ledger"
	"github.com/posagent/posagent/agent/testkit/bench"
	"github.com/posagent/posagent/agent/testkit/rig"
	"github.com/posagent/posagent/drivers/magstripe"
	"github.com/posagent/posagent/provisioning"
	"github.com/posagent/posagent/provisioning/pan"
)

// The hardware tests run posagent on a terminal's real device stack, each
// device behind the interface the terminal reaches it through (agent/testkit/rig): a
// virtual chip card in vpcd's first slot read through pcscd and ebfe/scard,
// an ESC/POS printer emulator behind a pty opened with tarm/serial, and the
// acquirer host simulator over TCP, with the TMK injected.

// newHardwareRig builds the rig, with a card of profile in the reader ("" for
// an empty reader).
func newHardwareRig(t *testing.T, profile string) *rig.Rig {
	t.Helper()
	bench.NeedPCSC(t)
	r := rig.New(t, rig.Options{})
	if profile != "" {
		rig.PlugCard(t, profile)
	}
	return r
}

func runAgent(t *testing.T, config string, extra ...string) (string, string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, append([]string{"run", "--config", config}, extra...)...)
	quitOnTimeout(cmd)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return stdout.String(), stderr.String(), err
}

const debitPAN = rig.DebitPAN

// quitOnTimeout makes a run that outlives its context end with SIGQUIT, so
// that its stderr carries every goroutine's stack: a hang then says where
// it hung (SIGKILL follows if it does not end).
func quitOnTimeout(cmd *exec.Cmd) {
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGQUIT) }
	cmd.WaitDelay = 5 * time.Second
}

func TestRunOnRealDevices(t *testing.T) {
	bench.NeedPCSC(t)
	r := rig.New(t, rig.Options{})
	card := rig.PlugCardHook(t, "debit", nil)
	stdout, stderr, err := runAgent(t, r.Config)
	if err != nil {
		t.Fatalf("posagent run: %v\nstdout:\n%s\nstderr:\n%s", err, stdout, stderr)
	}
	if !strings.Contains(stdout, "step| live") {
		t.Errorf("never went live:\n%s", stdout)
	}
	assertNoFullPAN(t, "stdout", stdout)
	assertNoFullPAN(t, "stderr", stderr)

	// The host saw a chip sale with the card's cryptogram, then its void.
	entries, err := ledger.Read(r.Ledger)
	if err != nil {
		t.Fatal(err)
	}
	var sales, voids int
	for _, e := range entries {
		switch {
		case e.Event == ledger.EventApproved && e.Kind == "sale":
			sales++
			if e.Card != pan.Mask(debitPAN) {
				t.Errorf("host booked card %q, want the masked debit card", e.Card)
			}
		case e.Event == ledger.EventVoided:
			voids++
		case e.Event == ledger.EventReversed:
			t.Errorf("unexpected reversal: %+v", e)
		}
	}
	if sales != 1 || voids != 1 {
		t.Errorf("ledger: %d sales, %d voids, want 1 and 1: %+v", sales, voids, entries)
	}
	assertProcedure(t, entries, hostsim.TableUnionPay)

	// The card finished the sale: one first and one second GENERATE AC in
	// the whole install (the binding and the void read it without one),
	// and the TC settlement uploaded is the one the card gave.
	if first, second := card.Steps("generate_ac"), card.Steps("generate_ac2"); first != 1 || second != 1 {
		t.Errorf("the card saw %d first and %d second GENERATE ACs, want 1 and 1", first, second)
	}
	cp := readCheckpoint(t, r.State)
	if cp.Sale == nil || cp.Sale.IC == nil || cp.Sale.IC.CID != provisioning.CIDTC || cp.Sale.IC.Cryptogram == "" {
		t.Fatalf("the sale's record has no TC: %+v", cp.Sale)
	}
	tcs := r.Host.TCUploads(rig.TID)
	if len(tcs) != 1 || !strings.EqualFold(hex.EncodeToString(tcs[0].TC), cp.Sale.IC.Cryptogram) || tcs[0].CID != 0x40 || tcs[0].STAN != cp.Sale.STAN {
		t.Errorf("TC uploads %+v, want the sale's TC %s", tcs, cp.Sale.IC.Cryptogram)
	}

	// The test sale's slip came out of the serial printer, then the void's:
	// merchant and cardholder copies of each, card masked, the issuer and
	// acquirer hostsim's field 44 named.
	slips := r.Printer.Slips()
	if len(slips) != 4 {
		t.Fatalf("printer got %d slips, want 4", len(slips))
	}
	for i, s := range slips {
		assertNoFullPAN(t, "slip", s)
		if !strings.Contains(s, pan.Mask(debitPAN)) {
			t.Errorf("slip %d has no masked card number:\n%s", i+1, s)
		}
		if !strings.Contains(s, "发卡行 ISSUER:          "+hostsim.DefaultIssuer) || !strings.Contains(s, "收单行 ACQUIRER:        "+hostsim.DefaultAcquirer) {
			t.Errorf("slip %d lacks field 44's institutions:\n%s", i+1, s)
		}
		if void := strings.Contains(s, "撤销 VOID") && strings.Contains(s, "原凭证号 ORIG TRACE:"); void != (i >= 2) {
			t.Errorf("slip %d: void %v:\n%s", i+1, void, s)
		}
		// The sale's slips carry its IC lines, the card's TC among them;
		// the void, read without a cryptogram, has none.
		if ic := strings.Contains(s, "TC:") && strings.Contains(s, cp.Sale.IC.Cryptogram) && strings.Contains(s, "TVR:"); ic != (i < 2) {
			t.Errorf("slip %d: IC lines %v:\n%s", i+1, ic, s)
		}
	}

	// The checkpoint is live, and nothing secret is in the state dir.
	if cp.Step != provisioning.StepLive {
		t.Errorf("checkpoint step %q, want live", cp.Step)
	}
	// Live on the batch after the settled test batch, as the host opened it.
	if cp.Business == nil || cp.Business.Batch != "000002" {
		t.Errorf("signed on for business with %+v, want batch 000002", cp.Business)
	}
	keys, err := os.ReadFile(filepath.Join(r.State, agent.KeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if !json.Valid(keys) {
		t.Errorf("key file is not JSON")
	}
	if fi, _ := os.Stat(filepath.Join(r.State, agent.KeyFile)); fi.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v, want 0600", fi.Mode().Perm())
	}
	filepath.WalkDir(r.State, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			b, _ := os.ReadFile(p)
			assertNoFullPAN(t, p, string(b))
		}
		return nil
	})
}

func TestRunWithoutInjectedTMK(t *testing.T) {
	r := newHardwareRig(t, "debit")
	// As on a terminal fresh from the factory: no key injected yet.
	if err := os.Remove(filepath.Join(r.State, agent.KeyFile)); err != nil {
		t.Fatal(err)
	}
	stdout, stderr, err := runAgent(t, r.Config)
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
	if entries, _ := ledger.Read(r.Ledger); len(entries) != 0 {
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
	mag, err := devsim.NewMagReader(filepath.Join(r.Dir, "magstripe"), magstripe.MagTek)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mag.Close() })
	if err := configtest.WriteEdited(r.Config, r.Config, [][2]string{
		{"  magstripe: none ", "  magstripe: serial "},
		{"  magstripe_line:          # serial only; same keys and defaults as printer_line\n    device: \"\"",
			"  magstripe_line:\n    device: \"" + mag.Path() + "\""},
	}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// CANCEL answers the rejection: abort, so the run ends.
	cmd := exec.CommandContext(ctx, binary, "run", "--config", r.Config, "--keys", "CANCEL")
	quitOnTimeout(cmd)
	var stdout, stderr bench.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Swipe once the flow asks for the card (the line is open by then; a
	// swipe onto a closed line is lost, as on a real one).
	if err := stdout.WaitFor(ctx, "bind-card       running"); err != nil {
		t.Fatalf("never asked for the card:\n%s\n%s", stdout.String(), stderr.String())
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

// assertProcedure checks the host's ledger for the install procedure a real
// acquirer runs, in order: the IC key, IC parameter and terminal parameter
// downloads and the status upload after sign-on, then the test sale and its
// void, the settlement (balanced, one sale and one void in the batch) and
// the sign-off; every management line in the codes of table.
func assertProcedure(t *testing.T, entries []ledger.Entry, table hostsim.CodeTable) {
	t.Helper()
	var got []string
	for _, e := range entries {
		step := e.Event + "/" + e.Kind
		switch e.Event {
		case ledger.EventDownloaded, ledger.EventStatusUploaded, ledger.EventSettled, ledger.EventBatchClosed, ledger.EventSignedOff:
			if e.Codes != table.Name {
				t.Errorf("%s answered from code table %q, want %q", step, e.Codes, table.Name)
			}
		}
		switch {
		case e.Event == ledger.EventDownloaded && e.Kind == ledger.KindTermParams && e.Code != cmp.Or(table.ParamsEnd, table.Params):
			// The host books the download where it ends: its end message, or
			// the one exchange.
			t.Errorf("terminal parameters booked under 60.3 %s, want %s", e.Code, cmp.Or(table.ParamsEnd, table.Params))
		case e.Event == ledger.EventDownloaded && e.Kind == ledger.KindCAPK && e.Code != table.CAPKEnd:
			t.Errorf("CAPK download ended with 60.3 %s, want %s", e.Code, table.CAPKEnd)
		case e.Event == ledger.EventDownloaded && e.Kind == ledger.KindICParams && e.Code != table.ICEnd:
			t.Errorf("IC parameter download ended with 60.3 %s, want %s", e.Code, table.ICEnd)
		case e.Event == ledger.EventSettled:
			if st := e.Settlement; st == nil || !st.Balanced || st.Sales != 1 || st.Voids != 1 || st.Reversed != 0 {
				t.Errorf("settlement %+v, want balanced with 1 sale and 1 void", st)
			}
		}
		if e.Event == ledger.EventBatchClosed && (e.Batch != "000001" || e.NextBatch != "000002") {
			t.Errorf("batch upload end closed batch %q for %q, want 000001 for 000002", e.Batch, e.NextBatch)
		}
		got = append(got, step)
	}
	// The balanced batch's upload is ended all the same (207): there the
	// host closes the batch and opens the next.
	// The chip sale's TC goes up before the settlement (0320, 203).
	want := []string{"downloaded/capk", "downloaded/ic-params", "downloaded/term-params", "status-uploaded/status",
		"approved/sale", "voided/void", "answered/tc-upload", "settled/settlement", "batch-closed/batch-upload", "signed-off/sign-off"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("host ledger\n got %v\nwant %v", got, want)
	}
}

// TestRunOnRealDevicesSecondProfile: the same install against an acquirer
// whose codes differ (the public Centerm app's: terminal parameters 364),
// the terminal on its matching profile: the host's ledger shows its codes.
func TestRunOnRealDevicesSecondProfile(t *testing.T) {
	bench.NeedPCSC(t)
	r := rig.New(t, rig.Options{Codes: hostsim.TableCenterm, Profile: "centerm"})
	rig.PlugCard(t, "debit")
	stdout, stderr, err := runAgent(t, r.Config)
	if err != nil {
		t.Fatalf("posagent run: %v\nstdout:\n%s\nstderr:\n%s", err, stdout, stderr)
	}
	entries, err := ledger.Read(r.Ledger)
	if err != nil {
		t.Fatal(err)
	}
	assertProcedure(t, entries, hostsim.TableCenterm)
}

// TestRunOnRealDevicesHostDemands: a host that asks, in its answer to the
// sale, for a sign-on (3) or a CA key update (4) gets it before the void.
func TestRunOnRealDevicesHostDemands(t *testing.T) {
	for _, tc := range []struct {
		digit string
		want  string // the first message after the sale's answer
	}{{"3", hostsim.KindSignOn}, {"4", hostsim.KindCAPKQuery}} {
		t.Run(tc.digit, func(t *testing.T) {
			bench.NeedPCSC(t)
			var mu sync.Mutex
			var kinds []string
			r := rig.New(t, rig.Options{Demands: []hostsim.Demand{{On: hostsim.KindSale, Nth: 1, Digits: tc.digit}},
				OnAnswer: func(kind string) { mu.Lock(); kinds = append(kinds, kind); mu.Unlock() }})
			rig.PlugCard(t, "debit")
			stdout, stderr, err := runAgent(t, r.Config)
			if err != nil {
				t.Fatalf("posagent run: %v\nstdout:\n%s\nstderr:\n%s", err, stdout, stderr)
			}
			mu.Lock()
			defer mu.Unlock()
			sale, void := slices.Index(kinds, hostsim.KindSale), slices.Index(kinds, hostsim.KindVoid)
			if sale < 0 || void < sale+2 || kinds[sale+1] != tc.want {
				t.Errorf("answered %v: want %s between the sale and its void", kinds, tc.want)
			}
			entries, err := ledger.Read(r.Ledger)
			if err != nil {
				t.Fatal(err)
			}
			if m := ledger.Money(entries); len(m) != 2 || m[0].Event != ledger.EventApproved || m[1].Event != ledger.EventVoided {
				t.Errorf("money %+v, want the sale and its void", m)
			}
		})
	}
}

// readCheckpoint reads the state dir's checkpoint.
func readCheckpoint(t *testing.T, state string) provisioning.Checkpoint {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(state, "state.json"))
	if err != nil {
		t.Fatal(err)
	}
	cp, err := provisioning.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	return cp
}

// runAgentKeys is runAgent with the simulated keypad's script.
func runAgentKeys(t *testing.T, config, keys string) (string, string, int) {
	t.Helper()
	stdout, stderr, err := runAgent(t, config, "--keys", keys)
	var ee *exec.ExitError
	switch {
	case err == nil:
		return stdout, stderr, 0
	case errors.As(err, &ee):
		return stdout, stderr, ee.ExitCode()
	}
	t.Fatalf("posagent run: %v\n%s", err, stderr)
	return "", "", 0
}

// TestRunChipCardRefusesTheApproval: a card that does not accept the host's
// approval — its own risk management declines at the second GENERATE AC,
// the host's ARPC does not verify, or the card is pulled out before it
// answers — leaves the approved sale to be reversed with reason 06, and
// the screen says which. The installer's retry (with the good card)
// reverses it before selling again; the host's ledger ends with nothing
// charged but the voided sale.
func TestRunChipCardRefusesTheApproval(t *testing.T) {
	for _, tc := range []struct {
		name, profile, code string
		faults              map[string]hostsim.Fault
	}{
		{"decline-after-approval", "completion/decline-after-approval", "E_CARD_DECLINED", nil},
		{"bad-arpc", "debit", "E_CARD_DECLINED", map[string]hostsim.Fault{hostsim.KindSale: {Action: hostsim.BadARPC}}},
		{"removed", "completion/removed-at-second-ac", "E_CARD_REMOVED", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bench.NeedPCSC(t)
			r := rig.New(t, rig.Options{Faults: tc.faults})
			card, remove := rig.InsertCardSim(t, tc.profile)
			stdout, stderr, code := runAgentKeys(t, r.Config, "ENTER")
			if code != 1 || !strings.Contains(stdout, "test-sale "+tc.code) {
				t.Fatalf("first run: exit %d, want 1 with %s on screen\nstdout:\n%s\nstderr:\n%s", code, tc.code, stdout, stderr)
			}
			if first, second := card.Steps("generate_ac"), card.Steps("generate_ac2"); first != 1 || second != 1 {
				t.Errorf("the card saw %d first and %d second GENERATE ACs, want 1 and 1", first, second)
			}
			cp := readCheckpoint(t, r.State)
			if cp.InFlight == nil || cp.InFlight.Reason != "06" || cp.Sale != nil {
				t.Fatalf("after the card refused: in flight %+v, sale %+v", cp.InFlight, cp.Sale)
			}
			remove()

			rig.PlugCard(t, "debit")
			stdout, stderr, code = runAgentKeys(t, r.Config, "ENTER")
			if code != 0 || !strings.Contains(stdout, "step| live") {
				t.Fatalf("retry: exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
			}
			entries, err := ledger.Read(r.Ledger)
			if err != nil {
				t.Fatal(err)
			}
			m := ledger.Money(entries)
			if len(m) != 4 || m[0].Event != ledger.EventApproved || m[1].Event != ledger.EventReversed || m[1].STAN != m[0].STAN ||
				m[1].Reason != "06" || m[2].Event != ledger.EventApproved || m[3].Event != ledger.EventVoided {
				t.Errorf("money %+v, want the refused sale reversed (06), then a sale and its void", m)
			}
			assertNoFullPAN(t, "stdout", stdout)
		})
	}
}

// TestRunOnlinePIN: a debit card whose CVM is online PIN asks for it on the
// installer's keypad (the menu driven by a key script); the host verifies
// it against the cardholder's; nothing the run leaves behind holds the PIN
// or its block.
func TestRunOnlinePIN(t *testing.T) {
	bench.NeedPCSC(t)
	// Twelve digits (the most a PIN has): a shorter one could turn up by
	// chance in a log's hex or time stamps.
	const pin = "409172635814"
	r := rig.New(t, rig.Options{MQTT: true, PINs: map[string]string{debitPAN: pin}})
	rig.PlugCard(t, "completion/online-pin")
	script := filepath.Join(r.Dir, "pin.keys")
	keys := "F1\n2 4 6 8 OK\n1\nOK OK OK\nOK\n" + strings.Join(strings.Split(pin, ""), " ") + " OK\n"
	if err := os.WriteFile(script, []byte(keys), 0o600); err != nil {
		t.Fatal(err)
	}
	stdout, stderr, err := runAgent(t, r.Config, "--keys-file", script)
	if err != nil || !strings.Contains(stdout, "step| live") {
		t.Fatalf("posagent run: %v\nstdout:\n%s\nstderr:\n%s", err, stdout, stderr)
	}
	if !strings.Contains(stdout, "ENTER PIN") || !strings.Contains(stdout, "****") {
		t.Errorf("no PIN entry screen with a masked echo:\n%s", stdout)
	}
	cp := readCheckpoint(t, r.State)
	if cp.Sale == nil || !cp.Sale.PIN || cp.Sale.IC == nil || cp.Sale.IC.CVM != "020000" {
		t.Errorf("sale record %+v: want an online PIN", cp.Sale)
	}
	entries, err := ledger.Read(r.Ledger)
	if err != nil {
		t.Fatal(err)
	}
	if m := ledger.Money(entries); len(m) != 2 || m[0].Event != ledger.EventApproved || m[1].Event != ledger.EventVoided {
		t.Errorf("money %+v, want the sale (its PIN verified) and its void", m)
	}
	// Neither the PIN nor its clear block is anywhere the run wrote.
	block, err := provisioning.FormatPINBlock(pin, pan.MustParse(debitPAN))
	if err != nil {
		t.Fatal(err)
	}
	forms := []string{hex.EncodeToString(block), strings.ToUpper(hex.EncodeToString(block)), string(block)}
	check := func(where, text string) {
		t.Helper()
		for _, f := range forms {
			if strings.Contains(text, f) {
				t.Errorf("%s holds the PIN block", where)
			}
		}
		if strings.Contains(text, pin) {
			t.Errorf("%s holds the PIN", where)
		}
	}
	check("stdout", stdout)
	check("stderr", stderr)
	// Every MQTT payload central received (the monitor's log is under
	// Logs); the monitor saw the install through to live.
	sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer scancel()
	if err := r.Monitor.Sync(sctx); err != nil {
		t.Fatal(err)
	}
	var payloads strings.Builder
	for _, m := range r.Monitor.Messages() {
		payloads.WriteString(m.Payload)
	}
	if !strings.Contains(payloads.String(), `"state":"live"`) {
		t.Errorf("the monitor never saw the terminal live")
	}
	check("MQTT payloads", payloads.String())
	for _, dir := range []string{r.State, r.Logs, filepath.Join(r.Dir, "slips")} {
		filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				b, _ := os.ReadFile(p)
				check(p, string(b))
			}
			return nil
		})
	}
}

// TestRunChipBatchUpload: a host that counts the voided sale net against
// the terminal's gross totals answers the settlement unbalanced; the batch
// upload then carries the chip sale as its TC (0320/205, the format
// agent/acquirer's goldens pin) after the TC upload before settlement
// (203), the host matches both records, and the batch closes.
func TestRunChipBatchUpload(t *testing.T) {
	bench.NeedPCSC(t)
	r := rig.New(t, rig.Options{Netting: hostsim.NettingNet})
	rig.PlugCard(t, "debit")
	stdout, stderr, err := runAgent(t, r.Config)
	if err != nil || !strings.Contains(stdout, "step| live") {
		t.Fatalf("posagent run: %v\nstdout:\n%s\nstderr:\n%s", err, stdout, stderr)
	}
	cp := readCheckpoint(t, r.State)
	if cp.Settlement == nil || cp.Settlement.Balanced || cp.Settlement.Uploaded != 2 || !cp.Settlement.TCUploaded {
		t.Fatalf("settlement %+v, want unbalanced with both records uploaded after the TC", cp.Settlement)
	}
	tcs := r.Host.TCUploads(rig.TID)
	var codes []string
	for _, tc := range tcs {
		if !strings.EqualFold(hex.EncodeToString(tc.TC), cp.Sale.IC.Cryptogram) || tc.STAN != cp.Sale.STAN {
			t.Errorf("TC record %+v is not the sale's TC %s", tc, cp.Sale.IC.Cryptogram)
		}
		codes = append(codes, tc.Code)
	}
	// The 205 record carries the same TC, which the host takes once.
	if strings.Join(codes, " ") != "203" {
		t.Errorf("TCs taken with codes %v, want the 203 upload's", codes)
	}
	entries, err := ledger.Read(r.Ledger)
	if err != nil {
		t.Fatal(err)
	}
	var closed *ledger.Entry
	for i, e := range entries {
		if e.Event == ledger.EventBatchClosed {
			closed = &entries[i]
		}
	}
	if closed == nil || closed.Settlement == nil || closed.Settlement.Balanced || closed.Settlement.Uploaded != 2 || closed.Settlement.Unmatched != 0 {
		t.Errorf("batch closed %+v", closed)
	}
}

// TestRunOfflineDataAuthentication reads ODA cards (certificates cardsim
// made from the test CA whose keys hostsim downloads) through pcscd: a DDA
// card's sale carries TVR byte 1 all clear and TSI "offline data
// authentication performed"; a card with a bad ICC certificate carries
// "DDA failed", which hostsim's action codes send online (TAC-Online) and
// another acquirer's deny (TAC-Denial: the card is asked for an AAC and
// nothing goes to the host); a card without ODA carries "not performed".
func TestRunOfflineDataAuthentication(t *testing.T) {
	denyDDA := hostsim.DefaultAIDs()
	for i := range denyDDA {
		denyDDA[i].TACDenial = []byte{0x08, 0, 0, 0, 0}
	}
	for _, tc := range []struct {
		name, profile string
		aids          []hostsim.AID
		tvr1          string // TVR byte 1 of the sale
		live          bool
	}{
		{"dda", "oda/dda", nil, "00", true},
		{"sda", "oda/sda", nil, "02", true},
		{"cda", "oda/cda", nil, "00", true},
		{"bad-icc-cert online", "oda/bad-icc-cert", nil, "08", true},
		{"expired-issuer-cert", "oda/expired-issuer-cert", nil, "08", true},
		{"wrong-capk-index", "oda/wrong-capk-index", nil, "08", true},
		{"dda-bad-signature", "oda/dda-bad-signature", nil, "08", true},
		{"revoked-issuer-cert", "oda/revoked-issuer-cert", nil, "08", true},
		{"revoked-issuer-cert, no list", "oda/revoked-issuer-cert", nil, "00", true},
		{"bad-icc-cert denied", "oda/bad-icc-cert", denyDDA, "", false},
		{"no ODA", "debit", nil, "80", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bench.NeedPCSC(t)
			r := rig.New(t, rig.Options{AIDs: tc.aids})
			if !strings.HasSuffix(tc.name, "no list") {
				// The acquirer's revocation list: the test CA's.
				list := filepath.Join(rig.Root(t), "agent", "sim", "testca", "revoked.yaml")
				if err := configtest.WriteEdited(r.Config, r.Config, [][2]string{
					{`  ca_revocation_file: ""`, `  ca_revocation_file: "` + list + `"`}}); err != nil {
					t.Fatal(err)
				}
			}
			card := rig.PlugCardHook(t, tc.profile, nil)
			stdout, stderr, code := runAgentKeys(t, r.Config, "ENTER")
			if live := code == 0 && strings.Contains(stdout, "step| live"); live != tc.live {
				t.Fatalf("exit %d, live %v, want %v\nstdout:\n%s\nstderr:\n%s", code, live, tc.live, stdout, stderr)
			}
			entries, err := ledger.Read(r.Ledger)
			if err != nil {
				t.Fatal(err)
			}
			if !tc.live {
				if !strings.Contains(stdout, "error=E_CARD_DECLINED_OFFLINE") {
					t.Errorf("no offline decline on screen:\n%s", stdout)
				}
				if m := ledger.Money(entries); len(m) != 0 {
					t.Errorf("money %+v: the declined sale reached the host", m)
				}
				if first := card.Steps("generate_ac"); first != 1 {
					t.Errorf("%d first GENERATE ACs, want the one answered AAC", first)
				}
				return
			}
			cp := readCheckpoint(t, r.State)
			ic := cp.Sale.IC
			if ic == nil || !strings.HasPrefix(ic.TVR, tc.tvr1) {
				t.Fatalf("sale IC %+v: want TVR byte 1 %s", ic, tc.tvr1)
			}
			odaDone := tc.tvr1 != "80"
			if tsi, _ := hex.DecodeString(ic.TSI); len(tsi) != 2 || (tsi[0]&0x80 != 0) != odaDone {
				t.Errorf("TSI %s: ODA performed %v", ic.TSI, odaDone)
			}
			// INTERNAL AUTHENTICATE comes once the DDA card's keys were
			// recovered, never for SDA, CDA (signed in GENERATE AC) or a
			// chain that failed before the ICC key.
			internalAuth := map[string]bool{"dda": true, "dda-bad-signature": true, "revoked-issuer-cert, no list": true}[tc.name]
			if n := card.Steps("internal_authenticate"); (n == 1) != internalAuth {
				t.Errorf("INTERNAL AUTHENTICATE sent %d times", n)
			}
		})
	}
}

// TestRunTappedQPBOC: a qPBOC card tapped on the contactless reader (vpcd's
// second slot, named in devices.pcsc_contactless_reader) is bound, sold to
// with the cryptogram of its GPO answer — no GENERATE AC in the card's log —
// and the sale goes with entry mode 07x and 60.4 = 6; the host verifies the
// cryptogram and the install goes live.
func TestRunTappedQPBOC(t *testing.T) {
	bench.NeedPCSC(t)
	var mu sync.Mutex
	var f22, f60 []string
	r := rig.New(t, rig.Options{OnRequest: func(kind string, field func(int) string) {
		if kind == hostsim.KindSale {
			mu.Lock()
			f22, f60 = append(f22, field(22)), append(f60, field(60))
			mu.Unlock()
		}
	}})
	if err := configtest.WriteEdited(r.Config, r.Config, [][2]string{
		{`  pcsc_reader: "` + rig.Reader + `"`, `  pcsc_reader: ""`},
		{`  pcsc_contactless_reader: ""`, `  pcsc_contactless_reader: "` + rig.ContactlessReader + `"`},
	}); err != nil {
		t.Fatal(err)
	}
	card := rig.TapCard(t, "oda/qpboc")
	stdout, stderr, err := runAgent(t, r.Config)
	if err != nil || !strings.Contains(stdout, "step| live") {
		t.Fatalf("posagent run: %v\nstdout:\n%s\nstderr:\n%s", err, stdout, stderr)
	}
	if n := card.Steps("generate_ac") + card.Steps("generate_ac2"); n != 0 {
		t.Errorf("the qPBOC card was sent %d GENERATE ACs", n)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(f22) != 1 || !strings.HasPrefix(f22[0], "07") || len(f60[0]) < 12 || f60[0][11] != '6' {
		t.Errorf("sale fields 22 %v, 60 %v: want 07x and 60.4 = 6", f22, f60)
	}
	cp := readCheckpoint(t, r.State)
	if cp.Sale == nil || cp.Sale.Entry != provisioning.EntryContactless || cp.Sale.IC == nil || cp.Sale.IC.CID != provisioning.CIDARQC {
		t.Errorf("sale record %+v", cp.Sale)
	}
}
