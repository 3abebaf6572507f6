package hostsim

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/moov-io/iso8583"

	"github.com/posagent/posagent/agent/acquirer"
	"github.com/posagent/posagent/agent/sim/ledger"
	"github.com/posagent/posagent/provisioning/pan"
)

// Netting is how settlement totals count a voided sale.
const (
	// NettingGross counts the voided sale as a debit and its void as a
	// credit, as every public source read here does: the terminal apps
	// LiaoYang_POS (Src/ChkOption.c ChkIfDebitTxn/ChkIfCreditTxn, the void a
	// credit; Src/posfiles.c ComputeTransTotal, the sale a debit whatever its
	// void flag) and the Nexgo template (ads-basic-app-print/src/settle.c
	// SettleGetTotalAmount), and the host ConardLKL/posp_server, whose debit
	// query takes sales in the voided state too
	// (TLogSettleFlowStatisticsMapper.xml, TRAN_FLAG IN (0,1,4,9)) and whose
	// credit query takes voids (TRAN_TYPE 23). A reversal undoes its message
	// altogether: neither side counts it.
	NettingGross = "gross"
	// NettingNet leaves a voided sale and its void out of both sides, as the
	// totals a terminal prints (sales "not counting voided ones") are made.
	// No public host was seen to settle so; it is here to see what a terminal
	// that sends printed totals meets.
	NettingNet = "net"
)

// Batch advance: when the host moves a terminal to its next batch.
const (
	// AdvanceAtSettlement moves it when the batch upload after the
	// settlement ends (202/207), as the terminal apps do their own batch
	// (LiaoYang_POS Src/tranproc.c AfterSettleTran after PosBatchUp).
	AdvanceAtSettlement = "settlement"
	// AdvanceAtSignOff moves it at sign-off, with a sign-off allowed one
	// batch either side of the host's, as the public POSP does
	// (ConardLKL/posp_server M_SignOutChecker, Pub_ValidCheck
	// isBatchNumberConsistent).
	AdvanceAtSignOff = "sign-off"
)

// settling is a terminal's batch between the settlement's answer and the end
// of its batch upload.
type settling struct {
	batch  string
	result ledger.Settlement
	// ended: the batch upload ended but the batch has not advanced yet (the
	// host advances at sign-off).
	ended bool
}

// nextBatch is the batch after b; 999999 wraps to 000001 (M_SignOutChecker).
func nextBatch(b string) string {
	n, err := strconv.Atoi(b)
	if err != nil || n >= 999999 {
		return "000001"
	}
	return fmt.Sprintf("%06d", n+1)
}

var errField48 = errors.New("hostsim: field 48 does not parse")

// parseTotals reads settlement field 48: for domestic and then foreign
// cards, debit amount (12), debit count (3), credit amount (12), credit count
// (3) and a flag digit the terminal sends as 0 (LiaoYang_POS PosSettleTran,
// the Nexgo template SettleSetField048): 62 digits. 31 digits, the domestic
// side alone, are read as no foreign cards.
func parseTotals(s string) (dom, foreign ledger.Totals, err error) {
	if (len(s) != 62 && len(s) != 31) || strings.Trim(s, "0123456789") != "" {
		return dom, foreign, errField48
	}
	side := func(p string) ledger.Totals {
		da, _ := strconv.ParseInt(p[0:12], 10, 64)
		dc, _ := strconv.Atoi(p[12:15])
		ca, _ := strconv.ParseInt(p[15:27], 10, 64)
		cc, _ := strconv.Atoi(p[27:30])
		return ledger.Totals{DebitCount: dc, DebitAmount: da, CreditCount: cc, CreditAmount: ca}
	}
	dom = side(s[:31])
	if len(s) == 62 {
		foreign = side(s[31:])
	}
	return dom, foreign, nil
}

func formatTotals(t ledger.Totals, flag string) string {
	return fmt.Sprintf("%012d%03d%012d%03d%s", t.DebitAmount%1e12, t.DebitCount%1000, t.CreditAmount%1e12, t.CreditCount%1000, flag)
}

// batchTotals is the host's own count of a terminal's batch.
func (s *Server) batchTotals(tid, batch string) ledger.Settlement {
	r := ledger.Settlement{Netting: s.cfg.Netting}
	for k, t := range s.txns {
		if k.tid != tid || k.batch != batch {
			continue
		}
		if t.reversed {
			r.Reversed++
			continue
		}
		switch t.e.Kind {
		case KindSale:
			r.Sales++
			if s.cfg.Netting == NettingGross || t.voidedBy == 0 {
				r.Host.DebitCount++
				r.Host.DebitAmount += t.e.Amount
			}
		case KindVoid:
			r.Voids++
			if s.cfg.Netting == NettingGross {
				r.Host.CreditCount++
				r.Host.CreditAmount += t.e.Amount
			}
		}
	}
	return r
}

// settle answers a settlement (0500): the terminal's totals of field 48
// against the host's count of the batch, each side answered balanced ('1',
// its totals echoed) or not ('2', the host's totals in their place), as
// ConardLKL/posp_server M_BatchSettlementChecker does. The host books only
// domestic cards, so the foreign side balances when the terminal has none.
func (s *Server) settle(m, resp *iso8583.Message, f60 acquirer.Field60, st *terminal, now time.Time) string {
	if f60.Code != s.cfg.Codes.Settle {
		return "12"
	}
	if f60.Batch != st.batch || st.settle != nil && st.settle.ended {
		return "77" // not the batch the host has open
	}
	dom, foreign, err := parseTotals(acquirer.Get(m, 48))
	if err != nil {
		return "30"
	}
	tid := acquirer.Get(m, 41)
	r := s.batchTotals(tid, f60.Batch)
	r.Terminal, r.TerminalForeign = dom, foreign
	r.Domestic, r.Foreign = "2", "2"
	domOut, forOut := r.Host, ledger.Totals{}
	if r.Host == dom {
		r.Domestic = "1"
	}
	if foreign == (ledger.Totals{}) {
		r.Foreign, forOut = "1", foreign
	}
	r.Balanced = r.Domestic == "1" && r.Foreign == "1"
	_ = acquirer.Set(resp, 48, formatTotals(domOut, r.Domestic)+formatTotals(forOut, r.Foreign))
	_ = acquirer.Set(resp, 15, now.Format("0102"))
	e := ledger.Entry{Time: now.UTC(), Event: ledger.EventSettled, Kind: ledger.KindSettlement, TID: tid,
		MID: acquirer.Get(m, 42), Batch: f60.Batch, STAN: atoi(acquirer.Get(m, 11)),
		Code: s.cfg.Codes.Settle, Codes: s.cfg.Codes.Name, Settlement: &r}
	if _, err := s.append(e); err != nil {
		return "96"
	}
	return "00"
}

// batchRecord is one magstripe transaction of a batch upload's field 48.
type batchRecord struct {
	foreign bool
	stan    int
	pan     string
	amount  int64
}

// parseBatch reads a magstripe batch upload's field 48: a 2-digit count and
// that many 40-digit records of card type ("00" domestic, "01" foreign),
// STAN (6), PAN right-aligned in 20 zero-filled digits and amount (12)
// (LiaoYang_POS BatchMagOnLineTrans, read so by ConardLKL/posp_server
// M_BatchSendChecker). At most 8 records fit the field.
func parseBatch(s string) ([]batchRecord, error) {
	if len(s) < 2 || strings.Trim(s, "0123456789") != "" {
		return nil, errField48
	}
	n, _ := strconv.Atoi(s[:2])
	if n < 1 || n > 8 || len(s) != 2+40*n {
		return nil, errField48
	}
	var out []batchRecord
	for i := range n {
		r := s[2+40*i : 2+40*(i+1)]
		if r[:2] != "00" && r[:2] != "01" {
			return nil, errField48
		}
		stan, _ := strconv.Atoi(r[2:8])
		p := strings.TrimLeft(r[8:28], "0")
		amount, _ := strconv.ParseInt(r[28:40], 10, 64)
		if len(p) < 12 {
			return nil, errField48
		}
		out = append(out, batchRecord{foreign: r[:2] == "01", stan: stan, pan: p, amount: amount})
	}
	return out, nil
}

// matches reports whether the host approved, unreversed, the message of
// the terminal's batch with this STAN, amount and PAN.
func (s *Server) matches(tid, batch string, stan int, amount int64, p string) bool {
	t := s.txns[txnKey{tid, batch, stan}]
	if t == nil || t.reversed || t.e.Amount != amount {
		return false
	}
	if p == "" {
		return true
	}
	if t.panMAC != nil {
		return string(s.panMAC(p)) == string(t.panMAC)
	}
	return pan.Mask(p) == t.e.Card
}

// batchUpload answers one batch upload message (0320): magstripe records in
// field 48, or one chip transaction (fields 2, 4, 11, and its TC set in 55
// as LiaoYang_POS BatchSendICCOnLineTrans sends it with 205 after an
// unbalanced settlement). The host counts what it received and what it has
// no approval for — a chip record whose 55 is not a TC of the approved
// sale among them; a TC that is the sale's it takes as a TC upload
// (TCUploads). The settlement's result does not change.
func (s *Server) batchUpload(m, resp *iso8583.Message, f60 acquirer.Field60, st *terminal, now time.Time) string {
	ic := false
	for _, c := range s.cfg.Codes.BatchIC {
		ic = ic || c == f60.Code
	}
	if !ic && f60.Code != s.cfg.Codes.BatchMag {
		return "12"
	}
	if f60.Batch != st.batch || st.settle != nil && st.settle.ended {
		return "77"
	}
	tid := acquirer.Get(m, 41)
	if ic {
		st.received++
		stan := atoi(acquirer.Get(m, 11))
		if !s.matches(tid, f60.Batch, stan, int64(atoi(acquirer.Get(m, 4))), acquirer.Get(m, 2)) {
			st.unmatched++
			return "00"
		}
		f55 := acquirer.GetBytes(m, 55)
		if f55 == nil {
			return "00"
		}
		t := s.txns[txnKey{tid, f60.Batch, stan}]
		if t.e.Kind != KindSale {
			st.unmatched++ // a TC is a sale's
			return "00"
		}
		r, rc := takeTC(t, f55, f60.Code)
		if rc != "" {
			st.unmatched++
			return "00"
		}
		return s.keepTC(t, r, m, now)
	}
	f48 := acquirer.Get(m, 48)
	recs, err := parseBatch(f48)
	if err != nil {
		return "30"
	}
	for _, r := range recs {
		st.received++
		if r.foreign || !s.matches(tid, f60.Batch, r.stan, r.amount, r.pan) {
			st.unmatched++
		}
	}
	_ = acquirer.Set(resp, 48, f48)
	return "00"
}

// batchEnd answers the end of a batch upload (0320, 202 or 207, field 48 the
// count uploaded in 4 digits): it must follow this batch's settlement and
// say what the settlement found (207 balanced, 202 not); a terminal that
// says otherwise is answered 12 and the batch stays open. The batch closes,
// and advances unless the host advances at sign-off.
func (s *Server) batchEnd(m, resp *iso8583.Message, f60 acquirer.Field60, st *terminal, now time.Time) (string, string) {
	if f60.Batch != st.batch {
		return "77", ""
	}
	if st.settle == nil || st.settle.ended {
		return "12", ""
	}
	want := s.cfg.Codes.BatchEndUnbalanced
	if st.settle.result.Balanced {
		want = s.cfg.Codes.BatchEndBalanced
	}
	if f60.Code != want {
		return "12", ""
	}
	f48 := acquirer.Get(m, 48)
	n, err := strconv.Atoi(f48)
	if err != nil || len(f48) != 4 {
		return "30", ""
	}
	r := st.settle.result
	r.Uploaded, r.Received, r.Unmatched = n, st.received, st.unmatched
	e := ledger.Entry{Time: now.UTC(), Event: ledger.EventBatchClosed, Kind: ledger.KindBatchUpload,
		TID: acquirer.Get(m, 41), MID: acquirer.Get(m, 42), Batch: f60.Batch, STAN: atoi(acquirer.Get(m, 11)),
		Code: f60.Code, Codes: s.cfg.Codes.Name, Settlement: &r}
	if s.cfg.BatchAdvance == AdvanceAtSettlement {
		e.NextBatch = nextBatch(f60.Batch)
	}
	if _, err := s.append(e); err != nil {
		return "96", ""
	}
	_ = acquirer.Set(resp, 48, f48)
	return "00", f60.Code
}
