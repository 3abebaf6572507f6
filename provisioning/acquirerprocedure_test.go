package provisioning_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/posagent/posagent/provisioning"
)

// downloads decodes the rig's download record, every key verified.
func (r *rig) downloadRecord(t *testing.T) provisioning.Downloads {
	t.Helper()
	d, err := provisioning.DownloadFile{Store: r.downloads}.LoadDownloads()
	if err != nil {
		t.Fatalf("download record: %v", err)
	}
	return d
}

// checkActive fails unless the active lists are the fake host's, whole.
func checkActive(t *testing.T, d provisioning.Downloads) {
	t.Helper()
	if len(d.CAPKs) != len(testCAPKs()) || len(d.Apps) != len(testApps()) || d.StagedCAPK != nil || d.StagedApps != nil {
		t.Fatalf("active %d keys %d apps, staged %v %v; want %d and %d, nothing staged",
			len(d.CAPKs), len(d.Apps), d.StagedCAPK != nil, d.StagedApps != nil, len(testCAPKs()), len(testApps()))
	}
	for i, k := range d.CAPKs {
		if err := k.Verify(); err != nil || k.ID().String() != testCAPKs()[i].ID().String() {
			t.Fatalf("key %d: %s %v", i, k.ID(), err)
		}
	}
}

// The whole procedure, in the order of a real terminal: the downloads
// after sign-on, the sale and its void, then the batch closed (balanced,
// counted gross; the upload's end sent all the same) and the sign-on for business with the next
// batch; the downloaded terminal parameters are what the slip and the
// links use.
func TestProcedureInOrder(t *testing.T) {
	r := newRig()
	cp, err := r.flow().Run(context.Background())
	if err != nil || cp.Step != provisioning.StepLive {
		t.Fatalf("Run = %v at %s", err, cp.Step)
	}
	want := []string{"capk-list", "capk-list", "capk", "capk", "capk", "capk-end", "app-list", "app", "app", "app-end",
		"terminal-params", "status-upload", "settlement", "batch-end", "sign-off"}
	if !slices.Equal(r.host.proc.msgs, want) {
		t.Fatalf("procedure messages %v, want %v", r.host.proc.msgs, want)
	}
	checkActive(t, r.downloadRecord(t))
	if cp.CAPK == nil || cp.CAPK.Count != 3 || cp.Apps == nil || cp.Apps.Count != 2 {
		t.Errorf("download records %+v %+v", cp.CAPK, cp.Apps)
	}
	if got := r.host.proc.signOnBatches; !slices.Equal(got, []string{"", "000002"}) {
		t.Errorf("sign-on batches (60.2) %q, want none, then the one after the settled batch", got)
	}
	st := cp.Settlement
	if st == nil || !st.Done || !st.Balanced || st.Batch != "000001" || st.NextBatch != "000002" || st.Uploaded != 0 {
		t.Fatalf("settlement %+v", st)
	}
	gross := provisioning.Totals{DebitCount: 1, DebitAmount: 1, CreditCount: 1, CreditAmount: 1}
	if s := r.host.proc.settles[0]; s.Domestic != gross || s.Foreign != (provisioning.Totals{}) || s.Batch != "000001" {
		t.Errorf("settled %+v, want the sale a debit and its void a credit", s)
	}
	// A balanced batch uploads nothing and still ends the upload (207).
	if len(r.host.proc.uploads) != 0 || len(r.host.proc.ends) != 1 || !r.host.proc.ends[0].Balanced || r.host.proc.ends[0].Count != 0 {
		t.Errorf("a balanced batch: %d uploads, ends %+v", len(r.host.proc.uploads), r.host.proc.ends)
	}
	if cp.Business == nil || cp.Business.Batch != "000002" || cp.SignOn.Batch != "000002" {
		t.Errorf("business sign-on %+v, current %+v", cp.Business, cp.SignOn)
	}
	if name := r.printer.receipts[0].Merchant.Name; name != "银联测试商户" {
		t.Errorf("slip's merchant name %q, want the downloaded one", name)
	}
	if d := r.host.proc.saleDeadline; d <= 0 || d > 30*time.Second {
		t.Errorf("sale ran with %v left, want the downloaded 30 s timeout", d)
	}
	if up := r.host.proc.statusUploads; len(up) != 1 || up[0].Params.MerchantName != "银联测试商户" || up[0].Params.MaxReversals != 3 {
		t.Errorf("status upload %+v", up)
	}
	last := r.reporter.statuses[len(r.reporter.statuses)-1]
	if last.CAPK == nil || last.Settlement == nil || last.Business == nil {
		t.Errorf("the live report lacks the procedure: %+v", last)
	}
}

// A power cut inside each message of the procedure, after the host booked
// it and before its answer arrived, then a restart: the install ends live
// with one sale, voided, complete verified lists, and the downloads never
// activated before their end was acknowledged.
func TestResumeInsideEveryProcedureMessage(t *testing.T) {
	for _, tc := range []struct {
		kind string
		n    int
		// unbalanced makes the host disagree, for the batch upload's cuts.
		unbalanced bool
	}{
		{"capk-list", 2, false}, {"capk", 1, false}, {"capk", 2, false}, {"capk", 3, false}, {"capk-end", 1, false},
		{"app-list", 1, false}, {"app", 2, false}, {"app-end", 1, false},
		{"terminal-params", 1, false}, {"status-upload", 1, false},
		{"settlement", 1, false}, {"settlement", 1, true}, {"batch-upload", 1, true}, {"batch-upload", 2, true}, {"batch-end", 1, true},
		{"sign-off", 1, false}, {"sign-on", 2, false},
	} {
		t.Run(fmt.Sprintf("%s-%d-unbalanced=%v", tc.kind, tc.n, tc.unbalanced), func(t *testing.T) {
			r := newRig()
			r.host.proc.unbalanced = tc.unbalanced
			ctx, cancel := context.WithCancel(context.Background())
			r.host.proc.cutAt, r.host.proc.cutN, r.host.proc.cut = tc.kind, tc.n, cancel
			cp, err := r.flow().Run(ctx)
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("first run = %v at %s", err, cp.Step)
			}
			// What the power cut left: a download not acknowledged is not
			// active, and the checkpoint does not record it.
			d := r.downloadRecord(t)
			switch tc.kind {
			case "capk-list", "capk", "capk-end":
				if len(d.CAPKs) != 0 || cp.CAPK != nil || d.StagedCAPK == nil {
					t.Fatalf("cut inside the key download: %d keys active, record %+v, staged %v", len(d.CAPKs), cp.CAPK, d.StagedCAPK != nil)
				}
				if want := min(tc.n-1, 3); tc.kind == "capk" && len(d.StagedCAPK.Keys) != want {
					t.Fatalf("%d keys staged, want %d", len(d.StagedCAPK.Keys), want)
				}
			case "app-list", "app", "app-end":
				if len(d.Apps) != 0 || cp.Apps != nil || d.StagedApps == nil {
					t.Fatalf("cut inside the IC parameter download: %d active, record %+v", len(d.Apps), cp.Apps)
				}
			}
			r.host.proc.cutAt = ""
			cp, err = r.flow().Run(context.Background())
			if err != nil || cp.Step != provisioning.StepLive {
				t.Fatalf("after the restart: %v at %s (failure %+v)", err, cp.Step, cp.Failure)
			}
			checkActive(t, r.downloadRecord(t))
			if len(r.host.fullPANs) != 1 || r.host.count("voided") != 1 || r.host.count("approved") != 0 {
				t.Errorf("host: %d sales, %v", len(r.host.fullPANs), r.host.sales)
			}
			if tc.unbalanced {
				ends := r.host.proc.ends
				if len(ends) == 0 || ends[len(ends)-1].Count != 2 || ends[len(ends)-1].Balanced {
					t.Errorf("batch upload ends %+v", ends)
				}
			}
			if cp.Business == nil || cp.Business.Batch != "000002" {
				t.Errorf("business sign-on %+v", cp.Business)
			}
		})
	}
}

// A host that nets a voided sale out balances when the terminal is told so,
// and is unbalanced (then uploaded to) when the terminal counts gross.
func TestSettlementNetting(t *testing.T) {
	for _, tc := range []struct {
		host, terminal provisioning.Netting
		balanced       bool
	}{{provisioning.NettingNet, provisioning.NettingNet, true}, {provisioning.NettingNet, "", false}, {"", provisioning.NettingNet, false}} {
		r := newRig()
		r.host.proc.netting = tc.host
		f := r.flow()
		f.Netting = tc.terminal
		cp, err := f.Run(context.Background())
		if err != nil || cp.Step != provisioning.StepLive {
			t.Fatalf("%v at %s", err, cp.Step)
		}
		if cp.Settlement.Balanced != tc.balanced || (len(r.host.proc.uploads) == 0) != tc.balanced {
			t.Errorf("host %q terminal %q: settlement %+v, %d uploads", tc.host, tc.terminal, cp.Settlement, len(r.host.proc.uploads))
		}
	}
}

// A host that acknowledged the key download's end, but whose answer never
// arrived, leaves the new list staged: the retry sends the end again and
// only then is the list used. Every key was fetched once.
func TestKeyDownloadEndLostIsSentAgain(t *testing.T) {
	r := newRig()
	r.host.proc.cutAt, r.host.proc.cutN, r.host.proc.lose = "capk-end", 1, true
	r.ui.answers = []string{"abort"}
	cp, err := r.flow().Run(context.Background())
	if !errors.Is(err, provisioning.ErrAborted) || cp.Failure == nil || cp.Failure.Code != "E_ADMIN_HOST" || cp.Failure.Step != provisioning.StepCAPK {
		t.Fatalf("Run = %v, failure %+v", err, cp.Failure)
	}
	if d := r.downloadRecord(t); d.ChipReady() || len(d.CAPKs) != 0 || len(d.StagedCAPK.Keys) != 3 {
		t.Fatalf("after the lost end: %d active, %d staged", len(d.CAPKs), len(d.StagedCAPK.Keys))
	}
	r.ui.answers = []string{"retry", "confirm"}
	if cp, err = r.flow().Run(context.Background()); err != nil || cp.Step != provisioning.StepLive {
		t.Fatalf("after retry: %v at %s", err, cp.Step)
	}
	if n, e := r.host.msgCount("capk"), r.host.msgCount("capk-end"); n != 3 || e != 2 {
		t.Errorf("%d keys fetched, %d ends; want 3 and 2", n, e)
	}
	checkActive(t, r.downloadRecord(t))
}

// A key whose checksum does not match is not staged; the retry fetches it
// again, and the keys before it stay staged.
func TestBadKeyChecksumIsNotStaged(t *testing.T) {
	r := newRig()
	r.host.proc.badKey, r.host.proc.badKeyTimes = 1, 1
	r.ui.answers = []string{"abort"}
	cp, _ := r.flow().Run(context.Background())
	if cp.Failure == nil || cp.Failure.Code != "E_CAPK_CHECKSUM" || !strings.Contains(cp.Failure.Message, "A000000333/03") {
		t.Fatalf("failure %+v", cp.Failure)
	}
	if d := r.downloadRecord(t); len(d.StagedCAPK.Keys) != 1 || len(d.CAPKs) != 0 {
		t.Fatalf("staged %d, active %d; want the good key staged, none active", len(d.StagedCAPK.Keys), len(d.CAPKs))
	}
	r.ui.answers = []string{"retry", "confirm"}
	if cp, err := r.flow().Run(context.Background()); err != nil || cp.Step != provisioning.StepLive {
		t.Fatalf("after retry: %v at %s", err, cp.Step)
	}
	if n := r.host.msgCount("capk"); n != 4 {
		t.Errorf("%d key fetches, want 4 (the bad one twice)", n)
	}
	checkActive(t, r.downloadRecord(t))
}

// The download record refuses, on save and on load, a key whose checksum
// fails.
func TestDownloadRecordVerifiesKeys(t *testing.T) {
	bad := testCAPKs()
	bad[2].Modulus = append([]byte{}, bad[2].Modulus...)
	bad[2].Modulus[10] ^= 1
	if _, err := provisioning.EncodeDownloads(provisioning.Downloads{CAPKs: bad}); !errors.Is(err, provisioning.ErrCAPKChecksum) {
		t.Errorf("encoding a damaged key: %v", err)
	}
	if _, err := provisioning.EncodeDownloads(provisioning.Downloads{StagedCAPK: &provisioning.CAPKStage{Keys: bad}}); !errors.Is(err, provisioning.ErrCAPKChecksum) {
		t.Errorf("encoding a damaged staged key: %v", err)
	}
	b, err := provisioning.EncodeDownloads(provisioning.Downloads{CAPKs: testCAPKs(), Apps: testApps()})
	if err != nil {
		t.Fatal(err)
	}
	d, err := provisioning.DecodeDownloads(b)
	if err != nil || !d.ChipReady() {
		t.Fatalf("round trip: %v %+v", err, d)
	}
	// Damage at rest: one modulus byte in the file.
	var raw map[string]any
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	d.CAPKs[1].Modulus[5] ^= 0x40
	damaged, _ := json.Marshal(d)
	for name, data := range map[string][]byte{"damaged key": damaged, "empty": nil, "garbage": []byte("{"), "schema": []byte(`{"schema":7}`)} {
		if _, err := provisioning.DecodeDownloads(data); !errors.Is(err, provisioning.ErrCorruptDownloads) {
			t.Errorf("%s: %v, want ErrCorruptDownloads", name, err)
		}
	}
	if _, err := provisioning.DecodeDownloads(damaged); !errors.Is(err, provisioning.ErrCAPKChecksum) {
		t.Errorf("damaged key: %v, want the checksum named", err)
	}
}

// A chip sale is refused while the lists are missing or damaged; the
// retry downloads them again, and the sale goes out once.
func TestChipSaleRefusedWithoutLists(t *testing.T) {
	r := newRig()
	r.reporter.onReport = func(s provisioning.Status) {
		if s.Step == provisioning.StepTestSale && s.State == provisioning.StateRunning && r.downloads.Saves > 0 {
			// The record is damaged at rest before the sale reads it.
			b := r.downloads.Bytes()
			i := bytes.Index(b, []byte(`"modulus": "`)) + len(`"modulus": "`) + 4
			b[i] ^= 0x01
			r.downloads.Data = b
			r.reporter.onReport = nil
		}
	}
	r.ui.answers = []string{"confirm", "abort"}
	cp, err := r.flow().Run(context.Background())
	if !errors.Is(err, provisioning.ErrAborted) || cp.Failure == nil || cp.Failure.Code != "E_NO_CAPK" {
		t.Fatalf("Run = %v, failure %+v", err, cp.Failure)
	}
	if len(r.host.fullPANs) != 0 || cp.InFlight != nil {
		t.Fatal("a chip sale went out without verified lists")
	}
	if !strings.Contains(cp.Failure.Message, "请先下载CAPK参数") {
		t.Errorf("message %q", cp.Failure.Message)
	}
	lists := r.host.msgCount("capk-end")
	r.ui.answers = []string{"retry"}
	if cp, err = r.flow().Run(context.Background()); err != nil || cp.Step != provisioning.StepLive {
		t.Fatalf("after retry: %v at %s", err, cp.Step)
	}
	if r.host.msgCount("capk-end") != lists+1 || r.host.msgCount("app-end") != 2 || len(r.host.fullPANs) != 1 {
		t.Errorf("downloads %d/%d, sales %d", r.host.msgCount("capk-end"), r.host.msgCount("app-end"), len(r.host.fullPANs))
	}
	checkActive(t, r.downloadRecord(t))
}

// sentKinds is the order of the host's messages, procedure ones by their
// kind.
func (h *fakeHost) sentKinds() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, m := range h.sent {
		out = append(out, m.kind)
	}
	return out
}

// after is what follows the first kind in order.
func after(order []string, kind string) []string {
	i := slices.Index(order, kind)
	if i < 0 {
		return nil
	}
	return order[i+1:]
}

// A host that asks, in the sale's answer, for a new sign-on or a CA key
// download gets it before the void, after the slip; also across a power
// cut right after the sale was recorded.
func TestDemandInSaleAnswerRunsBeforeTheVoid(t *testing.T) {
	for _, tc := range []struct {
		demand provisioning.Demand
		first  string // the demanded work's first message
		step   provisioning.Step
	}{
		{provisioning.DemandSignOn, "sign-on", provisioning.StepSignOn},
		{provisioning.DemandCAPK, "capk-list", provisioning.StepCAPK},
		{provisioning.DemandICParameters, "app-list", provisioning.StepICParams},
		{provisioning.DemandParameters, "terminal-params", provisioning.StepTerminalParams},
		{provisioning.DemandStatusUpload, "status-upload", provisioning.StepStatusUpload},
	} {
		for _, cut := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/power-cut=%v", tc.demand, cut), func(t *testing.T) {
				r := newRig()
				r.host.demandNext("sale", tc.demand)
				f := r.flow()
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				if cut {
					f.Store = &cutStore{Store: r.store, power: cancel,
						cut: func(cp provisioning.Checkpoint) bool { return cp.Sale != nil }}
				}
				var entered []provisioning.Step
				f.OnEnter = func(_ context.Context, s provisioning.Step) { entered = append(entered, s) }
				cp, err := f.Run(ctx)
				if cut {
					if !errors.Is(err, context.Canceled) {
						t.Fatalf("first run = %v", err)
					}
					saved, _ := provisioning.Decode(r.store.Bytes())
					if len(saved.Demands) != 1 || saved.Demands[0].State != provisioning.DemandPending {
						t.Fatalf("the sale's checkpoint holds demands %+v, want it pending", saved.Demands)
					}
					g := r.flow()
					g.OnEnter = f.OnEnter
					cp, err = g.Run(context.Background())
				}
				if err != nil || cp.Step != provisioning.StepLive {
					t.Fatalf("%v at %s", err, cp.Step)
				}
				rest := after(r.host.sentKinds(), "sale")
				if i, v := slices.Index(rest, tc.first), slices.Index(rest, "void"); i < 0 || v < 0 || i > v {
					t.Fatalf("after the sale the host saw %v: want %s before the void", rest, tc.first)
				}
				if rest := entered[slices.Index(entered, provisioning.StepTestSale)+1:]; len(rest) < 3 ||
					rest[0] != provisioning.StepPrintSlip || rest[1] != tc.step || rest[2] != provisioning.StepVoid {
					t.Errorf("steps entered %v: want the slip, then %s, then the void", entered, tc.step)
				}
				if len(cp.Demands) != 1 || cp.Demands[0].State != provisioning.DemandDone || cp.Demands[0].From != "sale" || cp.Demands[0].Runs != 1 {
					t.Errorf("demands %+v", cp.Demands)
				}
				if len(r.host.fullPANs) != 1 || r.host.count("voided") != 1 {
					t.Errorf("%d sales, %v", len(r.host.fullPANs), r.host.sales)
				}
				last := r.reporter.statuses[len(r.reporter.statuses)-1]
				if len(last.Demands) != 1 || last.Demands[0].Demand != tc.demand {
					t.Errorf("the live report's demands %+v", last.Demands)
				}
			})
		}
	}
}

// An application or blacklist download is not the install's: logged and
// reported, not run. A host that keeps asking for the same work is given it
// maxDemandRuns times, then refused: the install still ends.
func TestDemandsNotRunAndLoopBreaker(t *testing.T) {
	r := newRig()
	r.host.demandNext("sign-on", provisioning.DemandTMS)
	r.host.demandNext("sign-on", provisioning.DemandBlacklist)
	for range 6 {
		// Each download's end asks for the other: a ping-pong only the
		// loop breaker ends.
		r.host.demandNext("capk-end", provisioning.DemandICParameters)
		r.host.demandNext("app-end", provisioning.DemandCAPK)
	}
	cp, err := r.flow().Run(context.Background())
	if err != nil || cp.Step != provisioning.StepLive {
		t.Fatalf("%v at %s", err, cp.Step)
	}
	states := map[provisioning.Demand]string{}
	for _, n := range cp.Demands {
		states[n.Demand] = n.State
	}
	if states[provisioning.DemandTMS] != provisioning.DemandNotRun || states[provisioning.DemandBlacklist] != provisioning.DemandNotRun {
		t.Errorf("demands %+v", cp.Demands)
	}
	// The key list's end asks first: the line's parameter download is the
	// first run on demand, and the fourth ask is refused.
	if states[provisioning.DemandICParameters] != provisioning.DemandRefused || states[provisioning.DemandCAPK] != provisioning.DemandDone {
		t.Errorf("demands %+v, want the ping-pong refused", cp.Demands)
	}
	for _, n := range cp.Demands {
		if n.Runs > 3 {
			t.Errorf("%s run %d times on demand", n.Demand, n.Runs)
		}
	}
	if n, m := r.host.msgCount("capk-end"), r.host.msgCount("app-end"); n != 4 || m != 3 {
		t.Errorf("%d key and %d parameter downloads, want 4 (the line's and 3 on demand) and 3", n, m)
	}
	if len(r.host.fullPANs) != 1 {
		t.Errorf("%d sales", len(r.host.fullPANs))
	}
}

// Central's retry-step of a download while the install is stopped at
// another failure runs the download again before the next transaction.
func TestRequestedDownloadRunsOnRetry(t *testing.T) {
	r := newRig()
	r.printer.fail = paperEnd{}
	r.ui.answers = []string{"confirm"}
	f := r.flow()
	cp, _ := f.Run(context.Background())
	if cp.Failure == nil || cp.Failure.Code != "E_PAPER_END" {
		t.Fatalf("failure %+v", cp.Failure)
	}
	if err := f.Request(provisioning.StepCAPK); err != nil {
		t.Fatal(err)
	}
	if err := f.Request(provisioning.StepBindCard); err == nil {
		t.Error("binding is no work a host demands, yet Request took it")
	}
	r.ui.answers = []string{"retry"}
	cp, err := f.Run(context.Background())
	if err != nil || cp.Step != provisioning.StepLive {
		t.Fatalf("%v at %s", err, cp.Step)
	}
	rest := after(r.host.sentKinds(), "sale")
	if i, v := slices.Index(rest, "capk-end"), slices.Index(rest, "void"); i < 0 || i > v {
		t.Errorf("after the sale: %v", rest)
	}
}

// An answer to a procedure message whose MAC fails marks the keys stale:
// the retry signs on again before the message goes out again.
func TestProcedureMACFailureSignsOnAgain(t *testing.T) {
	r := newRig()
	r.host.proc.endMAC = true
	r.ui.answers = []string{"retry", "confirm"}
	cp, err := r.flow().Run(context.Background())
	if err != nil || cp.Step != provisioning.StepLive || cp.KeysStale {
		t.Fatalf("%v at %s, stale %v", err, cp.Step, cp.KeysStale)
	}
	if got := after(r.host.sentKinds(), "capk-end"); len(got) < 2 || got[0] != "sign-on" || got[1] != "capk-end" {
		t.Errorf("after the first end: %v, want a sign-on and the end again", got)
	}
	var codes []string
	for _, s := range r.reporter.statuses {
		if s.Error != nil {
			codes = append(codes, s.Error.Code)
		}
	}
	if !slices.Equal(codes, []string{"E_ADMIN_MAC"}) {
		t.Errorf("failures %v", codes)
	}
}

// Settlement the host finds unbalanced is followed by a batch upload of the
// sale's and the void's records, then its end; none of it sends the sale
// again.
func TestSettlementUnbalancedUploadsTheBatch(t *testing.T) {
	r := newRig()
	r.host.proc.unbalanced = true
	cp, err := r.flow().Run(context.Background())
	if err != nil || cp.Step != provisioning.StepLive {
		t.Fatalf("%v at %s", err, cp.Step)
	}
	up := r.host.proc.uploads
	if len(up) != 2 || up[0].Kind != "sale" || up[0].Txn.STAN != cp.Sale.STAN || up[1].Kind != "void" || up[1].Txn.STAN != cp.Void.STAN {
		t.Fatalf("uploads %+v", up)
	}
	for _, u := range up {
		if u.Batch != "000001" || u.Txn.Masked != "622202*********0128" {
			t.Errorf("upload %+v", u)
		}
	}
	if e := r.host.proc.ends; len(e) != 1 || e[0].Count != 2 || e[0].Balanced {
		t.Errorf("ends %+v", e)
	}
	if st := cp.Settlement; st.Balanced || st.Uploaded != 2 || !st.UploadEnded || !st.Done {
		t.Errorf("settlement %+v", st)
	}
	if len(r.host.fullPANs) != 1 || slices.Index(after(r.host.sentKinds(), "void"), "sale") >= 0 {
		t.Errorf("the sale went out again: %v", r.host.sentKinds())
	}
}

// BatchTotals counts the sale a debit and its void a credit (gross), or
// neither when netted; a sale still standing is a debit either way, on its
// card's side.
func TestBatchTotals(t *testing.T) {
	sale := &provisioning.TxnRecord{STAN: 2, Amount: 150, Masked: "622202*********0128", AID: "A000000333010101"}
	void := &provisioning.TxnRecord{STAN: 3, Amount: 150}
	gross, net := provisioning.NettingGross, provisioning.NettingNet
	for _, tc := range []struct {
		name     string
		cp       provisioning.Checkpoint
		netting  provisioning.Netting
		dom, frn provisioning.Totals
	}{
		{"voided gross", provisioning.Checkpoint{Sale: sale, Void: void}, gross,
			provisioning.Totals{DebitCount: 1, DebitAmount: 150, CreditCount: 1, CreditAmount: 150}, provisioning.Totals{}},
		{"voided net", provisioning.Checkpoint{Sale: sale, Void: void}, net, provisioning.Totals{}, provisioning.Totals{}},
		{"standing", provisioning.Checkpoint{Sale: sale}, net, provisioning.Totals{DebitCount: 1, DebitAmount: 150}, provisioning.Totals{}},
		{"foreign", provisioning.Checkpoint{Sale: &provisioning.TxnRecord{Amount: 7, Masked: "411111******1111", AID: "A0000000031010"}}, gross,
			provisioning.Totals{}, provisioning.Totals{DebitCount: 1, DebitAmount: 7}},
		{"none", provisioning.Checkpoint{}, gross, provisioning.Totals{}, provisioning.Totals{}},
	} {
		if d, f := provisioning.BatchTotals(&tc.cp, tc.netting); d != tc.dom || f != tc.frn {
			t.Errorf("%s: %+v %+v, want %+v %+v", tc.name, d, f, tc.dom, tc.frn)
		}
	}
}

// Downloaded terminal parameters are what the terminal uses: the reversal
// limit is the host's; values out of range are not taken.
func TestDownloadedParametersRule(t *testing.T) {
	r := newRig()
	r.host.proc.params = provisioning.TerminalParams{MaxReversals: 2, HostTimeout: time.Millisecond, MerchantName: "\x00店\u200b"}
	r.host.loseSale = true
	r.host.refuseReversals = true
	r.ui.answers = []string{"confirm", "retry", "retry", "retry", "abort"}
	cp, _ := r.flow().Run(context.Background())
	if cp.Failure == nil || cp.Failure.Code != "E_REVERSAL_LIMIT" || len(r.host.reversals) != 2 {
		t.Fatalf("failure %+v after %d reversals, want the limit at the host's 2", cp.Failure, len(r.host.reversals))
	}
	if cp.TermParams.HostTimeout != 0 || cp.TermParams.MerchantName != "店" {
		t.Errorf("kept %+v: a 1 ms timeout is out of range, control characters go", cp.TermParams)
	}
}

// A terminal whose clock starts at 1970 runs on the build's floor until
// sign-on, then on the host's time: its slips and reports are stamped from
// it and say so. Without an authenticated link the host's time is not taken.
func TestClockFrom1970(t *testing.T) {
	epoch := time.Unix(0, 0).UTC()
	for _, tc := range []struct {
		integrity provisioning.Integrity
		want      provisioning.ClockSource
		at        time.Time
	}{
		{provisioning.IntegrityAuthentic, provisioning.ClockAcquirer, testNow},
		{provisioning.IntegrityForgeable, provisioning.ClockBuild, provisioning.DefaultBuildTime},
	} {
		t.Run(string(tc.want), func(t *testing.T) {
			r := newRig()
			r.host.proc.signOnIntegrity, r.host.proc.zeroTimes = tc.integrity, true
			f := r.flow()
			f.Clock = fixedClock{epoch}
			cp, err := f.Run(context.Background())
			if err != nil || cp.Step != provisioning.StepLive {
				t.Fatalf("%v at %s", err, cp.Step)
			}
			first := r.reporter.statuses[0]
			if first.Clock != provisioning.ClockBuild || !first.Time.Equal(provisioning.DefaultBuildTime) {
				t.Errorf("first report: %s %v, want the build floor", first.Clock, first.Time)
			}
			last := r.reporter.statuses[len(r.reporter.statuses)-1]
			if last.Clock != tc.want || !last.Time.Equal(tc.at) {
				t.Errorf("live report: %s %v, want %s %v", last.Clock, last.Time, tc.want, tc.at)
			}
			if got := r.printer.receipts[0].Txn.Time; !got.Equal(tc.at) {
				t.Errorf("slip stamped %v, want %v", got, tc.at)
			}
			if cp.UpdatedAt.Before(provisioning.DefaultBuildTime) {
				t.Errorf("checkpoint stamped %v", cp.UpdatedAt)
			}
		})
	}
}

// movingClock is a system clock a test moves.
type movingClock struct {
	t      time.Time
	synced bool
}

func (c *movingClock) Now() time.Time { return c.t }
func (c *movingClock) Synced() bool   { return c.synced }

func TestFloorClock(t *testing.T) {
	sys := &movingClock{t: time.Unix(100, 0)}
	build := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	c := provisioning.NewFloorClock(sys, build)
	check := func(what string, want time.Time, src provisioning.ClockSource) {
		t.Helper()
		if got, s := c.Read(); !got.Equal(want) || s != src {
			t.Errorf("%s: %v %s, want %v %s", what, got, s, want, src)
		}
	}
	check("behind the build", build, provisioning.ClockBuild)
	sys.t = sys.t.Add(time.Minute)
	check("runs on from the floor", build.Add(time.Minute), provisioning.ClockBuild)
	persisted := build.Add(48 * time.Hour)
	c.Raise(persisted, provisioning.ClockPersisted)
	c.Raise(build, provisioning.ClockPersisted) // lower: ignored
	check("persisted floor", persisted, provisioning.ClockPersisted)
	host := persisted.Add(time.Hour)
	c.SetHost(host, sys.t)
	sys.t = sys.t.Add(10 * time.Second)
	check("host time runs on", host.Add(10*time.Second), provisioning.ClockAcquirer)
	sys.t = time.Unix(50, 0) // wound back
	check("a clock set back does not move time back", host, provisioning.ClockAcquirer)
	// Set from 1970 to today by hand: wall readings decades apart are no
	// elapsed time, and the system clock, ahead of the floor, is taken.
	sys.t = host.Add(time.Hour)
	check("system clock set forward", host.Add(time.Hour), provisioning.ClockSystem)
	sys.synced = true
	check("synchronized", host.Add(time.Hour), provisioning.ClockNTP)
	sys.t = build.Add(-time.Hour)
	check("synchronized but behind the floor", persisted, provisioning.ClockPersisted)
	c2 := provisioning.NewFloorClock(&movingClock{t: build.Add(time.Hour)}, build)
	check2 := func() {
		if _, s := c2.Read(); s != provisioning.ClockSystem {
			t.Errorf("a system clock ahead of every floor: %s", s)
		}
	}
	check2()
}

// A restart on a 1970 clock takes the host's time on from the checkpoint
// while the system clock ran on, and the persisted floor once it went back.
func TestClockAcrossRestart(t *testing.T) {
	r := newRig()
	r.host.proc.signOnIntegrity = provisioning.IntegrityAuthentic
	sys := &movingClock{t: time.Unix(1000, 0)}
	f := r.flow()
	f.Clock = sys
	ctx, cancel := context.WithCancel(context.Background())
	r.reporter.onReport = func(s provisioning.Status) {
		if s.Step == provisioning.StepBindCard {
			cancel()
		}
	}
	if _, err := f.Run(ctx); !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	r.reporter.onReport = nil
	saved, _ := provisioning.Decode(r.store.Bytes())
	if saved.Clock == nil || !saved.Clock.HostTime.Equal(testNow) {
		t.Fatalf("clock record %+v", saved.Clock)
	}
	sys.t = sys.t.Add(time.Minute)
	g := r.flow()
	g.Clock = sys
	r.ui.answers = []string{"confirm"}
	n0 := len(r.reporter.statuses)
	cp, err := g.Run(context.Background())
	if err != nil || cp.Step != provisioning.StepLive {
		t.Fatalf("%v at %s", err, cp.Step)
	}
	if first := r.reporter.statuses[n0]; first.Clock != provisioning.ClockAcquirer || !first.Time.Equal(testNow.Add(time.Minute)) {
		t.Errorf("after a restart with the clock run on: %s %v", first.Clock, first.Time)
	}
	// A power cut that reset the RTC: only the persisted floor is left.
	cp.Step = provisioning.StepSignOff
	cp.SignOff, cp.Business = nil, nil
	b, _ := cp.Encode()
	r.store.Data = b
	h := r.flow()
	h.Clock = &movingClock{t: time.Unix(5, 0)}
	r.host.proc.signOnIntegrity = ""
	cp, err = h.Run(context.Background())
	if err != nil || cp.Step != provisioning.StepLive {
		t.Fatalf("%v at %s", err, cp.Step)
	}
	if last := r.reporter.statuses[len(r.reporter.statuses)-1]; last.Clock != provisioning.ClockPersisted || last.Time.Before(testNow) {
		t.Errorf("after the RTC went back: %s %v", last.Clock, last.Time)
	}
}

// A checkpoint an earlier build wrote without the procedure's records goes
// on with them: a live one stays live and sends nothing; one at the void
// downloads, settles and signs on for business.
func TestEarlierCheckpointsGoOn(t *testing.T) {
	r := newRig()
	cp, err := r.flow().Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	old := cp
	old.CAPK, old.Apps, old.TermParams, old.StatusUpload, old.Settlement, old.SignOff, old.Business, old.Demands, old.Clock = nil, nil, nil, nil, nil, nil, nil, nil, nil
	for _, tc := range []struct {
		step provisioning.Step
		msgs int
	}{{provisioning.StepLive, 0}, {provisioning.StepVoid, 15}} {
		again := newRig()
		// The same host: its book has the sale and its void.
		again.host.sales = r.host.sales
		o := old
		o.Step = tc.step
		b, _ := o.Encode()
		again.store.Data = b
		cp, err := again.flow().Run(context.Background())
		if err != nil || cp.Step != provisioning.StepLive {
			t.Fatalf("%s: %v at %s", tc.step, err, cp.Step)
		}
		if len(again.host.proc.msgs) != tc.msgs || len(again.host.fullPANs) != 0 {
			t.Errorf("%s: %d procedure messages %v, %d sales", tc.step, len(again.host.proc.msgs), again.host.proc.msgs, len(again.host.fullPANs))
		}
	}
}

func TestDemandNames(t *testing.T) {
	for d := provisioning.DemandNone; d <= provisioning.Demand(9); d++ {
		b, err := d.MarshalText()
		if err != nil {
			t.Fatal(err)
		}
		var back provisioning.Demand
		if err := back.UnmarshalText(b); err != nil || back != d {
			t.Errorf("%d: %s → %v %v", d, b, back, err)
		}
		if d >= 1 && d <= 7 && bytes.ContainsAny(b, "0123456789") {
			t.Errorf("demand %d stored as %q, not by its name", d, b)
		}
	}
	var d provisioning.Demand
	for _, bad := range []string{"", "4", "capk ", "demand(x)", "demand(4"} {
		if err := d.UnmarshalText([]byte(bad)); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

// Every card read after the IC parameter download selects with the
// downloaded applications: the binding, the test sale and the void.
func TestCardReadsUseDownloadedApps(t *testing.T) {
	r := newRig()
	cp, err := r.flow().Run(context.Background())
	if err != nil || cp.Step != provisioning.StepLive {
		t.Fatalf("Run = %v at %s", err, cp.Step)
	}
	d := r.downloadRecord(t)
	if len(d.Apps) == 0 {
		t.Fatal("no applications downloaded")
	}
	if len(r.card.reqs) < 3 {
		t.Fatalf("%d card reads", len(r.card.reqs))
	}
	for _, req := range r.card.reqs {
		if len(req.Apps) != len(d.Apps) || !bytes.Equal(req.Apps[0].AID, d.Apps[0].AID) {
			t.Errorf("%s read with %d apps, want the %d downloaded", req.Purpose, len(req.Apps), len(d.Apps))
		}
	}
}

// A sign-on for business answered with the batch just settled (a replayed
// old answer) is not taken: the step fails with E_BATCH_REOPENED, the keys
// count as stale, and the retry's sign-on goes live in the next batch.
func TestBusinessSignOnRefusesTheSettledBatch(t *testing.T) {
	r := newRig()
	r.host.proc.oldSignOns = 1
	r.ui.answers = []string{"confirm", "retry"}
	cp, err := r.flow().Run(context.Background())
	if err != nil || cp.Step != provisioning.StepLive || cp.Business == nil || cp.Business.Batch != "000002" {
		t.Fatalf("Run = %v at %s, business %+v", err, cp.Step, cp.Business)
	}
	failed := false
	for _, s := range r.reporter.statuses {
		failed = failed || s.Error != nil && s.Error.Code == "E_BATCH_REOPENED" && s.Error.Step == provisioning.StepSignOnBusiness
	}
	if !failed {
		t.Error("no E_BATCH_REOPENED at the business sign-on")
	}
	if got := r.host.proc.signOnBatches; len(got) != 3 {
		t.Errorf("sign-ons with batches %q, want the first, the refused and the retried", got)
	}
}
