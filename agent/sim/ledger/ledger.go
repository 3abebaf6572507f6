// Package ledger is the simulated acquirers' durable book of what they
// booked: the demo's in-process host (agent/sim/inproc) and the ISO 8583
// host simulator (agent/sim/hostsim) both keep one, and the tests that check
// "no sale charged twice" (agent/testkit/crashtest, the installer's and the
// commands' tests) read it.
//
// # On disk
//
// JSON lines: one Entry per line, UTF-8, each line ended by '\n', in the
// order booked, Seq counting from 1. An entry is written in one write and
// fsynced before the host answers, so an answer never claims what a crash
// would forget. Opening creates the file with mode 0600 and fsyncs its
// directory. Cards appear masked only.
//
//	{"seq":1,"time":"2026-11-27T08:00:00Z","event":"approved","kind":"sale","tid":"10000001","mid":"898310048160001","batch":"000001","stan":2,"amount":1,"card":"622202*********0128","rrn":"331009000002","auth_code":"015838","entry":"chip"}
//
// Entries of the acquirer's procedure (downloads, settlement, batch upload,
// sign-off: EventSettled, EventAnswered) were added later with fields of
// their own, all omitted when empty: an older reader sees lines it skips
// by their event, and every line it knew reads as before.
//
// # A torn tail
//
// A host killed mid-write leaves a last line without its '\n': that entry was
// never fsynced, so never answered, and the terminal will resend or reverse
// it. Read ignores such a tail and Open cuts it off, so the next entry starts
// a line of its own. Only the tail: a line ended by '\n' that does not parse
// is damage a crash cannot cause, and an error (ErrCorrupt) — a ledger is not
// guessed at.
package ledger

import (
	"bytes"
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

// Events: what the host did.
const (
	EventApproved = "approved" // the host approved a sale
	EventVoided   = "voided"   // the host approved a void of a sale (Kind "void", OrigSTAN the sale)
	EventReversed = "reversed" // a reversal undid an approved sale or void (Kind and STAN are the original's)
	// EventDeclined is a message the host refused, RC saying why: a sale
	// the issuer declined (card, PIN, ARQC or amount rule), or, in the
	// in-process host's ledger, a void or reversal with nothing to cancel
	// (hostsim answers those without a line).
	EventDeclined = "declined"
	EventSignedOn = "signed-on" // a sign-on (only the in-process host books them)
	// EventSettled is a batch the host closed (Kind KindSettlement): Count
	// and Amount are the host's own debit totals of it, Unbalanced says
	// the terminal's totals differed.
	EventSettled = "settled"
	// EventAnswered is any other message of the acquirer's procedure the
	// host answered (downloads, status upload, batch upload, sign-off, a
	// settlement sent again): what it books changes no money.
	EventAnswered = "answered"
)

// Kinds: the message an entry is about.
const (
	KindSignOn   = "sign-on"
	KindSale     = "sale"
	KindVoid     = "void"
	KindReversal = "reversal" // only a declined reversal; a reversed entry has the original's kind

	// The acquirer's procedure around the test sale.
	KindCAPKList    = "capk-list"
	KindCAPK        = "capk"
	KindCAPKEnd     = "capk-end"
	KindAppList     = "app-list"
	KindApp         = "app"
	KindAppEnd      = "app-end"
	KindTermParams  = "terminal-params"
	KindStatus      = "status-upload"
	KindSettlement  = "settlement"
	KindBatchUpload = "batch-upload" // OrigSTAN is the uploaded transaction's; it is no sale
	KindBatchEnd    = "batch-end"
	KindSignOff     = "sign-off"
)

// Entry is one line of the ledger. It holds the masked PAN only.
type Entry struct {
	Seq      int       `json:"seq"`
	Time     time.Time `json:"time"`
	Event    string    `json:"event"` // EventApproved, EventVoided, ...
	Kind     string    `json:"kind"`  // KindSale, KindVoid, ...
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
	// RC is the response code of a declined message.
	RC string `json:"rc,omitempty"`
	// Entry is how the card was read: chip, contactless, swipe, fallback or
	// keyed (from field 22 and 60.5).
	Entry string `json:"entry,omitempty"`
	// ByHand marks a reversal the acquirer's back office booked
	// (hostsim's CancelByHand), not one a terminal sent.
	ByHand bool `json:"by_hand,omitempty"`
	// Count is a settlement's debit count (Amount its amount); Unbalanced
	// marks one whose totals the terminal had otherwise; Item names what a
	// download answered (a CA key "A000000333/03", an AID).
	Count      int    `json:"count,omitempty"`
	Unbalanced bool   `json:"unbalanced,omitempty"`
	Item       string `json:"item,omitempty"`
}

// ErrCorrupt is wrapped by the error for a line that does not parse and is
// not the torn tail.
var ErrCorrupt = errors.New("ledger: corrupt")

// Ledger is an open ledger file, appended to by one host.
type Ledger struct {
	mu      sync.Mutex
	f       *os.File
	size    int64 // of the lines written whole
	entries []Entry
}

// Open opens the ledger at path, creating it (mode 0600) when it does not
// exist, reads what it holds and cuts off a torn tail.
func Open(path string) (*Ledger, error) {
	b, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("ledger: %w", err)
	}
	entries, good, err := parse(path, b)
	if err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, fmt.Errorf("ledger: %w", err)
	}
	if good < len(b) {
		if err := cut(f, int64(good)); err != nil {
			f.Close()
			return nil, fmt.Errorf("ledger: %s: cutting the torn tail: %w", path, err)
		}
	}
	// The file's creation must survive a power cut as much as its lines.
	if err := store.SyncDir(filepath.Dir(path)); err != nil {
		f.Close()
		return nil, fmt.Errorf("ledger: %w", err)
	}
	return &Ledger{f: f, size: int64(good), entries: entries}, nil
}

func cut(f *os.File, size int64) error {
	if err := f.Truncate(size); err != nil {
		return err
	}
	return f.Sync()
}

// Read returns the entries of the ledger at path, without a torn tail. It
// may run while a host appends: a line being written is a torn tail.
func Read(path string) ([]Entry, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("ledger: %w", err)
	}
	entries, _, err := parse(path, b)
	return entries, err
}

// parse decodes the lines of b; good is the length of the part ended by the
// last '\n', what follows it being the torn tail.
func parse(path string, b []byte) (entries []Entry, good int, err error) {
	good = bytes.LastIndexByte(b, '\n') + 1
	rest := b[:good]
	for n := 1; len(rest) > 0; n++ {
		line, tail, _ := bytes.Cut(rest, []byte("\n"))
		rest = tail
		var e Entry
		if err := json.Unmarshal(line, &e); err != nil {
			return nil, 0, fmt.Errorf("%w: %s line %d: %w", ErrCorrupt, path, n, err)
		}
		entries = append(entries, e)
	}
	return entries, good, nil
}

// Append numbers e (Seq), writes it and fsyncs, and returns it numbered.
// When that fails the entry is not booked, and what was written of it is
// cut off again (as far as the file lets it), so that a later entry does not
// follow a torn line.
func (l *Ledger) Append(e Entry) (Entry, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	e.Seq = len(l.entries) + 1
	b, err := json.Marshal(e)
	if err != nil {
		return e, fmt.Errorf("ledger: %w", err)
	}
	b = append(b, '\n')
	if _, err := l.f.Write(b); err != nil {
		cut(l.f, l.size)
		return e, fmt.Errorf("ledger: %w", err)
	}
	if err := l.f.Sync(); err != nil {
		cut(l.f, l.size)
		return e, fmt.Errorf("ledger: %w", err)
	}
	l.size += int64(len(b))
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
