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
// # The install procedure's lines
//
// Since the host simulator serves the whole install procedure, the ledger also
// books its management messages. They are new events and kinds with new
// fields, all omitted when empty, so a line of a sale reads as it always did
// and a reader that only knows sales, voids and reversals skips the rest by
// Event and Kind:
//
//	{"seq":1,"time":"2026-11-27T08:00:00Z","event":"downloaded","kind":"capk","tid":"12345678","mid":"898100012340001","batch":"000001","stan":7,"amount":0,"code":"371","codes":"unionpay","count":4}
//	{"seq":4,"time":"2026-11-27T08:00:00Z","event":"settled","kind":"settlement","tid":"12345678","mid":"898100012340001","batch":"000001","stan":10,"amount":0,"code":"201","codes":"unionpay","settlement":{"balanced":true,"domestic":"1","foreign":"1","host":{"debit_count":1,"debit_amount":1,"credit_count":1,"credit_amount":1},"terminal":{"debit_count":1,"debit_amount":1,"credit_count":1,"credit_amount":1},"terminal_foreign":{"debit_count":0,"debit_amount":0,"credit_count":0,"credit_amount":0},"sales":1,"voids":1,"reversed":0,"netting":"gross"}}
//	{"seq":5,"time":"2026-11-27T08:00:00Z","event":"batch-closed","kind":"batch-upload","tid":"12345678","mid":"898100012340001","batch":"000001","stan":11,"amount":0,"code":"207","codes":"unionpay","next_batch":"000002","settlement":{"balanced":true,...,"netting":"gross"}}
//	{"seq":6,"time":"2026-11-27T08:00:00Z","event":"signed-off","kind":"sign-off","tid":"12345678","mid":"898100012340001","batch":"000002","stan":12,"amount":0,"code":"002","codes":"unionpay"}
//
// Code is the 60.3 code the host answered with and Codes the name of its code
// table, so a test can tell which acquirer's codes were spoken. NextBatch is the
// batch the host moved the terminal to (after a batch upload ends, or at
// sign-off for hosts that advance there); replaying the ledger restores it.
//
// The in-process host (agent/sim/inproc) writes EventSettled and
// EventSignedOff lines too, and books every other message of the procedure
// (list pages, each key and application, the ends, batch upload records) as
// EventAnswered under kinds of its own. hostsim books a chip sale's TC
// upload and its issuer script results as EventAnswered lines too
// (KindTCUpload, KindScriptResult).
//
// # Chip sales
//
// The in-process host books a chip sale's ATC (9F36) on its line, a
// reversal's reason (field 39 as the terminal sent it) and, for an IC
// reversal, the ATC of its field 55 on the reversed line, and on each TC upload line (kind tc-upload, OrigSTAN the sale's)
// the TC and ATC it carried: a test ties each TC to its sale by them.
//
//	{"seq":9,"time":"2026-11-27T08:00:00Z","event":"approved","kind":"sale","tid":"10000001","mid":"","batch":"000001","stan":7,"amount":100,"card":"622202*********0128","rrn":"331008000007","auth_code":"055433","entry":"chip","atc":"0001"}
//	{"seq":14,"time":"2026-11-27T08:05:00Z","event":"answered","kind":"tc-upload","tid":"10000001","mid":"","batch":"000001","stan":12,"amount":100,"card":"622202*********0128","orig_stan":7,"atc":"0001","cryptogram":"1D2C3B4A59687786"}
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

	// EventSettled is a settlement (0500) the host answered: Settlement says
	// how its totals compared with the terminal's.
	EventSettled = "settled"
	// EventBatchClosed is the end of a batch upload (0320, 60.3 202 or 207):
	// the batch is closed, Settlement repeats the settlement's result with the
	// upload's counts.
	EventBatchClosed = "batch-closed"
	// EventSignedOff is a sign-off (0820, 60.3 002).
	EventSignedOff = "signed-off"
	// EventDownloaded is the end of a download the terminal asked for: CA
	// public keys (Kind KindCAPK), IC parameters (KindICParams) or terminal
	// parameters (KindTermParams); Count is how many items were served.
	EventDownloaded = "downloaded"
	// EventStatusUploaded is a terminal status upload (0820, 60.3 362);
	// Count is how many of its tags the host read.
	EventStatusUploaded = "status-uploaded"
	// EventAnswered is any other message of the procedure a host
	// answered (a list page, one key, a download's end, a batch upload
	// record, a settlement sent again, a TC upload, script results): what
	// it books changes no money.
	EventAnswered = "answered"
)

// Kinds: the message an entry is about.
const (
	KindSignOn   = "sign-on"
	KindSale     = "sale"
	KindVoid     = "void"
	KindReversal = "reversal" // only a declined reversal; a reversed entry has the original's kind

	KindSettlement  = "settlement"   // EventSettled
	KindBatchUpload = "batch-upload" // EventBatchClosed
	KindSignOff     = "sign-off"     // EventSignedOff
	KindCAPK        = "capk"         // EventDownloaded: IC public keys
	KindICParams    = "ic-params"    // EventDownloaded: IC (AID) parameters
	KindTermParams  = "term-params"  // EventDownloaded: terminal parameters
	KindStatus      = "status"       // EventStatusUploaded

	// The in-process host books every message of the procedure under a
	// kind of its own (EventAnswered): the list pages, each key and
	// application, the ends, each batch upload record (OrigSTAN the
	// record's transaction: it is no sale) and the batch upload's end.
	KindCAPKList    = "capk-list"
	KindCAPKEnd     = "capk-end"
	KindAppList     = "app-list"
	KindApp         = "app"
	KindAppEnd      = "app-end"
	KindBatchRecord = "batch-record"
	KindBatchEnd    = "batch-end"
	// KindTCUpload is a chip sale's TC sent before settlement, and
	// KindScriptResult the issuer script results of one (OrigSTAN the
	// sale's): records, not money.
	KindTCUpload     = "tc-upload"
	KindScriptResult = "script-result"
)

// Totals are one side of settlement field 48: debit and credit counts and
// amounts (minor units).
type Totals struct {
	DebitCount   int   `json:"debit_count"`
	DebitAmount  int64 `json:"debit_amount"`
	CreditCount  int   `json:"credit_count"`
	CreditAmount int64 `json:"credit_amount"`
}

// Settlement is the result of a settlement, on its EventSettled line and
// again on the EventBatchClosed line that ends its batch upload.
type Settlement struct {
	// Balanced is true when both sides balanced (60.3 207 closes the batch).
	Balanced bool `json:"balanced"`
	// Domestic and Foreign are the flags the host answered in field 48 for
	// domestic (内卡) and foreign (外卡) cards: "1" balanced, "2" not.
	Domestic string `json:"domestic"`
	Foreign  string `json:"foreign"`
	// Host is the host's own count of the batch (all its cards are domestic);
	// Terminal and TerminalForeign are what the terminal's field 48 claimed.
	Host            Totals `json:"host"`
	Terminal        Totals `json:"terminal"`
	TerminalForeign Totals `json:"terminal_foreign"`
	// Sales, Voids and Reversed count the batch's approved sales and voids
	// still standing and the messages a reversal undid.
	Sales    int `json:"sales"`
	Voids    int `json:"voids"`
	Reversed int `json:"reversed"`
	// Netting is how the host counted a voided sale: "gross" (the sale is a
	// debit and its void a credit) or "net" (neither counts).
	Netting string `json:"netting"`
	// Uploaded is the count the terminal's end of batch upload claimed
	// (its field 48), Received the detail records the host received and
	// Unmatched those of them it had no such approval for. On
	// EventBatchClosed only.
	Uploaded  int `json:"uploaded,omitempty"`
	Received  int `json:"received,omitempty"`
	Unmatched int `json:"unmatched,omitempty"`
}

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

	// Code is the 60.3 code the host answered a management message with,
	// Codes the name of the code table it took it from.
	Code  string `json:"code,omitempty"`
	Codes string `json:"codes,omitempty"`
	// NextBatch is the batch the host moved the terminal to.
	NextBatch string `json:"next_batch,omitempty"`
	// Count is the number of items of a download or status upload.
	Count int `json:"count,omitempty"`
	// Settlement is the result of a settlement (EventSettled,
	// EventBatchClosed).
	Settlement *Settlement `json:"settlement,omitempty"`
	// Item names what one message of a download answered (a CA key
	// "A000000333/03", an AID, a batch upload's record kind): the in-process
	// host books every message of the procedure, not only its end.
	Item string `json:"item,omitempty"`

	// Reason is field 39 of a reversal as the terminal sent it ("98" no
	// answer, "96" terminal fault, "06" the card refused an approval, "A0"
	// bad MAC).
	Reason string `json:"reason,omitempty"`
	// ATC is the chip's transaction counter (9F36, hex) of a chip sale,
	// of its reversal and of its TC upload, and Cryptogram the TC an
	// upload carried
	// (9F26, hex): together they tie a TC to the sale it proves. The
	// in-process host books them; neither is cardholder data.
	ATC        string `json:"atc,omitempty"`
	Cryptogram string `json:"cryptogram,omitempty"`
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

// Money is es without the install procedure's management lines: the
// sales, voids and reversals, in order.
func Money(es []Entry) []Entry {
	var out []Entry
	for _, e := range es {
		switch e.Kind {
		case KindSale, KindVoid, KindReversal:
			out = append(out, e)
		}
	}
	return out
}

// Entries returns a copy of what the ledger holds.
func (l *Ledger) Entries() []Entry {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Entry(nil), l.entries...)
}

// Close closes the file.
func (l *Ledger) Close() error { return l.f.Close() }
