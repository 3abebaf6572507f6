package inproc

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/posagent/posagent/agent/sim/ledger"
	"github.com/posagent/posagent/provisioning"
)

// The in-process host's side of the acquirer's procedure: the CA keys and
// IC parameters it serves, terminal parameters, status upload, settlement
// against its ledger, batch upload and sign-off. Each answer is booked
// before it is given, as sales are.

var _ provisioning.AcquirerProcedure = (*Host)(nil)

// listPage is how many entries one list answer carries: fewer than the
// lists hold, so that a terminal pages.
const listPage = 2

// DefaultTerminalParams are what the in-process host's terminal-parameter
// download sets: the acquirer's name for the demo merchant, which the slip
// prints from then on, the acquirer's timeout and reversal limit.
var DefaultTerminalParams = provisioning.TerminalParams{
	MerchantName: "上海示例便利店(银联模拟收单)", HostTimeout: 30 * time.Second, MaxReversals: 3,
	Other: map[string]string{"tpdu": "6000030000"},
}

// DemandNext makes the host's next answer to a message of kind (a ledger
// kind: ledger.KindSale, ledger.KindCAPKEnd …) carry demand d, the header's
// processing requirement; queued demands go out one per answer.
func (h *Host) DemandNext(kind string, d provisioning.Demand) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.demands == nil {
		h.demands = map[string][]provisioning.Demand{}
	}
	h.demands[kind] = append(h.demands[kind], d)
}

// demand takes the next demand queued for kind; h.mu is held.
func (h *Host) demand(kind string) provisioning.Demand {
	q := h.demands[kind]
	if len(q) == 0 {
		return provisioning.DemandNone
	}
	h.demands[kind] = q[1:]
	return q[0]
}

// answer books one procedure message and takes its demand.
func (h *Host) answer(ctx context.Context, e ledger.Entry) (provisioning.Demand, error) {
	if err := h.check(ctx); err != nil {
		return 0, err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if e.Event == "" {
		e.Event = ledger.EventAnswered
	}
	e.Time = h.Clock.Now()
	if err := h.book(e); err != nil {
		return 0, err
	}
	return h.demand(e.Kind), nil
}

// ListKeys lists the CA keys, listPage at a time.
func (h *Host) ListKeys(ctx context.Context, r provisioning.ListRequest) (provisioning.KeyList, error) {
	d, err := h.answer(ctx, ledger.Entry{Kind: ledger.KindCAPKList, TID: r.Terminal.TID, STAN: r.STAN, Batch: r.Batch})
	if err != nil {
		return provisioning.KeyList{}, err
	}
	keys := DemoCAPKs()
	var ids []provisioning.CAPKID
	end := min(max(r.From, 0)+listPage, len(keys))
	for _, k := range keys[min(max(r.From, 0), end):end] {
		ids = append(ids, k.ID())
	}
	return provisioning.KeyList{RC: "00", Keys: ids, More: end < len(keys), Demand: d}, ctx.Err()
}

// FetchKey answers one CA key. It pauses ("host.capk") at the second key:
// a terminal stopped there holds some keys, not all, and not the end.
func (h *Host) FetchKey(ctx context.Context, r provisioning.KeyRequest) (provisioning.KeyResult, error) {
	d, err := h.answer(ctx, ledger.Entry{Kind: ledger.KindCAPK, TID: r.Terminal.TID, STAN: r.STAN, Batch: r.Batch, Item: r.Key.String()})
	if err != nil {
		return provisioning.KeyResult{}, err
	}
	for i, k := range DemoCAPKs() {
		if bytes.Equal(k.RID, r.Key.RID) && k.Index == r.Key.Index {
			if i == 1 {
				h.Pauses.Point(ctx, "host.capk")
			}
			return provisioning.KeyResult{RC: "00", Key: k, Demand: d}, ctx.Err()
		}
	}
	return provisioning.KeyResult{RC: "25", Demand: d}, ctx.Err() // no such key
}

// EndKeys acknowledges the end of the key download.
func (h *Host) EndKeys(ctx context.Context, r provisioning.AdminRequest) (provisioning.Ack, error) {
	d, err := h.answer(ctx, ledger.Entry{Kind: ledger.KindCAPKEnd, TID: r.Terminal.TID, STAN: r.STAN, Batch: r.Batch, RC: "00"})
	if err != nil {
		return provisioning.Ack{}, err
	}
	h.Pauses.Point(ctx, "host.capk-end")
	return provisioning.Ack{RC: "00", Demand: d, Time: h.Clock.Now()}, ctx.Err()
}

// ListApps lists the applications it has IC parameters for.
func (h *Host) ListApps(ctx context.Context, r provisioning.ListRequest) (provisioning.AppList, error) {
	d, err := h.answer(ctx, ledger.Entry{Kind: ledger.KindAppList, TID: r.Terminal.TID, STAN: r.STAN, Batch: r.Batch})
	if err != nil {
		return provisioning.AppList{}, err
	}
	apps := DemoApps()
	var aids [][]byte
	end := min(max(r.From, 0)+listPage, len(apps))
	for _, a := range apps[min(max(r.From, 0), end):end] {
		aids = append(aids, a.AID)
	}
	return provisioning.AppList{RC: "00", AIDs: aids, More: end < len(apps), Demand: d}, ctx.Err()
}

// FetchApp answers one application's IC parameters; it pauses
// ("host.ic-params") at the second, as FetchKey does.
func (h *Host) FetchApp(ctx context.Context, r provisioning.AppRequest) (provisioning.AppResult, error) {
	d, err := h.answer(ctx, ledger.Entry{Kind: ledger.KindApp, TID: r.Terminal.TID, STAN: r.STAN, Batch: r.Batch, Item: fmt.Sprintf("%X", r.AID)})
	if err != nil {
		return provisioning.AppResult{}, err
	}
	for i, a := range DemoApps() {
		if bytes.Equal(a.AID, r.AID) {
			if i == 1 {
				h.Pauses.Point(ctx, "host.ic-params")
			}
			return provisioning.AppResult{RC: "00", App: a, Demand: d}, ctx.Err()
		}
	}
	return provisioning.AppResult{RC: "25", Demand: d}, ctx.Err()
}

// EndApps acknowledges the end of the IC parameter download.
func (h *Host) EndApps(ctx context.Context, r provisioning.AdminRequest) (provisioning.Ack, error) {
	d, err := h.answer(ctx, ledger.Entry{Kind: ledger.KindAppEnd, TID: r.Terminal.TID, STAN: r.STAN, Batch: r.Batch, RC: "00"})
	if err != nil {
		return provisioning.Ack{}, err
	}
	h.Pauses.Point(ctx, "host.ic-params-end")
	return provisioning.Ack{RC: "00", Demand: d, Time: h.Clock.Now()}, ctx.Err()
}

// TerminalParameters answers Params (DefaultTerminalParams unless a test
// set others).
func (h *Host) TerminalParameters(ctx context.Context, r provisioning.AdminRequest) (provisioning.ParamsResult, error) {
	d, err := h.answer(ctx, ledger.Entry{Event: ledger.EventDownloaded, Kind: ledger.KindTermParams, TID: r.Terminal.TID, STAN: r.STAN, Batch: r.Batch, Count: 3})
	if err != nil {
		return provisioning.ParamsResult{}, err
	}
	h.Pauses.Point(ctx, "host.terminal-params")
	return provisioning.ParamsResult{RC: "00", Params: h.Params, Demand: d}, ctx.Err()
}

// UploadStatus takes the terminal's status.
func (h *Host) UploadStatus(ctx context.Context, r provisioning.StatusUpload) (provisioning.Ack, error) {
	d, err := h.answer(ctx, ledger.Entry{Event: ledger.EventStatusUploaded, Kind: ledger.KindStatus, TID: r.Terminal.TID, STAN: r.STAN, Batch: r.Batch})
	if err != nil {
		return provisioning.Ack{}, err
	}
	h.Pauses.Point(ctx, "host.status-upload")
	return provisioning.Ack{RC: "00", Demand: d, Time: h.Clock.Now()}, ctx.Err()
}

// domestic is a UnionPay card by its masked number (62 BIN): the host
// totals domestic and foreign cards apart, as field 48 does.
func domestic(masked string) bool { return strings.HasPrefix(masked, "62") }

// BatchTotals are the host's totals of tid's batch from its ledger, counted
// as netting says (provisioning.NettingGross: an approved sale is a debit
// and a void of it a credit; NettingNet: a voided sale and its void count on
// neither side). A reversal undoes its message altogether.
func BatchTotals(led []ledger.Entry, tid, batch string, netting provisioning.Netting) (dom, foreign provisioning.Totals) {
	type txn struct {
		e        ledger.Entry
		reversed bool
		voidedBy int // the standing void's STAN
	}
	sales, voids := map[int]*txn{}, map[int]*txn{}
	var order []*txn
	for _, e := range led {
		if e.TID != tid || e.Batch != batch {
			continue
		}
		switch {
		case e.Event == ledger.EventApproved && e.Kind == ledger.KindSale:
			t := &txn{e: e}
			sales[e.STAN] = t
			order = append(order, t)
		case e.Event == ledger.EventVoided:
			t := &txn{e: e}
			voids[e.STAN] = t
			order = append(order, t)
			if s := sales[e.OrigSTAN]; s != nil {
				s.voidedBy = e.STAN
			}
		case e.Event == ledger.EventReversed && e.Kind == ledger.KindSale:
			if s := sales[e.STAN]; s != nil {
				s.reversed = true
			}
		case e.Event == ledger.EventReversed && e.Kind == ledger.KindVoid:
			if v := voids[e.STAN]; v != nil && !v.reversed {
				v.reversed = true
				if s := sales[v.e.OrigSTAN]; s != nil && s.voidedBy == e.STAN {
					s.voidedBy = 0 // the sale stands again
				}
			}
		}
	}
	for _, t := range order {
		if t.reversed {
			continue
		}
		side := &foreign
		if domestic(t.e.Card) {
			side = &dom
		}
		switch {
		case t.e.Kind == ledger.KindSale && (netting != provisioning.NettingNet || t.voidedBy == 0):
			side.DebitCount++
			side.DebitAmount += t.e.Amount
		case t.e.Kind == ledger.KindVoid && netting != provisioning.NettingNet:
			side.CreditCount++
			side.CreditAmount += t.e.Amount
		}
	}
	return dom, foreign
}

func ledgerTotals(t provisioning.Totals) ledger.Totals {
	return ledger.Totals{DebitCount: t.DebitCount, DebitAmount: t.DebitAmount, CreditCount: t.CreditCount, CreditAmount: t.CreditAmount}
}

// openBatch is tid's open batch: 000001, and one more per batch settled.
// h.mu is held.
func (h *Host) openBatch(tid string) string {
	n := 1
	for _, e := range h.ledger.Entries() {
		if e.Event == ledger.EventSettled && e.TID == tid {
			n++
		}
	}
	return fmt.Sprintf("%06d", n)
}

// settled reports whether tid's batch is closed; h.mu is held.
func (h *Host) settled(tid, batch string) (ledger.Entry, bool) {
	for _, e := range h.ledger.Entries() {
		if e.Event == ledger.EventSettled && e.TID == tid && e.Batch == batch {
			return e, true
		}
	}
	return ledger.Entry{}, false
}

// Settle closes the batch: it compares the terminal's totals with its
// ledger's and says, side by side, whether they agree. A settlement sent
// again for the batch it closed (the terminal never saw the first answer)
// gets the same answer and closes nothing more.
func (h *Host) Settle(ctx context.Context, r provisioning.SettleRequest) (provisioning.SettleResult, error) {
	if err := h.check(ctx); err != nil {
		return provisioning.SettleResult{}, err
	}
	h.mu.Lock()
	netting := h.Netting
	if netting == "" {
		netting = provisioning.NettingGross
	}
	dom, foreign := BatchTotals(h.ledger.Entries(), r.Terminal.TID, r.Batch, netting)
	res := provisioning.SettleResult{RC: "00", DomesticBalanced: dom == r.Domestic, ForeignBalanced: foreign == r.Foreign,
		Time: h.Clock.Now()}
	st := &ledger.Settlement{Host: ledgerTotals(dom), Terminal: ledgerTotals(r.Domestic), TerminalForeign: ledgerTotals(r.Foreign),
		Netting: string(netting)}
	e := ledger.Entry{Event: ledger.EventSettled, Kind: ledger.KindSettlement, TID: r.Terminal.TID, MID: r.Terminal.MID, STAN: r.STAN,
		Batch: r.Batch, Amount: dom.DebitAmount - dom.CreditAmount, Settlement: st, Time: res.Time}
	prev, again := h.settled(r.Terminal.TID, r.Batch)
	switch {
	case again:
		e.Event = ledger.EventAnswered
		ok := prev.Settlement == nil || prev.Settlement.Balanced
		res.DomesticBalanced, res.ForeignBalanced = ok, ok
	case r.Batch != h.openBatch(r.Terminal.TID):
		res = provisioning.SettleResult{RC: "77", Time: res.Time} // not the batch it has open
		e.Event, e.RC = ledger.EventDeclined, "77"
	case h.Unbalance > 0:
		h.Unbalance--
		res.DomesticBalanced = false
	}
	st.Balanced = res.DomesticBalanced && res.ForeignBalanced
	st.Domestic, st.Foreign = flag(res.DomesticBalanced), flag(res.ForeignBalanced)
	if res.RC == "00" {
		n := 1
		fmt.Sscanf(r.Batch, "%d", &n)
		res.NextBatch = fmt.Sprintf("%06d", n%999999+1)
	}
	err := h.book(e)
	res.Demand = h.demand(ledger.KindSettlement)
	h.mu.Unlock()
	if err != nil {
		return provisioning.SettleResult{}, err
	}
	h.Pauses.Point(ctx, "host.settle")
	return res, ctx.Err()
}

// flag is field 48's verdict digit: 1 balanced, 2 not.
func flag(balanced bool) string {
	if balanced {
		return "1"
	}
	return "2"
}

// UploadBatch takes one transaction's record after an unbalanced
// settlement. It books the record, never a sale: nothing is charged.
// ("host.batch-upload" pauses only there, so only unbalanced runs reach it.)
func (h *Host) UploadBatch(ctx context.Context, r provisioning.BatchUpload) (provisioning.Ack, error) {
	d, err := h.answer(ctx, ledger.Entry{Kind: ledger.KindBatchRecord, TID: r.Terminal.TID, STAN: r.STAN, Batch: r.Batch,
		OrigSTAN: r.Txn.STAN, Amount: r.Txn.Amount, Card: r.Txn.Masked, Item: r.Kind})
	if err != nil {
		return provisioning.Ack{}, err
	}
	h.Pauses.Point(ctx, "host.batch-upload")
	return provisioning.Ack{RC: "00", Demand: d, Time: h.Clock.Now()}, ctx.Err()
}

// UploadTC takes a chip sale's TC before settlement. It books the record,
// never a sale: with the TC and its ATC when it is the sale's (a TC that
// verifies, of the amount and ATC of the approved sale Txn.STAN names);
// else as declined, 05 for a TC that is not the sale's, 25 for a sale it
// never approved. An upload without a TC is answered 30 and not booked.
func (h *Host) UploadTC(ctx context.Context, r provisioning.TCUpload) (provisioning.Ack, error) {
	if r.Txn.IC == nil || r.Txn.IC.TC == "" {
		return provisioning.Ack{RC: rcFormat, Time: h.Clock.Now()}, ctx.Err() // format error: no TC to book
	}
	if err := h.check(ctx); err != nil {
		return provisioning.Ack{}, err
	}
	h.mu.Lock()
	tc, atc, rc := h.checkTC(r)
	e := ledger.Entry{Event: ledger.EventAnswered, Kind: ledger.KindTCUpload, TID: r.Terminal.TID, STAN: r.STAN, Batch: r.Batch,
		OrigSTAN: r.Txn.STAN, Amount: r.Txn.Amount, Card: r.Txn.Masked, ATC: atc, Cryptogram: tc, Time: h.Clock.Now()}
	if rc != "00" {
		e.Event, e.RC = ledger.EventDeclined, rc
	}
	err := h.book(e)
	d := h.demand(ledger.KindTCUpload)
	h.mu.Unlock()
	if err != nil {
		return provisioning.Ack{}, err
	}
	h.Pauses.Point(ctx, "host.tc-upload")
	return provisioning.Ack{RC: rc, Demand: d, Time: e.Time}, ctx.Err()
}

// NotifyScripts takes the issuer script results of a chip sale.
func (h *Host) NotifyScripts(ctx context.Context, r provisioning.ScriptNotice) (provisioning.Ack, error) {
	d, err := h.answer(ctx, ledger.Entry{Kind: ledger.KindScriptResult, TID: r.Terminal.TID, STAN: r.STAN, Batch: r.Batch,
		OrigSTAN: r.Txn.STAN, Card: r.Txn.Masked})
	if err != nil {
		return provisioning.Ack{}, err
	}
	return provisioning.Ack{RC: "00", Demand: d, Time: h.Clock.Now()}, ctx.Err()
}

// EndBatchUpload acknowledges the batch upload's end.
func (h *Host) EndBatchUpload(ctx context.Context, r provisioning.BatchEnd) (provisioning.Ack, error) {
	d, err := h.answer(ctx, ledger.Entry{Kind: ledger.KindBatchEnd, TID: r.Terminal.TID, STAN: r.STAN, Batch: r.Batch, Count: r.Count})
	if err != nil {
		return provisioning.Ack{}, err
	}
	return provisioning.Ack{RC: "00", Demand: d, Time: h.Clock.Now()}, ctx.Err()
}

// SignOff ends the terminal's session.
func (h *Host) SignOff(ctx context.Context, r provisioning.AdminRequest) (provisioning.Ack, error) {
	d, err := h.answer(ctx, ledger.Entry{Event: ledger.EventSignedOff, Kind: ledger.KindSignOff, TID: r.Terminal.TID, STAN: r.STAN, Batch: r.Batch})
	if err != nil {
		return provisioning.Ack{}, err
	}
	h.Pauses.Point(ctx, "host.signoff")
	return provisioning.Ack{RC: "00", Demand: d, Time: h.Clock.Now()}, ctx.Err()
}
