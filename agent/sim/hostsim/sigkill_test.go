package hostsim_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/posagent/posagent/agent/acquirer"
	"github.com/posagent/posagent/agent/sim/hostsim"
	"github.com/posagent/posagent/agent/sim/ledger"
	"github.com/posagent/posagent/agent/store"
	"github.com/posagent/posagent/provisioning"
)

// TestMain lets the test binary double as the terminal process that
// TestSIGKILLBetweenSendAndReceive kills.
func TestMain(m *testing.M) {
	if addr := os.Getenv("HOSTSIM_TEST_TERMINAL"); addr != "" {
		os.Exit(terminalProcess(addr, os.Getenv("HOSTSIM_TEST_DIR")))
	}
	os.Exit(m.Run())
}

// downloadsFile is agent.DownloadsFile (not imported: the agent package
// links PC/SC and MQTT, which these tests do not need).
const downloadsFile = "downloads.json"

// downloadStore is the download record in dir, the agent's way: a
// provisioning.DownloadFile on an atomic 0600 file.
func downloadStore(dir string) provisioning.DownloadStore {
	return provisioning.DownloadFile{Store: store.File{Path: filepath.Join(dir, downloadsFile)}}
}

// terminalProcess runs the install flow with its checkpoint, keys and
// download record on disk, as the agent does, and exits 0 when the terminal
// is live.
func terminalProcess(addr, dir string) int {
	ks := &acquirer.FileKeyStore{Path: filepath.Join(dir, "keys.json")}
	// A long read timeout: the first process must still be waiting when it
	// is killed.
	c, err := acquirer.NewClient(acquirer.Config{Addr: addr, ReadTimeout: time.Minute, ExchangeTimeout: 2 * time.Minute, Log: quiet}, ks)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 3
	}
	f, err := newFlow(luhnCard(), c, store.File{Path: filepath.Join(dir, "state.json")}, &installer{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 3
	}
	f.Downloads = downloadStore(dir)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cp, err := f.Run(ctx)
	if err != nil || cp.Step != provisioning.StepLive {
		fmt.Fprintln(os.Stderr, "flow:", err, cp.Step)
		return 4
	}
	return 0
}

// TestSIGKILLBetweenSendAndReceive kills the terminal process after the host
// approved its test sale and before the answer arrived; the restarted
// process reverses that sale before anything else, then completes the
// install: the ledger ends with exactly one reversed sale and one voided one.
func TestSIGKILLBetweenSendAndReceive(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	dir := t.TempDir()
	approved := make(chan ledger.Entry, 16)
	e := &env{t: t, path: filepath.Join(dir, "ledger.jsonl")}
	e.startServer(func(c *hostsim.Config) {
		// The money: the downloads before the sale book lines too.
		c.OnLedger = func(en ledger.Entry) {
			if en.Kind == ledger.KindSale || en.Kind == ledger.KindVoid || en.Kind == ledger.KindReversal {
				approved <- en
			}
		}
	})
	e.srv.Inject(hostsim.KindSale, hostsim.Fault{Action: hostsim.NoAnswer})
	ks := &acquirer.FileKeyStore{Path: filepath.Join(dir, "keys.json")}
	if err := ks.SaveKeys(acquirer.Keys{TMK: key(t, tmkHex)}); err != nil {
		t.Fatal(err)
	}
	start := func() *exec.Cmd {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), "HOSTSIM_TEST_TERMINAL="+e.addr, "HOSTSIM_TEST_DIR="+dir)
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd
	}
	first := start()
	select {
	case en := <-approved:
		if en.Event != ledger.EventApproved {
			t.Fatalf("first money entry %+v", en)
		}
	case <-time.After(30 * time.Second):
		first.Process.Kill()
		t.Fatal("the host never approved the sale")
	}
	if err := first.Process.Kill(); err != nil { // SIGKILL on Unix
		t.Fatal(err)
	}
	_ = first.Wait()
	state := mustRead(t, filepath.Join(dir, "state.json"))
	cp, err := provisioning.Decode(state)
	if err != nil || cp.InFlight == nil || len(cp.InFlight.SealedPAN) == 0 {
		t.Fatalf("checkpoint after the kill: %v %+v", err, cp)
	}
	noPAN(t, state, luhnCard().PAN.Reveal())

	second := start()
	if err := second.Wait(); err != nil {
		t.Fatalf("restarted terminal: %v", err)
	}
	if v, r := checkLedger(t, e.path); v != 1 || r != 1 {
		t.Fatalf("voided %d reversed %d", v, r)
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
