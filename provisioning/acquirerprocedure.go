package provisioning

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/posagent/posagent/provisioning/pan"
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
	textTCUpload    = Text{"IC卡TC上送", "TC upload"}
	textScripts     = Text{"脚本结果上送", "script result notice"}
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

// cardRequest is a card read's request for purpose: with the active IC
// parameters, which the kernel selects with, and CA keys, which it
// authenticates the card with; a store without them leaves the kernel's
// own list and no keys (chipReady refuses a chip sale then).
func (f *Flow) cardRequest(purpose string, amount int64) CardRequest {
	r := CardRequest{Purpose: purpose, Amount: amount}
	if d, err := f.downloads().LoadDownloads(); err == nil {
		r.Apps, r.CAPKs = d.Apps, d.CAPKs
	}
	return r
}

// chipReady refuses a chip sale while no CA key and IC parameter lists are
// active ("请先下载CAPK参数"), and returns them when they are. The
// checkpoint may record downloads the store no longer has (a memory store
// after a restart, a damaged file): it then forgets them, so that a retry
// downloads them again.
func (f *Flow) chipReady(cp *Checkpoint) (Downloads, error) {
	d, err := f.downloads().LoadDownloads()
	switch {
	case err == nil && d.ChipReady():
		return d, nil
	case err != nil && !errors.Is(err, ErrNoState) && !errors.Is(err, ErrCorruptDownloads):
		return Downloads{}, stepErr("E_DOWNLOAD_STORE", err)
	}
	if len(d.CAPKs) == 0 {
		cp.CAPK = nil
	}
	if len(d.Apps) == 0 {
		cp.Apps = nil
	}
	return Downloads{}, stepErr("E_NO_CAPK", err)
}

// listDownload is what a CA key download and an IC parameter download
// differ in; run does either the same way: the host's list page by page,
// then each item, then the end message. Every page and item is staged in
// the download store as it arrives, so a restart goes on where it stopped;
// each item is checked before it is staged; the staged list replaces the
// active one only once the host acknowledged the end.
type listDownload[ID, Item any] struct {
	what Text   // the download, for the screen's failures
	from string // the demand bookkeeping's name for its messages
	noun string // what the list holds, for the errors ("keys")
	// stage is the download under way in d, started (fresh) when there is
	// none; drop forgets it.
	stage func(d *Downloads) (listed *[]ID, done *bool, items *[]Item, fresh bool)
	drop  func(d *Downloads)
	// list asks for one page from the entries already held; checkID
	// refuses a listed entry the terminal cannot use; same tells a page's
	// entry already listed.
	list    func(ctx context.Context, r ListRequest) (ids []ID, more bool, ack Ack, err error)
	checkID func(ID) error
	same    func(a, b ID) bool
	// fetch asks for one item; check refuses an item that is not the one
	// asked for or does not verify (its error is the step's).
	fetch func(ctx context.Context, r AdminRequest, id ID) (Item, Ack, error)
	check func(id ID, it Item) error
	end   func(ctx context.Context, r AdminRequest) (Ack, error)
	// activate makes the staged items the active list in d and records
	// them in the checkpoint.
	activate func(d *Downloads, cp *Checkpoint, items []Item)
}

func (l listDownload[ID, Item]) run(ctx context.Context, f *Flow, cp *Checkpoint) error {
	if err := f.ensureKeys(ctx, cp); err != nil {
		return err
	}
	d, err := f.loadDownloads(cp)
	if err != nil {
		return err
	}
	listed, done, items, fresh := l.stage(&d)
	if fresh {
		if err := f.saveDownloads(d); err != nil {
			return err
		}
	}
	hctx, cancel := f.hostCtx(ctx, cp)
	defer cancel()
	// answered books an answer's demand and refuses its code unless 00.
	answered := func(a Ack) error {
		f.noteDemand(cp, a.Demand, l.from)
		return f.adminRC(cp, l.what, a.RC)
	}
	for pages := 0; !*done; pages++ {
		if pages >= maxListPages || len(*listed) > maxListEntries {
			return stepErr("E_DOWNLOAD_DATA", fmt.Errorf("%d pages, %d %s listed", pages, len(*listed), l.noun), l.what)
		}
		req, err := f.adminReq(cp)
		if err != nil {
			return err
		}
		ids, more, ack, err := l.list(hctx, ListRequest{AdminRequest: req, From: len(*listed)})
		if err != nil {
			return f.adminErr(cp, l.what, err)
		}
		if err := answered(ack); err != nil {
			return err
		}
		added := 0
		for _, id := range ids {
			if err := l.checkID(id); err != nil {
				return stepErr("E_DOWNLOAD_DATA", err, l.what)
			}
			if !slices.ContainsFunc(*listed, func(x ID) bool { return l.same(x, id) }) {
				*listed = append(*listed, id)
				added++
			}
		}
		if more && added == 0 {
			return stepErr("E_DOWNLOAD_DATA", fmt.Errorf("the host says more %s follow but lists none", l.noun), l.what)
		}
		*done = !more
		if err := f.saveDownloads(d); err != nil {
			return err
		}
	}
	if len(*listed) == 0 {
		// Nothing to stage: the next attempt asks for the list afresh.
		l.drop(&d)
		if err := f.saveDownloads(d); err != nil {
			return err
		}
		return stepErr("E_DOWNLOAD_DATA", fmt.Errorf("the host lists no %s", l.noun), l.what)
	}
	for len(*items) < len(*listed) {
		id := (*listed)[len(*items)]
		req, err := f.adminReq(cp)
		if err != nil {
			return err
		}
		it, ack, err := l.fetch(hctx, req, id)
		if err != nil {
			return f.adminErr(cp, l.what, err)
		}
		if err := answered(ack); err != nil {
			return err
		}
		if err := l.check(id, it); err != nil {
			return err // not staged: a retry fetches it again
		}
		*items = append(*items, it)
		if err := f.saveDownloads(d); err != nil {
			return err
		}
	}
	req, err := f.adminReq(cp)
	if err != nil {
		return err
	}
	ack, err := l.end(hctx, req)
	if err != nil {
		return f.adminErr(cp, l.what, err)
	}
	if err := answered(ack); err != nil {
		return err
	}
	// Acknowledged: the staged list becomes the active one, whole.
	l.activate(&d, cp, *items)
	if err := f.saveDownloads(d); err != nil {
		return err
	}
	return f.save(cp)
}

// downloadCAPK downloads the CA public keys; each key's checksum is
// checked before it is staged.
func (f *Flow) downloadCAPK(ctx context.Context, cp *Checkpoint) error {
	f.show(ctx, Screen{Title: "下载公钥 CAPK", Lines: []string{"下载IC卡公钥 Loading IC public keys"}})
	return listDownload[CAPKID, CAPK]{
		what: textCAPK, from: "capk", noun: "keys",
		stage: func(d *Downloads) (*[]CAPKID, *bool, *[]CAPK, bool) {
			fresh := d.StagedCAPK == nil
			if fresh {
				d.StagedCAPK = &CAPKStage{}
			}
			st := d.StagedCAPK
			return &st.Listed, &st.ListDone, &st.Keys, fresh
		},
		drop: func(d *Downloads) { d.StagedCAPK = nil },
		list: func(ctx context.Context, r ListRequest) ([]CAPKID, bool, Ack, error) {
			res, err := f.Host.ListKeys(ctx, r)
			return res.Keys, res.More, Ack{RC: res.RC, Demand: res.Demand}, err
		},
		checkID: func(id CAPKID) error {
			if len(id.RID) != 5 {
				return fmt.Errorf("a listed key has a %d-byte RID", len(id.RID))
			}
			return nil
		},
		same: func(a, b CAPKID) bool { return bytes.Equal(a.RID, b.RID) && a.Index == b.Index },
		fetch: func(ctx context.Context, r AdminRequest, id CAPKID) (CAPK, Ack, error) {
			res, err := f.Host.FetchKey(ctx, KeyRequest{AdminRequest: r, Key: id})
			return res.Key, Ack{RC: res.RC, Demand: res.Demand}, err
		},
		check: func(id CAPKID, k CAPK) error {
			if !bytes.Equal(k.RID, id.RID) || k.Index != id.Index {
				return stepErr("E_DOWNLOAD_DATA", fmt.Errorf("asked for key %s, got %s", id, k.ID()), textCAPK)
			}
			if err := k.Verify(); err != nil {
				return stepErr("E_CAPK_CHECKSUM", err, id.String())
			}
			return nil
		},
		end: f.Host.EndKeys,
		activate: func(d *Downloads, cp *Checkpoint, keys []CAPK) {
			d.CAPKs, d.CAPKAt, d.StagedCAPK = keys, f.now(), nil
			cp.CAPK = &DownloadRecord{Count: len(d.CAPKs), At: d.CAPKAt}
		},
	}.run(ctx, f, cp)
}

// downloadApps downloads the IC parameters of each application the host
// lists.
func (f *Flow) downloadApps(ctx context.Context, cp *Checkpoint) error {
	f.show(ctx, Screen{Title: "下载参数 IC PARAMS", Lines: []string{"下载IC卡参数 Loading IC parameters"}})
	return listDownload[[]byte, AppParams]{
		what: textApps, from: "ic-params", noun: "applications",
		stage: func(d *Downloads) (*[][]byte, *bool, *[]AppParams, bool) {
			fresh := d.StagedApps == nil
			if fresh {
				d.StagedApps = &AppStage{}
			}
			st := d.StagedApps
			return &st.Listed, &st.ListDone, &st.Apps, fresh
		},
		drop: func(d *Downloads) { d.StagedApps = nil },
		list: func(ctx context.Context, r ListRequest) ([][]byte, bool, Ack, error) {
			res, err := f.Host.ListApps(ctx, r)
			return res.AIDs, res.More, Ack{RC: res.RC, Demand: res.Demand}, err
		},
		checkID: func(aid []byte) error {
			if len(aid) < 5 || len(aid) > 16 {
				return fmt.Errorf("a listed AID has %d bytes", len(aid))
			}
			return nil
		},
		same: bytes.Equal,
		fetch: func(ctx context.Context, r AdminRequest, aid []byte) (AppParams, Ack, error) {
			res, err := f.Host.FetchApp(ctx, AppRequest{AdminRequest: r, AID: aid})
			return res.App, Ack{RC: res.RC, Demand: res.Demand}, err
		},
		check: func(aid []byte, app AppParams) error {
			if !bytes.Equal(app.AID, aid) {
				return stepErr("E_DOWNLOAD_DATA", fmt.Errorf("asked for AID %X, got %X", aid, app.AID), textApps)
			}
			return nil
		},
		end: f.Host.EndApps,
		activate: func(d *Downloads, cp *Checkpoint, apps []AppParams) {
			d.Apps, d.AppsAt, d.StagedApps = apps, f.now(), nil
			cp.Apps = &DownloadRecord{Count: len(d.Apps), At: d.AppsAt}
		},
	}.run(ctx, f, cp)
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
func batchTxns(cp *Checkpoint, card pan.PAN) []BatchUpload {
	var out []BatchUpload
	if cp.Sale != nil {
		out = append(out, BatchUpload{Txn: *cp.Sale, Kind: "sale", Card: card})
	}
	if cp.Void != nil {
		out = append(out, BatchUpload{Txn: *cp.Void, Kind: "void", Card: card})
	}
	return out
}

// salePAN opens the sale's sealed PAN for the batch upload: zero when there
// is none or it does not open (the host then gets the record without it,
// or refuses it, rather than no upload at all).
func (f *Flow) salePAN(cp *Checkpoint) pan.PAN {
	s := f.sealer()
	if cp.Sale == nil || len(cp.Sale.SealedPAN) == 0 || s == nil {
		return pan.PAN{}
	}
	p, err := s.OpenPAN(cp.Sale.SealedPAN, sealContext(f.term(cp), InFlight{Kind: "sale", STAN: cp.Sale.STAN, Batch: cp.Sale.Batch}))
	if err != nil {
		f.Log.Warn("the sale's sealed PAN does not open; uploading without it", "stan", cp.Sale.STAN, "err", err)
		return pan.PAN{}
	}
	return p
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
	if err := f.uploadChip(hctx, cp, st); err != nil {
		return err
	}
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
			txns = batchTxns(cp, f.salePAN(cp))
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
	// The batch is closed: nothing needs the card number any more.
	cp.Sale.SealedPAN = nil
	return f.save(cp)
}

// uploadChip sends, before the settlement itself, what the issuer needs of
// the batch's chip sale: its TC (0320, the profile's IC batch code) and,
// when issuer scripts ran on the card, their results (0620). Public
// UnionPay terminals upload IC transactions before they settle
// (PROTOCOLS.md, the install procedure, step 10). Each is recorded once the
// host acknowledged it; one sent again after a power cut is the same record
// and changes nothing at the host.
func (f *Flow) uploadChip(ctx context.Context, cp *Checkpoint, st *SettleRecord) error {
	ic := cp.Sale.IC
	if ic == nil || st.Answered {
		return nil
	}
	// send runs one of them unless its record says it went up: the
	// request, the host's code, the record, in that order.
	send := func(due bool, done *bool, what Text, kind string, call func(AdminRequest) (Ack, error)) error {
		if !due || *done {
			return nil
		}
		req, err := f.adminReq(cp)
		if err != nil {
			return err
		}
		req.Batch = st.Batch
		ack, err := call(req)
		if err != nil {
			return f.adminErr(cp, what, err)
		}
		f.noteDemand(cp, ack.Demand, kind)
		if err := f.adminRC(cp, what, ack.RC); err != nil {
			return err
		}
		*done = true
		return f.save(cp)
	}
	card := f.salePAN(cp)
	if err := send(ic.TC != "", &st.TCUploaded, textTCUpload, "tc-upload", func(req AdminRequest) (Ack, error) {
		return f.Host.UploadTC(ctx, TCUpload{AdminRequest: req, Txn: *cp.Sale, Card: card})
	}); err != nil {
		return err
	}
	return send(ic.Scripts != "", &st.ScriptsNotified, textScripts, "script-result", func(req AdminRequest) (Ack, error) {
		return f.Host.NotifyScripts(ctx, ScriptNotice{AdminRequest: req, Txn: *cp.Sale, Card: card})
	})
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
	if cp.SignOn.Batch == cp.Settlement.Batch {
		// No host opens a batch it has just closed: an answer naming the
		// settled batch is an old one (a replayed 0810 matches a sign-on's
		// fields and carries keys the TMK still opens). Its keys are not
		// used; the retry signs on again.
		cp.KeysStale = true
		if err := f.save(cp); err != nil {
			return err
		}
		return stepErr("E_BATCH_REOPENED", nil, cp.Settlement.Batch)
	}
	if cp.SignOn.Batch != want {
		// The terminal adopts the host's batch (60.2 of the answer).
		f.Log.Warn("host opened another batch than the one after the settled batch", "want", want, "host", cp.SignOn.Batch)
	}
	b := *cp.SignOn
	cp.Business = &b
	return f.save(cp)
}
