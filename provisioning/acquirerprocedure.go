package provisioning

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// The acquirer's procedure around the test sale (PROTOCOLS.md, "The install
// procedure of a real terminal"): the downloads after sign-on, the status
// upload, and closing the test batch before the terminal goes live. None of
// these messages charges a card; a crash inside one repeats it, which the
// host takes as it took the first.

// Message kinds, as the installer and the report name them.
var (
	textCAPK        = Text{"IC卡公钥下载", "IC public key download"}
	textApps        = Text{"IC卡参数下载", "IC parameter download"}
	textParams      = Text{"终端参数下载", "terminal parameter download"}
	textStatus      = Text{"终端状态上送", "status upload"}
	textSettle      = Text{"结算", "settlement"}
	textBatchUpload = Text{"批上送", "batch upload"}
	textSignOff     = Text{"签退", "sign-off"}
)

// Bounds on what a host may send: a host that always says "more" must not
// hold the step for ever, nor fill the terminal's storage.
const (
	maxListPages   = 32
	maxListEntries = 64
)

// clock is the flow's FloorClock: Clock itself when it is one (the agent
// shares it with the host link), else Clock floored at BuildTime.
func (f *Flow) clock() *FloorClock {
	f.clockOnce.Do(func() {
		if c, ok := f.Clock.(*FloorClock); ok {
			f.fclock = c
			return
		}
		f.fclock = NewFloorClock(f.Clock, f.BuildTime)
	})
	return f.fclock
}

func (f *Flow) now() time.Time { return f.clock().Now().UTC() }

// Now is the flow's time: what its checkpoints, reports and slips are
// stamped with (FloorClock).
func (f *Flow) Now() time.Time { return f.now() }

// stamp is a host answer's time, or the flow's own when the answer had none.
func (f *Flow) stamp(t time.Time) time.Time {
	if t.IsZero() {
		return f.now()
	}
	return t.UTC()
}

// restoreClock floors the flow's clock at the checkpoint's last save, and
// runs it on from the host's time when the system clock has run on since
// that was read (it did not go back with a power cut).
func (f *Flow) restoreClock(cp *Checkpoint) {
	c := f.clock()
	c.Raise(cp.UpdatedAt, ClockPersisted)
	if r := cp.Clock; r != nil && !c.System.Now().Before(r.SystemAt) {
		c.SetHost(r.HostTime, r.SystemAt)
	}
}

// downloads is Flow.Downloads, or the flow's own memory store.
func (f *Flow) downloads() DownloadStore {
	if f.Downloads != nil {
		return f.Downloads
	}
	f.memOnce.Do(func() { f.mem = &memDownloads{} })
	return f.mem
}

// Request asks the flow to run step's work again, as if a host had
// demanded it: central's retry-step of a download. It is taken when the
// failure the install is stopped at is answered with retry; only steps
// that carry out a demand (StepInfo.Serves) can be asked for.
func (f *Flow) Request(s Step) error {
	info, ok := Info(s)
	if !ok || info.Serves == DemandNone {
		return fmt.Errorf("provisioning: %s is not work a host can demand", s)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requested = append(f.requested, info.Serves)
	return nil
}

func (f *Flow) takeRequests() []Demand {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := f.requested
	f.requested = nil
	return r
}

// termParams are the terminal parameters in use: the downloaded ones where
// the host set them, the flow's own otherwise.
func (f *Flow) termParams(cp *Checkpoint) TerminalParams {
	p := TerminalParams{MaxReversals: f.MaxReversals}
	if p.MaxReversals <= 0 {
		p.MaxReversals = 3
	}
	if cp.Merchant != nil {
		p.MerchantName = cp.Merchant.Name
	}
	if tp := cp.TermParams; tp != nil {
		if tp.MerchantName != "" {
			p.MerchantName = tp.MerchantName
		}
		if tp.HostTimeout > 0 {
			p.HostTimeout = tp.HostTimeout
		}
		if tp.MaxReversals > 0 {
			p.MaxReversals = tp.MaxReversals
		}
	}
	return p
}

// maxReversals is how often one reversal may reach the host before it is
// given up to an operator.
func (f *Flow) maxReversals(cp *Checkpoint) int { return f.termParams(cp).MaxReversals }

// hostCtx bounds one exchange by the downloaded host timeout. It can only
// shorten the link's own timeouts, never lengthen them.
func (f *Flow) hostCtx(ctx context.Context, cp *Checkpoint) (context.Context, context.CancelFunc) {
	if d := f.termParams(cp).HostTimeout; d > 0 {
		return context.WithTimeout(ctx, d)
	}
	return context.WithCancel(ctx)
}

// Accepted ranges of downloaded terminal parameters: a value outside is
// not used (the terminal keeps its own), since a host that sets the
// reversal limit to 0 or 500 or the timeout to a millisecond would break
// the money rule's discipline rather than tune it.
const (
	minHostTimeout  = 5 * time.Second
	maxHostTimeout  = 3 * time.Minute
	maxReversalsCap = 9
	maxMerchantName = 40
)

// checkParams keeps what of p the terminal can use.
func (f *Flow) checkParams(p TerminalParams) TerminalParams {
	name := strings.TrimSpace(strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			return -1
		}
		return r
	}, p.MerchantName))
	if len([]rune(name)) > maxMerchantName {
		f.Log.Warn("downloaded merchant name too long; keeping the registered one", "runes", len([]rune(name)))
		name = ""
	}
	p.MerchantName = name
	if p.HostTimeout != 0 && (p.HostTimeout < minHostTimeout || p.HostTimeout > maxHostTimeout) {
		f.Log.Warn("downloaded host timeout out of range; keeping the terminal's", "timeout", p.HostTimeout)
		p.HostTimeout = 0
	}
	if p.MaxReversals < 0 || p.MaxReversals > maxReversalsCap {
		f.Log.Warn("downloaded reversal limit out of range; keeping the terminal's", "limit", p.MaxReversals)
		p.MaxReversals = 0
	}
	return p
}

// adminReq is the common part of the next procedure message, its STAN
// saved before it leaves: a STAN is never used twice in a batch.
func (f *Flow) adminReq(cp *Checkpoint) (AdminRequest, error) {
	r := AdminRequest{Terminal: f.term(cp), STAN: f.nextSTAN(cp), Batch: signOnBatch(cp)}
	return r, f.save(cp)
}

// adminErr is the failure of a procedure exchange that returned an error.
// An answer whose MAC failed means the working keys are out of step: the
// next online step signs on again first (KeysStale).
func (f *Flow) adminErr(cp *Checkpoint, what Text, err error) error {
	switch {
	case errors.Is(err, ErrResponseMAC):
		cp.KeysStale = true
		if serr := f.save(cp); serr != nil {
			return serr
		}
		return stepErr("E_ADMIN_MAC", err, what)
	case errors.Is(err, ErrNotSent):
		return stepErr("E_NETWORK", err)
	}
	return stepErr(codeOf(err, "E_ADMIN_HOST"), err, what)
}

// adminRC refuses an answer that is not an approval; A0 (the host's MAC
// check of ours failed) marks the keys stale as a MAC failure does.
func (f *Flow) adminRC(cp *Checkpoint, what Text, rc string) error {
	if rc == "00" {
		return nil
	}
	if rc == "A0" {
		cp.KeysStale = true
		if err := f.save(cp); err != nil {
			return err
		}
	}
	return stepErr("E_ADMIN_DECLINED", nil, what, rc)
}

// loadDownloads is the download record for a download step. A corrupt one
// is started afresh (the host sends the lists again), and the checkpoint
// forgets both lists it recorded, so that the line downloads each again.
func (f *Flow) loadDownloads(cp *Checkpoint) (Downloads, error) {
	d, err := f.downloads().LoadDownloads()
	switch {
	case errors.Is(err, ErrNoState):
		return Downloads{Schema: DownloadSchema}, nil
	case errors.Is(err, ErrCorruptDownloads):
		f.Log.Warn("download record cannot be trusted; downloading afresh", "err", err)
		cp.CAPK, cp.Apps = nil, nil
		return Downloads{Schema: DownloadSchema}, nil
	case err != nil:
		return Downloads{}, stepErr("E_DOWNLOAD_STORE", err)
	}
	return d, nil
}

func (f *Flow) saveDownloads(d Downloads) error {
	if err := f.downloads().SaveDownloads(d); err != nil {
		return stepErr("E_DOWNLOAD_STORE", err)
	}
	return nil
}

// chipApps are the active IC parameters, what a card read selects with;
// nil when none are active (a read then uses the kernel's own list, and
// chipReady refuses the chip sale).
func (f *Flow) chipApps() []AppParams {
	d, err := f.downloads().LoadDownloads()
	if err != nil {
		return nil
	}
	return d.Apps
}

// chipReady refuses a chip sale while no CA key and IC parameter lists are
// active ("请先下载CAPK参数"). The checkpoint may record downloads the store
// no longer has (a memory store after a restart, a damaged file): it then
// forgets them, so that a retry downloads them again.
func (f *Flow) chipReady(cp *Checkpoint) error {
	d, err := f.downloads().LoadDownloads()
	switch {
	case err == nil && d.ChipReady():
		return nil
	case err != nil && !errors.Is(err, ErrNoState) && !errors.Is(err, ErrCorruptDownloads):
		return stepErr("E_DOWNLOAD_STORE", err)
	}
	if len(d.CAPKs) == 0 {
		cp.CAPK = nil
	}
	if len(d.Apps) == 0 {
		cp.Apps = nil
	}
	return stepErr("E_NO_CAPK", err)
}

// downloadCAPK downloads the CA public keys: the host's list page by page,
// then each key, then the end message. Every page and key is staged in the
// download store as it arrives, so a restart goes on where it stopped; each
// key's checksum is checked before it is staged; the staged list replaces
// the active one only once the host acknowledged the end.
func (f *Flow) downloadCAPK(ctx context.Context, cp *Checkpoint) error {
	f.show(ctx, Screen{Title: "下载公钥 CAPK", Lines: []string{"下载IC卡公钥 Loading IC public keys"}})
	if err := f.ensureKeys(ctx, cp); err != nil {
		return err
	}
	d, err := f.loadDownloads(cp)
	if err != nil {
		return err
	}
	if d.StagedCAPK == nil {
		d.StagedCAPK = &CAPKStage{}
		if err := f.saveDownloads(d); err != nil {
			return err
		}
	}
	st := d.StagedCAPK
	hctx, cancel := f.hostCtx(ctx, cp)
	defer cancel()
	for pages := 0; !st.ListDone; pages++ {
		if pages >= maxListPages || len(st.Listed) > maxListEntries {
			return stepErr("E_DOWNLOAD_DATA", fmt.Errorf("%d pages, %d keys listed", pages, len(st.Listed)), textCAPK)
		}
		req, err := f.adminReq(cp)
		if err != nil {
			return err
		}
		res, err := f.Host.ListKeys(hctx, ListRequest{AdminRequest: req, From: len(st.Listed)})
		if err != nil {
			return f.adminErr(cp, textCAPK, err)
		}
		f.noteDemand(cp, res.Demand, "capk")
		if err := f.adminRC(cp, textCAPK, res.RC); err != nil {
			return err
		}
		added := 0
		for _, id := range res.Keys {
			if len(id.RID) != 5 {
				return stepErr("E_DOWNLOAD_DATA", fmt.Errorf("a listed key has a %d-byte RID", len(id.RID)), textCAPK)
			}
			if !listedKey(st.Listed, id) {
				st.Listed = append(st.Listed, id)
				added++
			}
		}
		if res.More && added == 0 {
			return stepErr("E_DOWNLOAD_DATA", errors.New("the host says more keys follow but lists none"), textCAPK)
		}
		st.ListDone = !res.More
		if err := f.saveDownloads(d); err != nil {
			return err
		}
	}
	if len(st.Listed) == 0 {
		d.StagedCAPK = nil
		if err := f.saveDownloads(d); err != nil {
			return err
		}
		return stepErr("E_DOWNLOAD_DATA", errors.New("the host lists no key"), textCAPK)
	}
	for len(st.Keys) < len(st.Listed) {
		id := st.Listed[len(st.Keys)]
		req, err := f.adminReq(cp)
		if err != nil {
			return err
		}
		res, err := f.Host.FetchKey(hctx, KeyRequest{AdminRequest: req, Key: id})
		if err != nil {
			return f.adminErr(cp, textCAPK, err)
		}
		f.noteDemand(cp, res.Demand, "capk")
		if err := f.adminRC(cp, textCAPK, res.RC); err != nil {
			return err
		}
		k := res.Key
		if !bytes.Equal(k.RID, id.RID) || k.Index != id.Index {
			return stepErr("E_DOWNLOAD_DATA", fmt.Errorf("asked for key %s, got %s", id, k.ID()), textCAPK)
		}
		if err := k.Verify(); err != nil {
			// Not staged: a retry fetches it again.
			return stepErr("E_CAPK_CHECKSUM", err, id.String())
		}
		st.Keys = append(st.Keys, k)
		if err := f.saveDownloads(d); err != nil {
			return err
		}
	}
	req, err := f.adminReq(cp)
	if err != nil {
		return err
	}
	ack, err := f.Host.EndKeys(hctx, req)
	if err != nil {
		return f.adminErr(cp, textCAPK, err)
	}
	f.noteDemand(cp, ack.Demand, "capk")
	if err := f.adminRC(cp, textCAPK, ack.RC); err != nil {
		return err
	}
	// Acknowledged: the staged list becomes the active one, whole.
	d.CAPKs, d.CAPKAt, d.StagedCAPK = st.Keys, f.now(), nil
	if err := f.saveDownloads(d); err != nil {
		return err
	}
	cp.CAPK = &DownloadRecord{Count: len(d.CAPKs), At: d.CAPKAt}
	return f.save(cp)
}

func listedKey(ids []CAPKID, id CAPKID) bool {
	for _, x := range ids {
		if bytes.Equal(x.RID, id.RID) && x.Index == id.Index {
			return true
		}
	}
	return false
}

// downloadApps downloads the IC parameters of each application the host
// lists, staged and activated as downloadCAPK does.
func (f *Flow) downloadApps(ctx context.Context, cp *Checkpoint) error {
	f.show(ctx, Screen{Title: "下载参数 IC PARAMS", Lines: []string{"下载IC卡参数 Loading IC parameters"}})
	if err := f.ensureKeys(ctx, cp); err != nil {
		return err
	}
	d, err := f.loadDownloads(cp)
	if err != nil {
		return err
	}
	if d.StagedApps == nil {
		d.StagedApps = &AppStage{}
		if err := f.saveDownloads(d); err != nil {
			return err
		}
	}
	st := d.StagedApps
	hctx, cancel := f.hostCtx(ctx, cp)
	defer cancel()
	for pages := 0; !st.ListDone; pages++ {
		if pages >= maxListPages || len(st.Listed) > maxListEntries {
			return stepErr("E_DOWNLOAD_DATA", fmt.Errorf("%d pages, %d applications listed", pages, len(st.Listed)), textApps)
		}
		req, err := f.adminReq(cp)
		if err != nil {
			return err
		}
		res, err := f.Host.ListApps(hctx, ListRequest{AdminRequest: req, From: len(st.Listed)})
		if err != nil {
			return f.adminErr(cp, textApps, err)
		}
		f.noteDemand(cp, res.Demand, "ic-params")
		if err := f.adminRC(cp, textApps, res.RC); err != nil {
			return err
		}
		added := 0
		for _, aid := range res.AIDs {
			if len(aid) < 5 || len(aid) > 16 {
				return stepErr("E_DOWNLOAD_DATA", fmt.Errorf("a listed AID has %d bytes", len(aid)), textApps)
			}
			if !listedAID(st.Listed, aid) {
				st.Listed = append(st.Listed, aid)
				added++
			}
		}
		if res.More && added == 0 {
			return stepErr("E_DOWNLOAD_DATA", errors.New("the host says more applications follow but lists none"), textApps)
		}
		st.ListDone = !res.More
		if err := f.saveDownloads(d); err != nil {
			return err
		}
	}
	if len(st.Listed) == 0 {
		d.StagedApps = nil
		if err := f.saveDownloads(d); err != nil {
			return err
		}
		return stepErr("E_DOWNLOAD_DATA", errors.New("the host lists no application"), textApps)
	}
	for len(st.Apps) < len(st.Listed) {
		aid := st.Listed[len(st.Apps)]
		req, err := f.adminReq(cp)
		if err != nil {
			return err
		}
		res, err := f.Host.FetchApp(hctx, AppRequest{AdminRequest: req, AID: aid})
		if err != nil {
			return f.adminErr(cp, textApps, err)
		}
		f.noteDemand(cp, res.Demand, "ic-params")
		if err := f.adminRC(cp, textApps, res.RC); err != nil {
			return err
		}
		if !bytes.Equal(res.App.AID, aid) {
			return stepErr("E_DOWNLOAD_DATA", fmt.Errorf("asked for AID %X, got %X", aid, res.App.AID), textApps)
		}
		st.Apps = append(st.Apps, res.App)
		if err := f.saveDownloads(d); err != nil {
			return err
		}
	}
	req, err := f.adminReq(cp)
	if err != nil {
		return err
	}
	ack, err := f.Host.EndApps(hctx, req)
	if err != nil {
		return f.adminErr(cp, textApps, err)
	}
	f.noteDemand(cp, ack.Demand, "ic-params")
	if err := f.adminRC(cp, textApps, ack.RC); err != nil {
		return err
	}
	d.Apps, d.AppsAt, d.StagedApps = st.Apps, f.now(), nil
	if err := f.saveDownloads(d); err != nil {
		return err
	}
	cp.Apps = &DownloadRecord{Count: len(d.Apps), At: d.AppsAt}
	return f.save(cp)
}

func listedAID(aids [][]byte, aid []byte) bool {
	for _, x := range aids {
		if bytes.Equal(x, aid) {
			return true
		}
	}
	return false
}

// terminalParams downloads the terminal parameters; from then on the
// terminal uses them (termParams), not its config's.
func (f *Flow) terminalParams(ctx context.Context, cp *Checkpoint) error {
	f.show(ctx, Screen{Title: "终端参数 TERMINAL PARAMS", Lines: []string{"下载终端参数 Loading terminal parameters"}})
	if err := f.ensureKeys(ctx, cp); err != nil {
		return err
	}
	req, err := f.adminReq(cp)
	if err != nil {
		return err
	}
	hctx, cancel := f.hostCtx(ctx, cp)
	defer cancel()
	res, err := f.Host.TerminalParameters(hctx, req)
	if err != nil {
		return f.adminErr(cp, textParams, err)
	}
	f.noteDemand(cp, res.Demand, "terminal-params")
	if err := f.adminRC(cp, textParams, res.RC); err != nil {
		return err
	}
	p := f.checkParams(res.Params)
	cp.TermParams = &p
	return f.save(cp)
}

// statusUpload tells the host the settings the terminal runs with.
func (f *Flow) statusUpload(ctx context.Context, cp *Checkpoint) error {
	if err := f.ensureKeys(ctx, cp); err != nil {
		return err
	}
	req, err := f.adminReq(cp)
	if err != nil {
		return err
	}
	hctx, cancel := f.hostCtx(ctx, cp)
	defer cancel()
	ack, err := f.Host.UploadStatus(hctx, StatusUpload{AdminRequest: req, Params: f.termParams(cp)})
	if err != nil {
		return f.adminErr(cp, textStatus, err)
	}
	f.noteDemand(cp, ack.Demand, "status-upload")
	if err := f.adminRC(cp, textStatus, ack.RC); err != nil {
		return err
	}
	cp.StatusUpload = &AdminRecord{RC: ack.RC, At: f.stamp(ack.Time)}
	return f.save(cp)
}

// Netting is how an acquirer's settlement counts a voided sale: the
// terminal's totals must be counted the host's way, or every settlement is
// unbalanced.
type Netting string

// Nettings.
const (
	// NettingGross: the voided sale is a debit and its void a credit, as
	// public UnionPay terminal applications and hosts count (the default).
	NettingGross Netting = "gross"
	// NettingNet: a voided sale and its void count on neither side.
	NettingNet Netting = "net"
)

// BatchTotals are the test batch's totals as settlement (field 48) counts
// them, domestic (UnionPay) and foreign cards apart: the sale a debit and
// its void a credit (NettingGross), or, netted, neither (NettingNet). A
// reversed sale never stood and is not in the checkpoint.
func BatchTotals(cp *Checkpoint, netting Netting) (domestic, foreign Totals) {
	s := cp.Sale
	if s == nil {
		return domestic, foreign
	}
	t := &foreign
	if domesticCard(*s) {
		t = &domestic
	}
	if cp.Void != nil && netting == NettingNet {
		return domestic, foreign
	}
	t.DebitCount++
	t.DebitAmount += s.Amount
	if v := cp.Void; v != nil {
		t.CreditCount++
		t.CreditAmount += v.Amount
	}
	return domestic, foreign
}

// domesticCard is a UnionPay card (its AID's RID, or a 62 BIN).
func domesticCard(t TxnRecord) bool {
	return strings.HasPrefix(strings.ToUpper(t.AID), "A000000333") || strings.HasPrefix(t.Masked, "62")
}

// batchTxns are the batch's transactions as a batch upload sends them.
func batchTxns(cp *Checkpoint) []BatchUpload {
	var out []BatchUpload
	if cp.Sale != nil {
		out = append(out, BatchUpload{Txn: *cp.Sale, Kind: "sale"})
	}
	if cp.Void != nil {
		out = append(out, BatchUpload{Txn: *cp.Void, Kind: "void"})
	}
	return out
}

// nextBatch is the batch after b: six digits, 000001 after 999999.
func nextBatch(b string) string {
	n, err := strconv.Atoi(b)
	if err != nil || len(b) != 6 || n >= 999999 {
		return "000001"
	}
	return fmt.Sprintf("%06d", n+1)
}

func validBatch(b string) bool {
	if len(b) != 6 || b == "000000" {
		return false
	}
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// settle closes the test batch: settlement with its totals, and, when the
// host's totals differ, a batch upload of every transaction of the batch.
// Each stage is recorded as the host acknowledges it. Nothing here is a
// financial message: the batch upload sends the records of the sale and
// the void (0320), never the sale itself, so the money rule is untouched.
func (f *Flow) settle(ctx context.Context, cp *Checkpoint) error {
	if cp.Sale == nil || cp.Void == nil {
		return stepErr("E_STATE", nil, Text{"测试交易未撤销", "the test sale is not voided"})
	}
	if err := unsettled(cp); err != nil {
		return err
	}
	f.show(ctx, Screen{Title: "结算 SETTLEMENT", Lines: []string{"结算测试批次 Settling the test batch"}})
	if err := f.ensureKeys(ctx, cp); err != nil {
		return err
	}
	st := cp.Settlement
	if st == nil {
		netting := f.Netting
		if netting == "" {
			netting = NettingGross
		}
		dom, forn := BatchTotals(cp, netting)
		st = &SettleRecord{Batch: cp.Sale.Batch, Domestic: dom, Foreign: forn}
		cp.Settlement = st
		if err := f.save(cp); err != nil {
			return err
		}
	}
	hctx, cancel := f.hostCtx(ctx, cp)
	defer cancel()
	if !st.Answered {
		req, err := f.adminReq(cp)
		if err != nil {
			return err
		}
		req.Batch = st.Batch
		res, err := f.Host.Settle(hctx, SettleRequest{AdminRequest: req, Domestic: st.Domestic, Foreign: st.Foreign})
		if err != nil {
			return f.adminErr(cp, textSettle, err)
		}
		f.noteDemand(cp, res.Demand, "settlement")
		if err := f.adminRC(cp, textSettle, res.RC); err != nil {
			return err
		}
		st.Answered, st.Balanced = true, res.DomesticBalanced && res.ForeignBalanced
		st.NextBatch = nextBatch(st.Batch)
		if validBatch(res.NextBatch) {
			st.NextBatch = res.NextBatch
		}
		if err := f.save(cp); err != nil {
			return err
		}
	}
	// The batch upload ends after a balanced settlement too (207, nothing
	// uploaded): the public terminal apps send it, and hosts close the
	// batch there.
	if !st.UploadEnded {
		var txns []BatchUpload
		if !st.Balanced {
			txns = batchTxns(cp)
		}
		for st.Uploaded < len(txns) {
			req, err := f.adminReq(cp)
			if err != nil {
				return err
			}
			req.Batch = st.Batch
			up := txns[st.Uploaded]
			up.AdminRequest = req
			ack, err := f.Host.UploadBatch(hctx, up)
			if err != nil {
				return f.adminErr(cp, textBatchUpload, err)
			}
			f.noteDemand(cp, ack.Demand, "batch-upload")
			if err := f.adminRC(cp, textBatchUpload, ack.RC); err != nil {
				return err
			}
			st.Uploaded++
			if err := f.save(cp); err != nil {
				return err
			}
		}
		resent := st.EndSent
		st.EndSent = true
		req, err := f.adminReq(cp) // saves EndSent with the STAN
		if err != nil {
			return err
		}
		req.Batch = st.Batch
		ack, err := f.Host.EndBatchUpload(hctx, BatchEnd{AdminRequest: req, Balanced: st.Balanced, Count: len(txns)})
		if err != nil {
			return f.adminErr(cp, textBatchUpload, err)
		}
		f.noteDemand(cp, ack.Demand, "batch-upload")
		switch {
		case resent && ack.RC == "77":
			// The host settled this batch with us and no longer has it
			// open: the end sent before, whose answer was lost (a power
			// cut), closed it. Refusing would stop the install for good,
			// since every retry is answered 77 too.
			f.Log.Warn("batch end sent again is answered 77: the earlier end closed the batch", "batch", st.Batch)
		default:
			if err := f.adminRC(cp, textBatchUpload, ack.RC); err != nil {
				return err
			}
		}
		st.UploadEnded = true
	}
	st.Done, st.At = true, f.now()
	return f.save(cp)
}

// signOff ends the test batch's session. It needs no fresh keys: a sign-off
// carries no MAC, and the sign-on for business replaces the keys next.
func (f *Flow) signOff(ctx context.Context, cp *Checkpoint) error {
	f.show(ctx, Screen{Title: "签退 SIGN-OFF", Lines: []string{"终端签退 Signing off"}})
	req, err := f.adminReq(cp)
	if err != nil {
		return err
	}
	hctx, cancel := f.hostCtx(ctx, cp)
	defer cancel()
	ack, err := f.Host.SignOff(hctx, req)
	if err != nil {
		return f.adminErr(cp, textSignOff, err)
	}
	f.noteDemand(cp, ack.Demand, "sign-off")
	if err := f.adminRC(cp, textSignOff, ack.RC); err != nil {
		return err
	}
	cp.SignOff = &AdminRecord{RC: ack.RC, At: f.stamp(ack.Time)}
	return f.save(cp)
}

// signOnBusiness signs on with the batch after the settled one: the batch
// the terminal goes live with, which the host's answer names.
func (f *Flow) signOnBusiness(ctx context.Context, cp *Checkpoint) error {
	if cp.Settlement == nil || !cp.Settlement.Done {
		return stepErr("E_STATE", nil, Text{"测试批次未结算", "the test batch is not settled"})
	}
	f.show(ctx, Screen{Title: "签到 SIGN-ON", Lines: []string{"营业签到 Signing on for business"}})
	want := signOnBatch(cp)
	if err := f.signOnOnce(ctx, cp); err != nil {
		return err
	}
	if cp.SignOn.Batch != want {
		// The terminal adopts the host's batch (60.2 of the answer).
		f.Log.Warn("host opened another batch than the one after the settled batch", "want", want, "host", cp.SignOn.Batch)
	}
	b := *cp.SignOn
	cp.Business = &b
	return f.save(cp)
}
