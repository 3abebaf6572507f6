package hostsim

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/posagent/posagent/agent/store"
)

// Ledger events.
const (
	EventApproved = "approved" // the host approved a sale
	EventVoided   = "voided"   // the host approved a void of a sale (Kind "void", OrigSTAN the sale)
	EventReversed = "reversed" // a reversal undid an approved sale or void
	EventDeclined = "declined" // the issuer declined a sale (RC says why): card, PIN, ARQC or amount rule
)

// Entry is one line of the ledger. It holds the masked PAN only.
type Entry struct {
	Seq      int       `json:"seq"`
	Time     time.Time `json:"time"`
	Event    string    `json:"event"` // EventApproved, EventVoided, EventReversed or EventDeclined
	Kind     string    `json:"kind"`  // "sale" or "void"
	TID      string    `json:"tid"`
	MID      string    `json:"mid"`
	Batch    string    `json:"batch"`
	STAN     int       `json:"stan"`
	Amount   int64     `json:"amount"`
	Card     string    `json:"card,omitempty"` // masked
	RRN      string    `json:"rrn,omitempty"`
	AuthCode string    `json:"auth_code,omitempty"`
	// OrigSTAN is the sale a void cancels.
	OrigSTAN int `json:"orig_stan,omitempty"`
	// RC is the response code of a declined sale.
	RC string `json:"rc,omitempty"`
	// Entry is how the card was read: chip, contactless, swipe, fallback or
	// keyed (from field 22 and 60.5).
	Entry string `json:"entry,omitempty"`
	// ByHand marks a reversal the acquirer's back office booked
	// (CancelByHand), not one a terminal sent.
	ByHand bool `json:"by_hand,omitempty"`
}

// Ledger is a durable JSON-lines file: every entry is fsynced before the
// host answers, so an answer never claims what a crash would forget.
type Ledger struct {
	mu      sync.Mutex
	f       *os.File
	entries []Entry
}

// OpenLedger opens (creating, mode 0600) the ledger at path and reads what
// it holds. A line that does not parse is an error: a ledger is not guessed at.
func OpenLedger(path string) (*Ledger, error) {
	entries, err := ReadLedger(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, fmt.Errorf("hostsim: ledger: %w", err)
	}
	// The file's creation must survive a power cut as much as its lines.
	if err := store.SyncDir(filepath.Dir(path)); err != nil {
		f.Close()
		return nil, fmt.Errorf("hostsim: ledger: %w", err)
	}
	return &Ledger{f: f, entries: entries}, nil
}

// ReadLedger returns the entries of the ledger at path.
func ReadLedger(path string) ([]Entry, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("hostsim: ledger: %w", err)
	}
	defer f.Close()
	var out []Entry
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		var e Entry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			return nil, fmt.Errorf("hostsim: ledger line %d: %w", n, err)
		}
		out = append(out, e)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("hostsim: ledger: %w", err)
	}
	return out, nil
}

// Append numbers e, writes it and fsyncs.
func (l *Ledger) Append(e Entry) (Entry, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	e.Seq = len(l.entries) + 1
	b, err := json.Marshal(e)
	if err != nil {
		return e, fmt.Errorf("hostsim: ledger: %w", err)
	}
	if _, err := l.f.Write(append(b, '\n')); err != nil {
		return e, fmt.Errorf("hostsim: ledger: %w", err)
	}
	if err := l.f.Sync(); err != nil {
		return e, fmt.Errorf("hostsim: ledger: %w", err)
	}
	l.entries = append(l.entries, e)
	return e, nil
}

// Entries returns a copy of what the ledger holds.
func (l *Ledger) Entries() []Entry {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Entry(nil), l.entries...)
}

// Close closes the file.
func (l *Ledger) Close() error { return l.f.Close() }
