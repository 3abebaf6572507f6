package ticket

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sync"
	"time"

	"github.com/posagent/posagent/agent/central/trust"
	"github.com/posagent/posagent/agent/store"
)

// DefaultSkew is how far the terminal's clock may be off before a ticket is
// called expired or not yet valid: before sign-on the clock has not been set
// from the host. The floor gets no skew (trust.Window).
const DefaultSkew = 10 * time.Minute

// kind is what trust's checks of every signed payload need of a ticket.
var kind = trust.Kind{Noun: "ticket", DefaultSkew: DefaultSkew, Codes: trust.Codes{
	Unsigned: CodeUnsigned, BadSignature: CodeBadSignature, KeyRevoked: CodeKeyRevoked, UnknownKey: CodeUnknownKey,
	NotYetValid: CodeNotYetValid, Expired: CodeExpired,
}}

// DefaultMaxTestAmount is the cap on a ticket's test sale when none is
// configured: 1.00 CNY. The test sale is a real payment with the installer's
// card; a ticket asking for more is refused, however well signed.
const DefaultMaxTestAmount = 100

// Verifier checks tickets for one terminal and remembers (on disk) the last one
// it accepted, to refuse replays. Its methods are safe for concurrent use.
type Verifier struct {
	// Keys are central's verification keys (config: central.keys, revoked).
	Keys *trust.KeyRing
	// TID is this terminal.
	TID string
	// StatePath is the file that holds the last accepted ticket's issued_at,
	// nonce and digest (in the state directory). Required.
	StatePath string
	// Floor is the terminal's time floor (trust.Floor, in the state
	// directory): expiry is checked against it as well as the clock, and an
	// accepted ticket's issued_at raises it. Required.
	Floor *trust.Floor
	// MaxTestAmount caps test_amount, in fen; 0 means DefaultMaxTestAmount.
	MaxTestAmount int64
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Skew widens the clock's side of the validity window; 0 means DefaultSkew.
	Skew time.Duration

	mu sync.Mutex
}

// accepted is the persisted record of the last accepted ticket. Schema is a
// version for the file, so a later agent can read an older one.
type accepted struct {
	Schema   int       `json:"schema"`
	IssuedAt time.Time `json:"issued_at"`
	Nonce    string    `json:"nonce"`
	Digest   string    `json:"digest"`
}

// ErrCorruptState is wrapped when the replay state file exists but cannot be
// read: treating it as "never accepted one" would reopen the door to replays.
var ErrCorruptState = errors.New("ticket: replay state file is corrupt")

// Parse decodes a payload without checking anything but its form: at most
// MaxSize bytes, and strict JSON (trust.DecodeStrict: no duplicate or
// case-folded keys, no unknown keys, times as YYYY-MM-DDTHH:MM:SSZ).
func Parse(payload []byte) (Ticket, error) {
	if len(payload) > MaxSize {
		return Ticket{}, &Error{Code: CodeTooLarge, Message: fmt.Sprintf("the ticket is larger than %d bytes", MaxSize)}
	}
	var t Ticket
	if err := trust.DecodeStrict(payload, &t); err != nil {
		var je *trust.JSONError
		if errors.As(err, &je) {
			return Ticket{}, &Error{Code: CodeMalformed, Message: je.Msg}
		}
		return Ticket{}, &Error{Code: CodeMalformed, Message: "not a JSON ticket object"}
	}
	return t, nil
}

// Check verifies payload completely, except that it does not record it: form,
// signature, terminal, validity window, test amount and replay against the
// last accepted. Redelivery of exactly the last accepted ticket passes (see
// Accept).
func (v *Verifier) Check(payload []byte) (Ticket, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.checkLocked(payload)
}

// Accept is Check followed by recording the ticket as the last accepted and
// raising the time floor to its issued_at, durably, before it returns: a
// restart must not forget it.
//
// The very ticket that was accepted last is accepted again (same signed bytes):
// the parameters step runs again after a crash (the resume table re-runs it),
// and the retained ticket is all there is to run it with; giving the terminal
// a record it already has is no attack. Anything else not strictly newer
// (issued_at) than that ticket is E_TICKET_SUPERSEDED, and a newer one with
// the same nonce E_TICKET_REPLAYED.
func (v *Verifier) Accept(payload []byte) (Ticket, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	t, err := v.checkLocked(payload)
	if err != nil {
		return Ticket{}, err
	}
	b, _ := json.Marshal(accepted{Schema: 1, IssuedAt: t.IssuedAt.UTC(), Nonce: t.Nonce, Digest: t.Digest()})
	if err := store.WriteFile(v.StatePath, b, 0o600); err != nil {
		return Ticket{}, fmt.Errorf("ticket: record accepted ticket: %w", err)
	}
	if err := v.Floor.Advance(t.IssuedAt); err != nil {
		return Ticket{}, fmt.Errorf("ticket: %w", err)
	}
	return t, nil
}

func (v *Verifier) checkLocked(payload []byte) (Ticket, error) {
	if v.Floor == nil {
		return Ticket{}, errors.New("ticket: Verifier.Floor is required")
	}
	t, err := Parse(payload)
	if err != nil {
		return Ticket{}, err
	}
	// The signature first: nothing in an unauthenticated ticket is worth
	// reporting back, not even which terminal it claims to be for.
	if r := kind.VerifySignature(v.Keys, t.KID, t.Sig, t.Canonical()); r != nil {
		return Ticket{}, &Error{Code: r.Code, Message: r.Message}
	}
	// Signed but maybe nonsense (a buggy signer): same rules as Sign.
	if err := t.check(); err != nil {
		return Ticket{}, err
	}
	if t.TID != v.TID {
		return Ticket{}, &Error{Code: CodeOtherTerminal, Message: "the ticket is for another terminal"}
	}
	if r := kind.CheckWindow(t.IssuedAt, t.ExpiresAt, v.Now, v.Floor, v.Skew); r != nil {
		return Ticket{}, &Error{Code: r.Code, Message: r.Message}
	}
	max := v.MaxTestAmount
	if max <= 0 {
		max = DefaultMaxTestAmount
	}
	if t.TestAmount > max {
		return Ticket{}, &Error{Code: CodeAmount, Message: fmt.Sprintf("test_amount is above the terminal's cap of %d fen", max)}
	}
	last, err := v.load()
	if err != nil {
		return Ticket{}, err
	}
	if last != nil && last.Digest != t.Digest() {
		if !t.IssuedAt.After(last.IssuedAt) {
			return Ticket{}, &Error{Code: CodeSuperseded, Message: "the ticket is not newer than the last accepted one"}
		}
		if t.Nonce == last.Nonce {
			return Ticket{}, &Error{Code: CodeReplayed, Message: "the ticket reuses the last accepted one's nonce"}
		}
	}
	return t, nil
}

// load returns the last accepted record, nil when none was ever accepted.
func (v *Verifier) load() (*accepted, error) {
	if v.StatePath == "" {
		return nil, errors.New("ticket: Verifier.StatePath is required")
	}
	b, err := os.ReadFile(v.StatePath)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("ticket: replay state: %w", err)
	}
	var a accepted
	if json.Unmarshal(b, &a) != nil || a.Schema != 1 || a.Digest == "" {
		return nil, fmt.Errorf("%w: %s", ErrCorruptState, v.StatePath)
	}
	return &a, nil
}
