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
	d, err := h.answer(ctx, ledger.Entry{Kind: ledger.KindTermParams, TID: r.Terminal.TID, STAN: r.STAN, Batch: r.Batch})
	if err != nil {
		return provisioning.ParamsResult{}, err
	}
	h.Pauses.Point(ctx, "host.terminal-params")
	return provisioning.ParamsResult{RC: "00", Params: h.Params, Demand: d}, ctx.Err()
}

// UploadStatus takes the terminal's status.
func (h *Host) UploadStatus(ctx context.Context, r provisioning.StatusUpload) (provisioning.Ack, error) {
	d, err := h.answer(ctx, ledger.Entry{Kind: ledger.KindStatus, TID: r.Terminal.TID, STAN: r.STAN, Batch: r.Batch})
	if err != nil {
		return provisioning.Ack{}, err
	}
	h.Pauses.Point(ctx, "host.status-upload")
	return provisioning.Ack{RC: "00", Demand: d, Time: h.Clock.Now()}, ctx.Err()
}

// domestic is a UnionPay card by its masked number (62 BIN): the host
// totals domestic and foreign cards apart, as field 48 does.
func domestic(masked string) bool { return strings.HasPrefix(masked, "62") }

// BatchTotals are the host's totals of tid's batch from its ledger: sales
// approved and neither voided (by a void not itself reversed) nor reversed,
// as settlement nets them.
func BatchTotals(led []ledger.Entry, tid, batch string) (dom, foreign provisioning.Totals) {
	standing := map[int]ledger.Entry{} // sale STAN → its approval
	voidOf := map[int]int{}            // void STAN → sale STAN
	for _, e := range led {
		if e.TID != tid || e.Batch != batch {
			continue
		}
		switch {
		case e.Event == ledger.EventApproved && e.Kind == ledger.KindSale:
			standing[e.STAN] = e
		case e.Event == ledger.EventVoided:
			if _, ok := standing[e.OrigSTAN]; ok {
				voidOf[e.STAN] = e.OrigSTAN
				delete(standing, e.OrigSTAN)
			}
		case e.Event == ledger.EventReversed && e.Kind == ledger.KindSale:
			delete(standing, e.STAN)
		case e.Event == ledger.EventReversed && e.Kind == ledger.KindVoid:
			// The void is undone: its sale stands again.
			if sale, ok := voidOf[e.STAN]; ok {
				for _, x := range led {
					if x.TID == tid && x.Batch == batch && x.Event == ledger.EventApproved && x.Kind == ledger.KindSale && x.STAN == sale {
						standing[sale] = x
					}
				}
				delete(voidOf, e.STAN)
			}
		}
	}
	for _, s := range standing {
		t := &foreign
		if domestic(s.Card) {
			t = &dom
		}
		t.DebitCount++
		t.DebitAmount += s.Amount
	}
	return dom, foreign
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
	dom, foreign := BatchTotals(h.ledger.Entries(), r.Terminal.TID, r.Batch)
	res := provisioning.SettleResult{RC: "00", DomesticBalanced: dom == r.Domestic, ForeignBalanced: foreign == r.Foreign,
		Time: h.Clock.Now()}
	e := ledger.Entry{Event: ledger.EventSettled, Kind: ledger.KindSettlement, TID: r.Terminal.TID, MID: r.Terminal.MID, STAN: r.STAN,
		Batch: r.Batch, Count: dom.DebitCount + foreign.DebitCount, Amount: dom.DebitAmount + foreign.DebitAmount, Time: res.Time}
	prev, again := h.settled(r.Terminal.TID, r.Batch)
	switch {
	case again:
		e.Event, e.Unbalanced = ledger.EventAnswered, prev.Unbalanced
		res.DomesticBalanced, res.ForeignBalanced = !prev.Unbalanced, !prev.Unbalanced
	case r.Batch != h.openBatch(r.Terminal.TID):
		res = provisioning.SettleResult{RC: "77", Time: res.Time} // not the batch it has open
		e.Event, e.RC = ledger.EventDeclined, "77"
	case h.Unbalance > 0:
		h.Unbalance--
		res.DomesticBalanced = false
	}
	if e.Event == ledger.EventSettled {
		e.Unbalanced = !res.DomesticBalanced || !res.ForeignBalanced
	}
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

// UploadBatch takes one transaction's record after an unbalanced
// settlement. It books the record, never a sale: nothing is charged.
// ("host.batch-upload" pauses only there, so only unbalanced runs reach it.)
func (h *Host) UploadBatch(ctx context.Context, r provisioning.BatchUpload) (provisioning.Ack, error) {
	d, err := h.answer(ctx, ledger.Entry{Kind: ledger.KindBatchUpload, TID: r.Terminal.TID, STAN: r.STAN, Batch: r.Batch,
		OrigSTAN: r.Txn.STAN, Amount: r.Txn.Amount, Card: r.Txn.Masked, Item: r.Kind})
	if err != nil {
		return provisioning.Ack{}, err
	}
	h.Pauses.Point(ctx, "host.batch-upload")
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
	d, err := h.answer(ctx, ledger.Entry{Kind: ledger.KindSignOff, TID: r.Terminal.TID, STAN: r.STAN, Batch: r.Batch})
	if err != nil {
		return provisioning.Ack{}, err
	}
	h.Pauses.Point(ctx, "host.signoff")
	return provisioning.Ack{RC: "00", Demand: d, Time: h.Clock.Now()}, ctx.Err()
}
