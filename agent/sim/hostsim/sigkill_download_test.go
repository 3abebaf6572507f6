package hostsim_test

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/posagent/posagent/agent/acquirer"
	"github.com/posagent/posagent/agent/sim/hostsim"
	"github.com/posagent/posagent/agent/sim/ledger"
	"github.com/posagent/posagent/provisioning"
)

// TestSIGKILLInsideEveryDownload kills the terminal process inside each
// download of the install procedure, at the moment the host has answered a
// message (booked it, for an end) and the terminal has not yet seen the
// answer: OnAnswer runs before the answer is written, and once kill(2)
// returns no thread of the process runs user code again, so the kill lands
// there every time. The closing of the test batch (settlement, batch end,
// sign-off) is killed the same way. The process restarts on the same state
// dir and key store and must go live with every list complete and verified
// in the download record, and the host must hold exactly one sale, its void
// and a balanced settlement.
func TestSIGKILLInsideEveryDownload(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	capks, err := hostsim.DefaultCAPKs()
	if err != nil {
		t.Fatal(err)
	}
	aids := hostsim.DefaultAIDs()
	if len(capks) != 4 || len(aids) < 2 {
		t.Fatalf("hostsim serves %d CA keys and %d AIDs; the kill points below assume 4 and at least 2", len(capks), len(aids))
	}
	// What the record holds right after each kill: the staged part proves
	// the download resumes from disk, the active part that nothing became
	// active before its end was acknowledged.
	type after struct{ keys, stagedKeys, apps, stagedApps int }
	none := -1 // no stage at all
	for _, tc := range []struct {
		name string
		kind string
		nth  int // the terminal dies before the nth answer of kind arrives
		// booked is the download the host's ledger shows ended before the
		// kill ("" for none).
		booked string
		want   after
	}{
		{"capk/after-2nd-key", hostsim.KindCAPKDownload, 3, "", after{0, 2, 0, none}},
		{"capk/end", hostsim.KindCAPKEnd, 1, ledger.KindCAPK, after{0, 4, 0, none}},
		{"ic-params/after-1st-aid", hostsim.KindICDownload, 2, "", after{4, none, 0, 1}},
		{"ic-params/end", hostsim.KindICEnd, 1, ledger.KindICParams, after{4, none, 0, len(aids)}},
		{"terminal-params", hostsim.KindParams, 1, ledger.KindTermParams, after{4, none, len(aids), none}},
		{"status-upload", hostsim.KindStatus, 1, "", after{4, none, len(aids), none}},
		// Closing the test batch: the host settled, closed the batch and
		// signed the terminal off, each unheard.
		{"settle", hostsim.KindSettle, 1, "", after{4, none, len(aids), none}},
		{"batch-end", hostsim.KindBatchEnd, 1, "", after{4, none, len(aids), none}},
		{"sign-off", hostsim.KindSignOff, 1, "", after{4, none, len(aids), none}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			e := &env{t: t, path: filepath.Join(dir, "ledger.jsonl")}
			var (
				mu     sync.Mutex
				proc   *os.Process
				seen   = map[string]int{}
				fired  bool
				killed = make(chan error, 1)
			)
			e.startServer(func(c *hostsim.Config) {
				c.OnAnswer = func(kind string) {
					mu.Lock()
					defer mu.Unlock()
					seen[kind]++
					if fired || kind != tc.kind || seen[kind] != tc.nth {
						return
					}
					fired = true
					if proc == nil {
						killed <- errors.New("no terminal process to kill")
						return
					}
					killed <- proc.Kill() // SIGKILL; returns at once
				}
			})
			ks := &acquirer.FileKeyStore{Path: filepath.Join(dir, "keys.json")}
			if err := ks.SaveKeys(acquirer.Keys{TMK: key(t, tmkHex)}); err != nil {
				t.Fatal(err)
			}
			start := func() *exec.Cmd {
				cmd := exec.Command(os.Args[0], "-test.run=^$")
				cmd.Env = append(os.Environ(), "HOSTSIM_TEST_TERMINAL="+e.addr, "HOSTSIM_TEST_DIR="+dir)
				cmd.Stderr = os.Stderr
				mu.Lock()
				defer mu.Unlock()
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				proc = cmd.Process
				return cmd
			}

			first := start()
			exited := make(chan error, 1)
			go func() { exited <- first.Wait() }()
			var err error
			select {
			case err = <-exited:
				// The hook kills and reports under mu: once it is free,
				// fired says whether the kill was ours.
				mu.Lock()
				ours := fired
				mu.Unlock()
				if !ours {
					t.Fatalf("the terminal ended (%v) before answer %d of %s", err, tc.nth, tc.kind)
				}
				if kerr := <-killed; kerr != nil {
					t.Fatal(kerr)
				}
			case <-time.After(time.Minute):
				_ = first.Process.Kill()
				t.Fatalf("the host never answered %s %d times", tc.kind, tc.nth)
			}
			var xe *exec.ExitError
			if !errors.As(err, &xe) || xe.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
				t.Fatalf("first terminal: %v, want killed by SIGKILL", err)
			}

			d, err := downloadStore(dir).LoadDownloads()
			if err != nil {
				t.Fatalf("download record after the kill: %v", err)
			}
			if got := recordShape(d); got != tc.want {
				t.Fatalf("download record after the kill: %+v, want %+v (-1: no stage)", got, tc.want)
			}
			if tc.booked != "" && downloadsBooked(e.ledger.Entries(), tc.booked) != 1 {
				t.Fatalf("the host did not book the %s end before the kill", tc.booked)
			}
			if m := ledger.Money(e.ledger.Entries()); tc.kind != hostsim.KindSettle && tc.kind != hostsim.KindBatchEnd &&
				tc.kind != hostsim.KindSignOff && len(m) != 0 {
				t.Fatalf("money on the host before the test sale: %+v", m)
			}

			second := start()
			// Bounded: a restarted terminal that never ends fails here, with
			// its checkpoint, instead of stalling the package.
			timer := time.AfterFunc(90*time.Second, func() { _ = second.Process.Kill() })
			err = second.Wait()
			timer.Stop()
			if err != nil {
				cp, _ := provisioning.Decode(mustRead(t, filepath.Join(dir, "state.json")))
				t.Fatalf("restarted terminal: %v; checkpoint %s, failure %+v", err, cp.Step, cp.Failure)
			}
			cp, err := provisioning.Decode(mustRead(t, filepath.Join(dir, "state.json")))
			if err != nil || cp.Step != provisioning.StepLive {
				t.Fatalf("final checkpoint %v: %v", cp.Step, err)
			}
			checkDownloads(t, dir, cp, capks, aids)
			checkOneSaleSettled(t, e.ledger.Entries(), cp)
		})
	}
}

// recordShape counts the active and staged lists of a download record.
func recordShape(d provisioning.Downloads) (s struct{ keys, stagedKeys, apps, stagedApps int }) {
	s.keys, s.apps, s.stagedKeys, s.stagedApps = len(d.CAPKs), len(d.Apps), -1, -1
	if d.StagedCAPK != nil {
		s.stagedKeys = len(d.StagedCAPK.Keys)
	}
	if d.StagedApps != nil {
		s.stagedApps = len(d.StagedApps.Apps)
	}
	return s
}

func downloadsBooked(es []ledger.Entry, kind string) int {
	n := 0
	for _, e := range es {
		if e.Event == ledger.EventDownloaded && e.Kind == kind {
			n++
		}
	}
	return n
}

// checkDownloads: the record in dir (read as the agent reads it) holds
// every CA key and AID the host serves, in its order, each key passing its
// checksum, nothing left staged, and the checkpoint counts the same.
func checkDownloads(t *testing.T, dir string, cp provisioning.Checkpoint, capks []hostsim.CAPK, aids []hostsim.AID) {
	t.Helper()
	d, err := downloadStore(dir).LoadDownloads()
	if err != nil {
		t.Fatalf("download record: %v", err)
	}
	if d.StagedCAPK != nil || d.StagedApps != nil {
		t.Errorf("a download is still staged at live: keys %v, apps %v", d.StagedCAPK != nil, d.StagedApps != nil)
	}
	if len(d.CAPKs) != len(capks) {
		t.Fatalf("%d CA keys active, the host serves %d", len(d.CAPKs), len(capks))
	}
	for i, k := range d.CAPKs {
		if !bytes.Equal(k.RID, capks[i].RID) || k.Index != capks[i].Index || !bytes.Equal(k.Modulus, capks[i].Modulus) {
			t.Errorf("CA key %d is %s, the host served %s", i, k.ID(), capks[i])
		}
		if err := k.Verify(); err != nil {
			t.Errorf("CA key %s: %v", k.ID(), err)
		}
	}
	if len(d.Apps) != len(aids) {
		t.Fatalf("%d applications active, the host serves %d", len(d.Apps), len(aids))
	}
	for i, a := range d.Apps {
		if !bytes.Equal(a.AID, aids[i].AID) {
			t.Errorf("application %d is %X, the host served %X", i, a.AID, aids[i].AID)
		}
	}
	if cp.CAPK == nil || cp.CAPK.Count != len(capks) || cp.Apps == nil || cp.Apps.Count != len(aids) {
		t.Errorf("checkpoint records downloads %+v and %+v", cp.CAPK, cp.Apps)
	}
}

// checkOneSaleSettled: the host holds exactly the checkpoint's sale and its
// void, no reversal, a balanced settlement of that batch whose upload was
// ended, and the terminal went live in the next batch.
func checkOneSaleSettled(t *testing.T, es []ledger.Entry, cp provisioning.Checkpoint) {
	t.Helper()
	m := ledger.Money(es)
	if len(m) != 2 || m[0].Event != ledger.EventApproved || m[0].Kind != ledger.KindSale ||
		m[1].Event != ledger.EventVoided || m[1].OrigSTAN != m[0].STAN {
		t.Fatalf("money on the host: %+v, want one sale and its void", m)
	}
	if cp.Sale == nil || cp.Sale.STAN != m[0].STAN || cp.Sale.Batch != m[0].Batch {
		t.Fatalf("checkpoint's sale %+v is not the host's %+v", cp.Sale, m[0])
	}
	var settled, closed []ledger.Entry
	for _, e := range es {
		switch e.Event {
		case ledger.EventSettled:
			settled = append(settled, e)
		case ledger.EventBatchClosed:
			closed = append(closed, e)
		}
	}
	// A settlement or batch end whose answer a kill swallowed is sent
	// again: the host may book it twice, the last one counts.
	if len(settled) == 0 || len(closed) == 0 {
		t.Fatalf("%d settlements and %d batch closes on the host, want at least 1 each", len(settled), len(closed))
	}
	for _, s := range []ledger.Entry{settled[len(settled)-1], closed[len(closed)-1]} {
		if s.Batch != cp.Sale.Batch || s.Settlement == nil || !s.Settlement.Balanced || s.Settlement.Sales != 1 || s.Settlement.Voids != 1 {
			t.Fatalf("%s %+v of batch %s, want balanced with the sale and the void of batch %s", s.Event, s.Settlement, s.Batch, cp.Sale.Batch)
		}
	}
	n, _ := strconv.Atoi(cp.Sale.Batch)
	if want := fmt.Sprintf("%06d", n+1); cp.Business == nil || cp.Business.Batch != want {
		t.Fatalf("business batch %+v, want %s", cp.Business, want)
	}
}
