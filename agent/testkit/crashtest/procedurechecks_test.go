package crashtest

import (
	"bytes"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/posagent/posagent/agent"
	"github.com/posagent/posagent/agent/sim/hostsim"
	"github.com/posagent/posagent/agent/sim/ledger"
	"github.com/posagent/posagent/agent/store"
	"github.com/posagent/posagent/provisioning"
)

// The acquirer's procedure around the test sale, checked at live: what the
// downloads left in the state dir and how the test batch was closed.

// served is what the campaigns' host offers (rig leaves hostsim's defaults).
type served struct {
	capks []hostsim.CAPK
	aids  []hostsim.AID
}

func hostServes(t *testing.T) served {
	t.Helper()
	capks, err := hostsim.DefaultCAPKs()
	if err != nil {
		t.Fatal(err)
	}
	return served{capks, hostsim.DefaultAIDs()}
}

// checkProcedure reads the download record from the state dir the way the
// agent does and applies procedureProblems.
func checkProcedure(t *testing.T, state string, cp provisioning.Checkpoint, entries []ledger.Entry) string {
	t.Helper()
	d, err := loadDownloads(state)
	problems, summary := procedureProblems(d, err, cp, entries, hostServes(t))
	for _, p := range problems {
		t.Error("procedure: " + p)
	}
	if len(problems) > 0 {
		return fmt.Sprintf("FAIL (%d)", len(problems))
	}
	return "ok " + summary
}

// loadDownloads reads the download record in the state dir as the agent
// does: a provisioning.DownloadFile on its atomic file, every key verified.
func loadDownloads(state string) (provisioning.Downloads, error) {
	return provisioning.DownloadFile{Store: store.File{Path: filepath.Join(state, agent.DownloadsFile)}}.LoadDownloads()
}

// procedureProblems: at live the download record (d, as loading it gave
// it, err its error) holds every CA key and AID the host serves, in its
// order, each key passing its checksum, nothing left staged, as the
// checkpoint counts; terminal parameters and the status upload are on
// record; the host settled the checkpoint's test batch balanced (the last
// settlement of that batch, since one whose answer a power cut swallowed
// is sent again) and closed it; and the terminal went live in the next
// batch, the one the host moved it to.
func procedureProblems(d provisioning.Downloads, err error, cp provisioning.Checkpoint, entries []ledger.Entry, host served) (problems []string, summary string) {
	bad := func(format string, a ...any) { problems = append(problems, fmt.Sprintf(format, a...)) }
	if err != nil {
		bad("download record: %v", err)
	}
	if d.StagedCAPK != nil || d.StagedApps != nil {
		bad("a download is still staged at live (CA keys %v, IC parameters %v)", d.StagedCAPK != nil, d.StagedApps != nil)
	}
	if len(d.CAPKs) != len(host.capks) {
		bad("%d CA keys active, the host serves %d", len(d.CAPKs), len(host.capks))
	} else {
		for i, k := range d.CAPKs {
			if h := host.capks[i]; !bytes.Equal(k.RID, h.RID) || k.Index != h.Index || !bytes.Equal(k.Modulus, h.Modulus) {
				bad("CA key %d is %s, the host serves %s", i, k.ID(), h)
			}
			if err := k.Verify(); err != nil {
				bad("CA key %s: %v", k.ID(), err)
			}
		}
	}
	if len(d.Apps) != len(host.aids) {
		bad("%d applications active, the host serves %d", len(d.Apps), len(host.aids))
	} else {
		for i, a := range d.Apps {
			if !bytes.Equal(a.AID, host.aids[i].AID) {
				bad("application %d is %X, the host serves %X", i, a.AID, host.aids[i].AID)
			}
		}
	}
	if cp.CAPK == nil || cp.CAPK.Count != len(d.CAPKs) || cp.Apps == nil || cp.Apps.Count != len(d.Apps) {
		bad("the checkpoint records downloads %+v and %+v, the record holds %d and %d", cp.CAPK, cp.Apps, len(d.CAPKs), len(d.Apps))
	}
	if cp.TermParams == nil || cp.StatusUpload == nil {
		bad("terminal parameters (%v) or status upload (%v) not on record", cp.TermParams != nil, cp.StatusUpload != nil)
	}

	if cp.Sale == nil || cp.Settlement == nil || !cp.Settlement.Done || cp.Settlement.Batch != cp.Sale.Batch {
		bad("the checkpoint's settlement %+v does not close the test sale's batch", cp.Settlement)
		return problems, ""
	}
	batch := cp.Sale.Batch
	var settled, closed []ledger.Entry
	for _, e := range entries {
		if e.Batch != batch {
			continue
		}
		switch e.Event {
		case ledger.EventSettled:
			settled = append(settled, e)
		case ledger.EventBatchClosed:
			closed = append(closed, e)
		}
	}
	switch {
	case len(settled) == 0:
		bad("the host has no settlement of batch %s", batch)
	case settled[len(settled)-1].Settlement == nil || !settled[len(settled)-1].Settlement.Balanced:
		bad("the host's last settlement of batch %s is not balanced: %+v", batch, settled[len(settled)-1].Settlement)
	}
	if len(closed) != 1 {
		bad("the host closed batch %s %d times, want once", batch, len(closed))
	}
	n, _ := strconv.Atoi(batch)
	next := fmt.Sprintf("%06d", n+1)
	if len(closed) == 1 && closed[0].NextBatch != "" && closed[0].NextBatch != next {
		bad("the host moved the terminal to batch %s after %s", closed[0].NextBatch, batch)
	}
	if cp.Business == nil || cp.Business.Batch != next {
		bad("live in batch %+v, want %s (test batch %s + 1)", cp.Business, next, batch)
	}
	return problems, fmt.Sprintf("(%d keys, %d AIDs verified; batch %s settled %d time(s), balanced, closed; live in %s)",
		len(d.CAPKs), len(d.Apps), batch, len(settled), next)
}

// lastAnswer is the kind of the last message the host answered, set from
// hostsim's OnAnswer hook (which runs before the answer is written): at a
// kill, it names the exchange the kill followed, often one the terminal
// never heard the answer of.
type lastAnswer struct {
	mu   sync.Mutex
	kind string
}

func (l *lastAnswer) set(kind string) {
	l.mu.Lock()
	l.kind = kind
	l.mu.Unlock()
}

// take returns the last kind and forgets it: the next start's kills count
// only what that start exchanged.
func (l *lastAnswer) take() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	k := l.kind
	l.kind = ""
	if k == "" {
		return "(none)"
	}
	return k
}

// formatKinds lists counts by message kind in hostsim.Kinds' order.
func formatKinds(m map[string]int) string {
	var out []string
	for _, k := range append([]string{"(none)"}, hostsim.Kinds...) {
		if m[k] > 0 {
			out = append(out, fmt.Sprintf("%s=%d", k, m[k]))
		}
	}
	return strings.Join(out, " ")
}

// TestProcedureProblems: each broken procedure invariant is reported, and
// what a crash legitimately leaves (a settlement sent twice) is not.
func TestProcedureProblems(t *testing.T) {
	host := hostServes(t)
	good := func() (provisioning.Downloads, provisioning.Checkpoint, []ledger.Entry) {
		var d provisioning.Downloads
		for _, k := range host.capks {
			d.CAPKs = append(d.CAPKs, k.Terminal())
		}
		for _, a := range host.aids {
			d.Apps = append(d.Apps, provisioning.AppParams{AID: a.AID})
		}
		sale := provisioning.TxnRecord{STAN: 3, Batch: "000001"}
		cp := provisioning.Checkpoint{Step: provisioning.StepLive, Sale: &sale,
			CAPK: &provisioning.DownloadRecord{Count: len(d.CAPKs)}, Apps: &provisioning.DownloadRecord{Count: len(d.Apps)},
			TermParams: &provisioning.TerminalParams{}, StatusUpload: &provisioning.AdminRecord{RC: "00"},
			Settlement: &provisioning.SettleRecord{Batch: "000001", Answered: true, Balanced: true, UploadEnded: true, Done: true},
			Business:   &provisioning.SignOnRecord{Batch: "000002"}}
		entries := []ledger.Entry{saleEntry(3), voidEntry(4, 3),
			{Event: ledger.EventSettled, Batch: "000001", Settlement: &ledger.Settlement{Balanced: true}},
			{Event: ledger.EventBatchClosed, Batch: "000001", NextBatch: "000002", Settlement: &ledger.Settlement{Balanced: true}}}
		return d, cp, entries
	}
	for _, tc := range []struct {
		name string
		edit func(*provisioning.Downloads, *provisioning.Checkpoint, *[]ledger.Entry) error
		want string
	}{
		{"complete", func(*provisioning.Downloads, *provisioning.Checkpoint, *[]ledger.Entry) error { return nil }, ""},
		{"settled twice, the last balanced", func(_ *provisioning.Downloads, _ *provisioning.Checkpoint, es *[]ledger.Entry) error {
			s := (*es)[2]
			*es = append([]ledger.Entry{(*es)[0], (*es)[1], s}, (*es)[2:]...)
			return nil
		}, ""},
		{"record unreadable", func(*provisioning.Downloads, *provisioning.Checkpoint, *[]ledger.Entry) error {
			return provisioning.ErrCorruptDownloads
		}, "download record"},
		{"a key missing", func(d *provisioning.Downloads, _ *provisioning.Checkpoint, _ *[]ledger.Entry) error {
			d.CAPKs = d.CAPKs[:3]
			return nil
		}, "3 CA keys active, the host serves 4"},
		{"a key's checksum fails", func(d *provisioning.Downloads, _ *provisioning.Checkpoint, _ *[]ledger.Entry) error {
			d.CAPKs[1].Checksum = make([]byte, 20)
			return nil
		}, "CA key"},
		{"an AID missing", func(d *provisioning.Downloads, _ *provisioning.Checkpoint, _ *[]ledger.Entry) error {
			d.Apps = d.Apps[1:]
			return nil
		}, "applications active"},
		{"still staged", func(d *provisioning.Downloads, _ *provisioning.Checkpoint, _ *[]ledger.Entry) error {
			d.StagedApps = &provisioning.AppStage{}
			return nil
		}, "still staged"},
		{"no status upload", func(_ *provisioning.Downloads, cp *provisioning.Checkpoint, _ *[]ledger.Entry) error {
			cp.StatusUpload = nil
			return nil
		}, "status upload"},
		{"unbalanced", func(_ *provisioning.Downloads, _ *provisioning.Checkpoint, es *[]ledger.Entry) error {
			(*es)[2].Settlement = &ledger.Settlement{}
			return nil
		}, "not balanced"},
		{"batch not closed", func(_ *provisioning.Downloads, _ *provisioning.Checkpoint, es *[]ledger.Entry) error {
			*es = (*es)[:3]
			return nil
		}, "closed batch 000001 0 times"},
		{"live in the test batch", func(_ *provisioning.Downloads, cp *provisioning.Checkpoint, _ *[]ledger.Entry) error {
			cp.Business = &provisioning.SignOnRecord{Batch: "000001"}
			return nil
		}, "want 000002"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, cp, es := good()
			err := tc.edit(&d, &cp, &es)
			problems, _ := procedureProblems(d, err, cp, es, host)
			checkProblems(t, problems, tc.want)
		})
	}
}
