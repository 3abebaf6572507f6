package inproc

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sync"
	"time"

	"github.com/posagent/posagent/provisioning"
)

// Entry is one line of the simulated host's ledger: what the acquirer booked.
// It holds the masked card number only.
type Entry struct {
	Op       string    `json:"op"`             // signon, sale, void, reversal
	Kind     string    `json:"kind,omitempty"` // what a reversal undoes: sale or void
	TID      string    `json:"tid"`
	STAN     int       `json:"stan"`
	Batch    string    `json:"batch,omitempty"`
	Amount   int64     `json:"amount,omitempty"`
	Card     string    `json:"card,omitempty"`
	RRN      string    `json:"rrn,omitempty"`
	OrigSTAN int       `json:"orig_stan,omitempty"`
	RC       string    `json:"rc"`
	Time     time.Time `json:"time"`
}

// Host is an acquirer host that approves everything and books it in a ledger
// file (JSON lines, fsynced per entry) that outlives the agent process, so a
// crash test can check that no sale was charged twice.
type Host struct {
	Pauses *Pauses
	Clock  provisioning.Clock
	// Down makes every call fail as an unreachable host would.
	Down bool

	path string
	mu   sync.Mutex
	f    *os.File
	led  []Entry
}

var _ provisioning.Host = (*Host)(nil)

// OpenHost opens (or creates) the ledger at path.
func OpenHost(path string, clock provisioning.Clock) (*Host, error) {
	led, err := ReadLedger(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, fmt.Errorf("sim host: %w", err)
	}
	return &Host{Clock: clock, path: path, f: f, led: led}, nil
}

// Close closes the ledger.
func (h *Host) Close() error { return h.f.Close() }

// ReadLedger parses a ledger file. A torn last line (the host process was killed
// mid-write) is ignored: it was never acknowledged to the terminal.
func ReadLedger(path string) ([]Entry, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var led []Entry
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var e Entry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			break
		}
		led = append(led, e)
	}
	return led, sc.Err()
}

func (h *Host) book(e Entry) error {
	b, err := json.Marshal(e)
	if err != nil {
		return err
	}
	if _, err := h.f.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("sim host: ledger: %w", err)
	}
	if err := h.f.Sync(); err != nil {
		return fmt.Errorf("sim host: ledger: %w", err)
	}
	h.led = append(h.led, e)
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

// SignOn approves and hands out batch 000001 with keys that check.
func (h *Host) SignOn(ctx context.Context, r provisioning.SignOnRequest) (provisioning.SignOnResult, error) {
	if err := h.check(ctx); err != nil {
		return provisioning.SignOnResult{}, err
	}
	now := h.Clock.Now()
	h.mu.Lock()
	err := h.book(Entry{Op: "signon", TID: r.Terminal.TID, STAN: r.STAN, Batch: "000001", RC: "00", Time: now})
	h.mu.Unlock()
	if err != nil {
		return provisioning.SignOnResult{}, err
	}
	h.Pauses.Point(ctx, "host.signon")
	return provisioning.SignOnResult{RC: "00", Batch: "000001", KeysOK: true, HostTime: now}, ctx.Err()
}

func (h *Host) rrn(stan int) string {
	// 12 digits: day of year, hour, and the STAN keep it unique per terminal.
	now := h.Clock.Now()
	return fmt.Sprintf("%03d%03d%06d", now.YearDay(), now.Hour(), stan)
}

// Sale books and approves the sale.
func (h *Host) Sale(ctx context.Context, r provisioning.SaleRequest) (provisioning.HostResponse, error) {
	if err := h.check(ctx); err != nil {
		return provisioning.HostResponse{}, err
	}
	resp := provisioning.HostResponse{RC: "00", RRN: h.rrn(r.STAN), AuthCode: fmt.Sprintf("%06d", (r.STAN*7919)%1000000), Time: h.Clock.Now(), Integrity: inProcess}
	h.mu.Lock()
	err := h.book(Entry{Op: "sale", TID: r.Terminal.TID, STAN: r.STAN, Batch: r.Batch, Amount: r.Amount,
		Card: r.Card.PAN.Masked(), RRN: resp.RRN, RC: resp.RC, Time: resp.Time})
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
	resp := provisioning.HostResponse{RC: "00", RRN: h.rrn(r.STAN), AuthCode: r.Orig.AuthCode, Time: h.Clock.Now(), Integrity: inProcess}
	h.mu.Lock()
	if Summarize(h.led).Sales[r.Orig.STAN] != "approved" {
		resp.RC = "12" // invalid transaction: nothing approved to void
	}
	err := h.book(Entry{Op: "void", TID: r.Terminal.TID, STAN: r.STAN, Batch: r.Batch, Amount: r.Orig.Amount,
		Card: r.Card.PAN.Masked(), RRN: resp.RRN, OrigSTAN: r.Orig.STAN, RC: resp.RC, Time: resp.Time})
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
	for _, e := range h.led {
		if e.Op == r.Orig.Kind && e.STAN == r.Orig.STAN && e.TID == r.Terminal.TID && e.RC == "00" {
			rc = "00"
		}
	}
	resp := provisioning.HostResponse{RC: rc, Time: h.Clock.Now(), Integrity: inProcess}
	err := h.book(Entry{Op: "reversal", Kind: r.Orig.Kind, TID: r.Terminal.TID, STAN: r.Orig.STAN, Batch: r.Orig.Batch,
		Amount: r.Orig.Amount, OrigSTAN: r.Orig.OrigSTAN, RC: rc, Time: resp.Time})
	h.mu.Unlock()
	if err != nil {
		return provisioning.HostResponse{}, err
	}
	h.Pauses.Point(ctx, "host.reversal")
	return resp, ctx.Err()
}

// Summary is the ledger's effect: each sale STAN is "approved", "voided" or
// "reversed"; Reversals counts the reversal messages booked per original.
type Summary struct {
	Sales     map[int]string
	Reversals map[string]int // "sale/000007" -> count
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

// Summarize replays a ledger.
func Summarize(led []Entry) Summary {
	s := Summary{Sales: map[int]string{}, Reversals: map[string]int{}}
	voided := map[int]int{} // live void STAN -> sale STAN
	reversed := map[string]bool{}
	for _, e := range led {
		if e.RC != "00" {
			continue
		}
		switch e.Op {
		case "sale":
			s.Sales[e.STAN] = "approved"
		case "void":
			if s.Sales[e.OrigSTAN] == "approved" {
				s.Sales[e.OrigSTAN] = "voided"
				voided[e.STAN] = e.OrigSTAN
			}
		case "reversal":
			key := fmt.Sprintf("%s/%06d", e.Kind, e.STAN)
			s.Reversals[key]++
			if reversed[key] {
				continue // a resent reversal changes nothing
			}
			reversed[key] = true
			switch e.Kind {
			case "sale":
				if s.Sales[e.STAN] == "approved" {
					s.Sales[e.STAN] = "reversed"
				}
			case "void":
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
