package provisioning_test

import (
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"errors"
	"fmt"
	"time"

	"github.com/posagent/posagent/provisioning"
)

// The fake host's side of the acquirer's procedure: a small CA key list
// (real checksums over deterministic moduli), the UnionPay debit and credit
// applications, terminal parameters, a settlement that compares the
// terminal's totals with the fake's own book, batch upload and sign-off.

var _ provisioning.AcquirerProcedure = (*fakeHost)(nil)

// procedureState is the fake host's procedure knobs and record; fakeHost.mu
// guards it.
type procedureState struct {
	batch string // the open batch; settlement opens the next
	// oldSignOns answers that many sign-ons after settlement with the
	// settled batch: a replayed answer of an earlier sign-on.
	oldSignOns int
	capks      []provisioning.CAPK
	apps       []provisioning.AppParams
	pageSize   int
	params     provisioning.TerminalParams

	// demands are the demands of the next answers, per message kind
	// ("sign-on", "sale", "void", "capk-list", "capk", "capk-end",
	// "settlement" …), one per answer in order.
	demands map[string][]provisioning.Demand
	// unbalanced answers settlement as unbalanced on the domestic side;
	// netting is how the fake counts a voided sale (zero: gross).
	unbalanced bool
	netting    provisioning.Netting
	// badKey corrupts the checksum of the key at this position in the
	// list while badKeyTimes lasts.
	badKey, badKeyTimes int
	// onFetch runs before each key is answered with the number of keys
	// fetched so far (a test cancels the flow there: a power cut).
	onFetch func(n int)
	// endMAC fails the answer to the next CA key end message's MAC.
	endMAC bool
	// signOnIntegrity is the sign-on answers' integrity; zero keeps the
	// flow from setting its clock from them.
	signOnIntegrity provisioning.Integrity
	// hostNow, when set, is the host's time in sign-on answers;
	// zeroTimes leaves the sale and void answers without time (12/13).
	hostNow   time.Time
	zeroTimes bool

	// cutAt names a message kind and cutN which of them (1 = the first):
	// the host books it, then the power goes (cut) before its answer
	// reaches the terminal. lose instead loses that answer on the way
	// with the power on.
	cutAt string
	cutN  int
	cut   func()
	lose  bool
	// saleDeadline is how long the last sale's context had left.
	saleDeadline time.Duration

	msgs          []string // every procedure message, in order
	fetched       int      // keys answered
	settles       []provisioning.SettleRequest
	uploads       []provisioning.BatchUpload
	tcs           []provisioning.TCUpload
	scripts       []provisioning.ScriptNotice
	ends          []provisioning.BatchEnd
	statusUploads []provisioning.StatusUpload
	signOnBatches []string
}

func (p *procedureState) hostTime() time.Time {
	if !p.hostNow.IsZero() {
		return p.hostNow
	}
	return testNow
}

func (p *procedureState) answerTime() time.Time {
	if p.zeroTimes {
		return time.Time{}
	}
	return testNow
}

// demand takes the next demand queued for kind. h.mu must be held.
func (h *fakeHost) demand(kind string) provisioning.Demand {
	q := h.proc.demands[kind]
	if len(q) == 0 {
		return provisioning.DemandNone
	}
	h.proc.demands[kind] = q[1:]
	return q[0]
}

// demandNext queues d for the next answer to kind.
func (h *fakeHost) demandNext(kind string, d provisioning.Demand) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.proc.demands == nil {
		h.proc.demands = map[string][]provisioning.Demand{}
	}
	h.proc.demands[kind] = append(h.proc.demands[kind], d)
}

func (h *fakeHost) msgCount(kind string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, m := range h.proc.msgs {
		if m == kind {
			n++
		}
	}
	return n
}

// record books one procedure message; its STAN and batch go with the
// financial ones into sent.
func (h *fakeHost) record(kind string, r provisioning.AdminRequest) error {
	if h.down {
		return fmt.Errorf("fake host: connection refused: %w", provisioning.ErrNotSent)
	}
	h.proc.msgs = append(h.proc.msgs, kind)
	h.sent = append(h.sent, sentMsg{kind, r.STAN, r.Batch})
	return h.cutHere(kind)
}

// cutHere is the cut after the host booked a message of kind, if this is
// the one. h.mu must be held.
func (h *fakeHost) cutHere(kind string) error {
	if kind != h.proc.cutAt {
		return nil
	}
	n := 0
	for _, m := range h.proc.msgs {
		if m == kind {
			n++
		}
	}
	if kind == "sign-on" {
		n = h.signOns
	}
	if n != h.proc.cutN {
		return nil
	}
	if h.proc.lose {
		return errNoAnswer
	}
	if h.proc.cut != nil {
		h.proc.cut()
	}
	return errPowerCut
}

// testKey is a CA key with a deterministic modulus and its real checksum.
func testKey(index byte, bits int) provisioning.CAPK {
	k := provisioning.CAPK{RID: []byte{0xA0, 0, 0, 0x03, 0x33}, Index: index, Expiry: "20301231", HashAlgo: 1, KeyAlgo: 1,
		Exponent: []byte{0x03}}
	for seed := byte(0); len(k.Modulus) < bits/8; seed++ {
		sum := sha256.Sum256([]byte{index, seed})
		k.Modulus = append(k.Modulus, sum[:]...)
	}
	k.Modulus = k.Modulus[:bits/8]
	k.Modulus[0] |= 0x80
	h := sha1.New()
	h.Write(k.RID)
	h.Write([]byte{k.Index})
	h.Write(k.Modulus)
	h.Write(k.Exponent)
	k.Checksum = h.Sum(nil)
	return k
}

func testCAPKs() []provisioning.CAPK {
	return []provisioning.CAPK{testKey(0x02, 1024), testKey(0x03, 1152), testKey(0x04, 1408)}
}

func testApps() []provisioning.AppParams {
	app := func(aid []byte) provisioning.AppParams {
		return provisioning.AppParams{AID: aid, PartialMatch: true, Version: []byte{0x00, 0x30},
			TACDefault: []byte{0xD8, 0x40, 0x00, 0xA8, 0x00}, TACOnline: []byte{0xD8, 0x40, 0x04, 0xF8, 0x00},
			TACDenial: []byte{0x00, 0x10, 0x00, 0x00, 0x00}, MaxTargetPercent: 99, TargetPercent: 99, OnlinePIN: true}
	}
	return []provisioning.AppParams{app([]byte{0xA0, 0, 0, 0x03, 0x33, 0x01, 0x01, 0x01}), app([]byte{0xA0, 0, 0, 0x03, 0x33, 0x01, 0x01, 0x02})}
}

func (h *fakeHost) ListKeys(ctx context.Context, r provisioning.ListRequest) (provisioning.KeyList, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := h.record("capk-list", r.AdminRequest); err != nil {
		return provisioning.KeyList{}, err
	}
	var ids []provisioning.CAPKID
	end := min(r.From+h.proc.pageSize, len(h.proc.capks))
	for _, k := range h.proc.capks[min(r.From, end):end] {
		ids = append(ids, k.ID())
	}
	return provisioning.KeyList{RC: "00", Keys: ids, More: end < len(h.proc.capks), Demand: h.demand("capk-list")}, nil
}

func (h *fakeHost) FetchKey(ctx context.Context, r provisioning.KeyRequest) (provisioning.KeyResult, error) {
	h.mu.Lock()
	hook, n := h.proc.onFetch, h.proc.fetched
	h.mu.Unlock()
	if hook != nil {
		hook(n)
	}
	if err := ctx.Err(); err != nil {
		// The power went before the answer arrived.
		return provisioning.KeyResult{}, err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := h.record("capk", r.AdminRequest); err != nil {
		return provisioning.KeyResult{}, err
	}
	for i, k := range h.proc.capks {
		if string(k.RID) == string(r.Key.RID) && k.Index == r.Key.Index {
			h.proc.fetched++
			if i == h.proc.badKey && h.proc.badKeyTimes > 0 {
				h.proc.badKeyTimes--
				k.Checksum = append([]byte{}, k.Checksum...)
				k.Checksum[0] ^= 0xFF
			}
			return provisioning.KeyResult{RC: "00", Key: k, Demand: h.demand("capk")}, nil
		}
	}
	return provisioning.KeyResult{RC: "25"}, nil
}

func (h *fakeHost) EndKeys(ctx context.Context, r provisioning.AdminRequest) (provisioning.Ack, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := h.record("capk-end", r); err != nil {
		return provisioning.Ack{}, err
	}
	if h.proc.endMAC {
		h.proc.endMAC = false
		return provisioning.Ack{}, fmt.Errorf("fake host: field 64: %w", provisioning.ErrResponseMAC)
	}
	return provisioning.Ack{RC: "00", Demand: h.demand("capk-end")}, nil
}

func (h *fakeHost) ListApps(ctx context.Context, r provisioning.ListRequest) (provisioning.AppList, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := h.record("app-list", r.AdminRequest); err != nil {
		return provisioning.AppList{}, err
	}
	var aids [][]byte
	end := min(r.From+h.proc.pageSize, len(h.proc.apps))
	for _, a := range h.proc.apps[min(r.From, end):end] {
		aids = append(aids, a.AID)
	}
	return provisioning.AppList{RC: "00", AIDs: aids, More: end < len(h.proc.apps), Demand: h.demand("app-list")}, nil
}

func (h *fakeHost) FetchApp(ctx context.Context, r provisioning.AppRequest) (provisioning.AppResult, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := h.record("app", r.AdminRequest); err != nil {
		return provisioning.AppResult{}, err
	}
	for _, a := range h.proc.apps {
		if string(a.AID) == string(r.AID) {
			return provisioning.AppResult{RC: "00", App: a, Demand: h.demand("app")}, nil
		}
	}
	return provisioning.AppResult{RC: "25"}, nil
}

func (h *fakeHost) EndApps(ctx context.Context, r provisioning.AdminRequest) (provisioning.Ack, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := h.record("app-end", r); err != nil {
		return provisioning.Ack{}, err
	}
	return provisioning.Ack{RC: "00", Demand: h.demand("app-end")}, nil
}

func (h *fakeHost) TerminalParameters(ctx context.Context, r provisioning.AdminRequest) (provisioning.ParamsResult, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := h.record("terminal-params", r); err != nil {
		return provisioning.ParamsResult{}, err
	}
	return provisioning.ParamsResult{RC: "00", Params: h.proc.params, Demand: h.demand("terminal-params")}, nil
}

func (h *fakeHost) UploadStatus(ctx context.Context, r provisioning.StatusUpload) (provisioning.Ack, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := h.record("status-upload", r.AdminRequest); err != nil {
		return provisioning.Ack{}, err
	}
	h.proc.statusUploads = append(h.proc.statusUploads, r)
	return provisioning.Ack{RC: "00", Demand: h.demand("status-upload")}, nil
}

// Settle compares the terminal's totals with the fake's book, counted
// gross as public hosts do (netting says otherwise): a sale not reversed is
// a debit, its void a credit.
func (h *fakeHost) Settle(ctx context.Context, r provisioning.SettleRequest) (provisioning.SettleResult, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := h.record("settlement", r.AdminRequest); err != nil {
		return provisioning.SettleResult{}, err
	}
	h.proc.settles = append(h.proc.settles, r)
	if r.Batch != h.proc.batch {
		return provisioning.SettleResult{RC: "77"}, nil
	}
	var book provisioning.Totals
	for _, st := range h.sales {
		// The tests' sales are 0.01.
		switch {
		case st == "voided" && h.proc.netting == provisioning.NettingNet:
		case st == "voided":
			book.DebitCount++
			book.DebitAmount++
			book.CreditCount++
			book.CreditAmount++
		case st == "approved":
			book.DebitCount++
			book.DebitAmount++
		}
	}
	res := provisioning.SettleResult{RC: "00", DomesticBalanced: book == r.Domestic && !h.proc.unbalanced,
		ForeignBalanced: r.Foreign == provisioning.Totals{}, Demand: h.demand("settlement"), Time: testNow}
	next := fmt.Sprintf("%06d", atoiBatch(h.proc.batch)+1)
	h.proc.batch = next
	return res, nil
}

func atoiBatch(b string) int {
	n := 0
	for _, c := range b {
		n = n*10 + int(c-'0')
	}
	return n
}

func (h *fakeHost) UploadBatch(ctx context.Context, r provisioning.BatchUpload) (provisioning.Ack, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := h.record("batch-upload", r.AdminRequest); err != nil {
		return provisioning.Ack{}, err
	}
	h.proc.uploads = append(h.proc.uploads, r)
	return provisioning.Ack{RC: "00", Demand: h.demand("batch-upload")}, nil
}

func (h *fakeHost) UploadTC(ctx context.Context, r provisioning.TCUpload) (provisioning.Ack, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := h.record("tc-upload", r.AdminRequest); err != nil {
		return provisioning.Ack{}, err
	}
	h.proc.tcs = append(h.proc.tcs, r)
	return provisioning.Ack{RC: "00", Demand: h.demand("tc-upload")}, nil
}

func (h *fakeHost) NotifyScripts(ctx context.Context, r provisioning.ScriptNotice) (provisioning.Ack, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := h.record("script-result", r.AdminRequest); err != nil {
		return provisioning.Ack{}, err
	}
	h.proc.scripts = append(h.proc.scripts, r)
	return provisioning.Ack{RC: "00", Demand: h.demand("script-result")}, nil
}

func (h *fakeHost) EndBatchUpload(ctx context.Context, r provisioning.BatchEnd) (provisioning.Ack, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := h.record("batch-end", r.AdminRequest); err != nil {
		return provisioning.Ack{}, err
	}
	h.proc.ends = append(h.proc.ends, r)
	return provisioning.Ack{RC: "00", Demand: h.demand("batch-end")}, nil
}

func (h *fakeHost) SignOff(ctx context.Context, r provisioning.AdminRequest) (provisioning.Ack, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := h.record("sign-off", r); err != nil {
		return provisioning.Ack{}, err
	}
	return provisioning.Ack{RC: "00", Demand: h.demand("sign-off")}, nil
}

var errPowerCut = errors.New("power cut")
