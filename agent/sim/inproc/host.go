package inproc

import (
	"context"
	"fmt"
	"sync"

	"github.com/posagent/posagent/agent/card/emv"
	"github.com/posagent/posagent/agent/sim/ledger"
	"github.com/posagent/posagent/provisioning"
)

// Host is an acquirer host that approves everything and books it in a ledger
// file (agent/sim/ledger: JSON lines, fsynced per entry) that outlives the
// agent process, so a crash test can check that no sale was charged twice.
// Unlike hostsim it books every message it answers: sign-ons, the
// acquirer's procedure (procedure.go), and the voids and reversals it
// refuses (EventDeclined), resent reversals included. Its batches are the
// ledger's: a settlement closes the open one, and sign-ons name the next.
type Host struct {
	Pauses *Pauses
	Clock  provisioning.Clock
	// Down makes every call fail as an unreachable host would.
	Down bool
	// Params are what the terminal-parameter download sends.
	Params provisioning.TerminalParams
	// Unbalance answers that many settlements as unbalanced (domestic
	// side), whatever the totals: a test's way to a batch upload.
	Unbalance int
	// Netting is how its settlement counts a voided sale; zero is
	// provisioning.NettingGross, what public hosts do.
	Netting provisioning.Netting
	// Issuer and Acquirer are the institution codes its approved sales and
	// voids name (field 44 of a real host's answer: the slip's 发卡行 and
	// 收单行); OpenHost sets DefaultIssuer and DefaultAcquirer, and empty
	// ones are a host that names none.
	Issuer, Acquirer string
	// BadARPC corrupts the ARPC of its chip approvals: the card's issuer
	// authentication fails and it refuses the approval (an AAC).
	BadARPC bool
	// IssuerScript adds an issuer script (72) to its chip approvals: the
	// card runs it after the second GENERATE AC, and the sale has script
	// results (DF31) to notify.
	IssuerScript bool

	mu      sync.Mutex // a void's or reversal's check and its booking are one step
	ledger  *ledger.Ledger
	demands map[string][]provisioning.Demand // DemandNext
}

var _ provisioning.Host = (*Host)(nil)

// The institution codes the simulated host names by default, in the form
// of UnionPay's 8-digit institution codes (the institution's four digits,
// then its region). The slip prints whatever a host sends; these only make
// the simulated slips show the lines.
const (
	DefaultIssuer   = "01040000"
	DefaultAcquirer = "48020000"
)

// OpenHost opens (or creates) the ledger at path.
func OpenHost(path string, clock provisioning.Clock) (*Host, error) {
	l, err := ledger.Open(path)
	if err != nil {
		return nil, fmt.Errorf("sim host: %w", err)
	}
	return &Host{Clock: clock, ledger: l, Params: DefaultTerminalParams, Issuer: DefaultIssuer, Acquirer: DefaultAcquirer}, nil
}

// Close closes the ledger.
func (h *Host) Close() error { return h.ledger.Close() }

func (h *Host) book(e ledger.Entry) error {
	if _, err := h.ledger.Append(e); err != nil {
		return fmt.Errorf("sim host: %w", err)
	}
	return nil
}

// errDown is what an unreachable host gives: the connection was never made,
// so nothing was sent (provisioning.ErrNotSent).
var errDown = fmt.Errorf("sim host: connection refused: %w", provisioning.ErrNotSent)

// inProcess is the integrity of this host's answers: no link lies between
// it and the flow, so nobody can have rewritten them.
const inProcess = provisioning.IntegrityAuthentic

func (h *Host) check(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if h.Down {
		return errDown
	}
	return nil
}

// SelfTest has nothing to test on a simulated link.
func (h *Host) SelfTest(ctx context.Context) error { return ctx.Err() }

// Echo answers when the host is up.
func (h *Host) Echo(ctx context.Context, t provisioning.Terminal) error {
	if err := h.check(ctx); err != nil {
		return err
	}
	h.Pauses.Point(ctx, "host.echo")
	return ctx.Err()
}

// SignOn approves and hands out the terminal's open batch (000001 until a
// settlement closes it) with keys that check, and its time: in process,
// nobody can have written it on the way. A sign-on after a settlement is
// the one for business: it pauses at "host.signon-business".
func (h *Host) SignOn(ctx context.Context, r provisioning.SignOnRequest) (provisioning.SignOnResult, error) {
	if err := h.check(ctx); err != nil {
		return provisioning.SignOnResult{}, err
	}
	now := h.Clock.Now()
	h.mu.Lock()
	batch := h.openBatch(r.Terminal.TID)
	err := h.book(ledger.Entry{Event: ledger.EventSignedOn, Kind: ledger.KindSignOn, TID: r.Terminal.TID, STAN: r.STAN, Batch: batch, Time: now})
	d := h.demand(ledger.KindSignOn)
	h.mu.Unlock()
	if err != nil {
		return provisioning.SignOnResult{}, err
	}
	if batch == "000001" {
		h.Pauses.Point(ctx, "host.signon")
	} else {
		h.Pauses.Point(ctx, "host.signon-business")
	}
	return provisioning.SignOnResult{RC: "00", Batch: batch, KeysOK: true, HostTime: now, Demand: d, Integrity: inProcess}, ctx.Err()
}

func (h *Host) rrn(stan int) string {
	// 12 digits: day of year, hour, and the STAN keep it unique per terminal.
	now := h.Clock.Now()
	return fmt.Sprintf("%03d%03d%06d", now.YearDay(), now.Hour(), stan)
}

// Sale books and approves the sale. A chip sale (the card's IC data set)
// is approved only when its ARQC verifies and covers the amount (else 05),
// and its approval carries the issuer's ARPC (91) for the card to check.
func (h *Host) Sale(ctx context.Context, r provisioning.SaleRequest) (provisioning.HostResponse, error) {
	if err := h.check(ctx); err != nil {
		return provisioning.HostResponse{}, err
	}
	resp := provisioning.HostResponse{RC: "00", RRN: h.rrn(r.STAN), AuthCode: fmt.Sprintf("%06d", (r.STAN*7919)%1000000), Time: h.Clock.Now(), Integrity: inProcess,
		Issuer: h.Issuer, Acquirer: h.Acquirer}
	h.mu.Lock()
	e := ledger.Entry{Event: ledger.EventApproved, Kind: ledger.KindSale, TID: r.Terminal.TID, STAN: r.STAN, Batch: r.Batch, Amount: r.Amount,
		Card: r.Card.PAN.Masked(), RRN: resp.RRN, AuthCode: resp.AuthCode, Time: resp.Time}
	decline := func(rc string) {
		resp = provisioning.HostResponse{RC: rc, Time: resp.Time, Integrity: inProcess}
		e.Event, e.RC, e.RRN, e.AuthCode = ledger.EventDeclined, rc, "", ""
	}
	var arqc []byte
	if r.Card.ICData != "" {
		var atc []byte
		var err error
		if arqc, atc, err = checkARQC(r); err != nil {
			decline(rcBadCryptogram)
		}
		e.Entry, e.ATC = "chip", emv.Hex(atc)
	}
	switch {
	case r.Batch != h.openBatch(r.Terminal.TID):
		// 77: the batch is not the one the host has open ("sign on again").
		decline("77")
	case resp.RC == "00" && arqc != nil:
		resp.ICData = h.issuerData(r.Card.PAN, arqc, resp.RC)
	}
	resp.Demand = h.demand(ledger.KindSale)
	err := h.book(e)
	h.mu.Unlock()
	if err != nil {
		return provisioning.HostResponse{}, err
	}
	h.Pauses.Point(ctx, "host.sale")
	return resp, ctx.Err()
}

// Void books the cancellation of an approved sale of the batch.
func (h *Host) Void(ctx context.Context, r provisioning.VoidRequest) (provisioning.HostResponse, error) {
	if err := h.check(ctx); err != nil {
		return provisioning.HostResponse{}, err
	}
	resp := provisioning.HostResponse{RC: "00", RRN: h.rrn(r.STAN), AuthCode: r.Orig.AuthCode, Time: h.Clock.Now(), Integrity: inProcess,
		Issuer: h.Issuer, Acquirer: h.Acquirer}
	h.mu.Lock()
	e := ledger.Entry{Event: ledger.EventVoided, Kind: ledger.KindVoid, TID: r.Terminal.TID, STAN: r.STAN, Batch: r.Batch, Amount: r.Orig.Amount,
		Card: r.Card.PAN.Masked(), RRN: resp.RRN, AuthCode: resp.AuthCode, OrigSTAN: r.Orig.STAN, Time: resp.Time}
	if Summarize(h.ledger.Entries()).Sales[r.Orig.STAN] != "approved" {
		resp.RC = "12" // invalid transaction: nothing approved to void
		resp.Issuer, resp.Acquirer = "", ""
		e.Event, e.RC = ledger.EventDeclined, resp.RC
	}
	resp.Demand = h.demand(ledger.KindVoid)
	err := h.book(e)
	h.mu.Unlock()
	if err != nil {
		return provisioning.HostResponse{}, err
	}
	h.Pauses.Point(ctx, "host.void")
	return resp, ctx.Err()
}

// Reverse undoes a sale or void it booked. A repeated reversal is answered 00
// again and changes nothing (the terminal may resend one it never saw answered);
// a message it never booked is answered 25.
func (h *Host) Reverse(ctx context.Context, r provisioning.ReversalRequest) (provisioning.HostResponse, error) {
	if err := h.check(ctx); err != nil {
		return provisioning.HostResponse{}, err
	}
	h.mu.Lock()
	rc := "25"
	for _, e := range h.ledger.Entries() {
		if booked(e) && e.Kind == r.Orig.Kind && e.STAN == r.Orig.STAN && e.TID == r.Terminal.TID {
			rc = "00"
		}
	}
	resp := provisioning.HostResponse{RC: rc, Time: h.Clock.Now(), Integrity: inProcess}
	// The reason is booked, not judged: whatever made the terminal give
	// up on the message (no answer, a fault, the card refusing an
	// approval), the original is undone the same way.
	// An IC reversal's ATC (from its field 55) is booked too, so a test
	// can tell the reversal carried the sale's chip data.
	reason := r.Reason
	if reason == "" {
		reason = r.Orig.Reason
	}
	e := ledger.Entry{Event: ledger.EventReversed, Kind: r.Orig.Kind, TID: r.Terminal.TID, STAN: r.Orig.STAN, Batch: r.Orig.Batch,
		Amount: r.Orig.Amount, OrigSTAN: r.Orig.OrigSTAN, Time: resp.Time, Reason: reason, ATC: reversalATC(r.Orig.IC)}
	if rc != "00" {
		e.Event, e.Kind, e.RC = ledger.EventDeclined, ledger.KindReversal, rc
	}
	resp.Demand = h.demand(ledger.KindReversal)
	err := h.book(e)
	h.mu.Unlock()
	if err != nil {
		return provisioning.HostResponse{}, err
	}
	h.Pauses.Point(ctx, "host.reversal")
	return resp, ctx.Err()
}

// Summary is the ledger's effect: each sale STAN is "approved", "voided" or
// "reversed"; Reversals counts the reversal messages booked per original;
// Messages counts the messages booked per kind (ledger.KindSignOn, KindSale,
// KindVoid, KindReversal), refused ones included. TCs are the TCs the
// host accepted by the sale STAN they named (hex 9F26; the last one when
// a terminal sent one again).
type Summary struct {
	Sales     map[int]string
	Reversals map[string]int // "sale/000007" -> count
	Messages  map[string]int
	TCs       map[int]string
}

// Outstanding is the number of sales still charged (approved, not voided or reversed).
func (s Summary) Outstanding() int {
	n := 0
	for _, st := range s.Sales {
		if st == "approved" {
			n++
		}
	}
	return n
}

// Count is the number of sales in state st.
func (s Summary) Count(st string) int {
	n := 0
	for _, v := range s.Sales {
		if v == st {
			n++
		}
	}
	return n
}

// booked is an approved sale or void: what a reversal can undo.
func booked(e ledger.Entry) bool {
	return e.Event == ledger.EventApproved || e.Event == ledger.EventVoided
}

// Summarize replays a ledger this host wrote.
func Summarize(led []ledger.Entry) Summary {
	s := Summary{Sales: map[int]string{}, Reversals: map[string]int{}, Messages: map[string]int{}, TCs: map[int]string{}}
	voided := map[int]int{} // live void STAN -> sale STAN
	reversed := map[string]bool{}
	for _, e := range led {
		if e.Event == ledger.EventReversed {
			s.Messages[ledger.KindReversal]++ // Kind is what it undid
		} else {
			s.Messages[e.Kind]++
		}
		if e.Kind == ledger.KindTCUpload && e.Event == ledger.EventAnswered {
			s.TCs[e.OrigSTAN] = e.Cryptogram
		}
		switch e.Event {
		case ledger.EventApproved:
			s.Sales[e.STAN] = "approved"
		case ledger.EventVoided:
			if s.Sales[e.OrigSTAN] == "approved" {
				s.Sales[e.OrigSTAN] = "voided"
				voided[e.STAN] = e.OrigSTAN
			}
		case ledger.EventReversed:
			key := fmt.Sprintf("%s/%06d", e.Kind, e.STAN)
			s.Reversals[key]++
			if reversed[key] {
				continue // a resent reversal changes nothing
			}
			reversed[key] = true
			switch e.Kind {
			case ledger.KindSale:
				if s.Sales[e.STAN] == "approved" {
					s.Sales[e.STAN] = "reversed"
				}
			case ledger.KindVoid:
				// The void is undone: its sale is charged again.
				if sale, ok := voided[e.STAN]; ok {
					s.Sales[sale] = "approved"
					delete(voided, e.STAN)
				}
			}
		}
	}
	return s
}
