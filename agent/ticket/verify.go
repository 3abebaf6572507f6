package ticket

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sync"
	"time"

	"github.com/posagent/posagent/agent/store"
)

// DefaultSkew is how far the terminal's clock may be off before a ticket is
// called expired or not yet valid: before sign-on the clock has not been set
// from the host, and an RTC without a battery starts wherever it starts.
const DefaultSkew = 10 * time.Minute

// Verifier checks tickets for one terminal and remembers (on disk) the last one
// it accepted, to refuse replays. Its methods are safe for concurrent use.
type Verifier struct {
	// Key is central's public key (config: the ticket public key).
	Key ed25519.PublicKey
	// TID is this terminal.
	TID string
	// StatePath is the file that holds the last accepted ticket's issued_at,
	// nonce and digest (in the state directory). Required.
	StatePath string
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Skew widens the validity window on both sides; 0 means DefaultSkew.
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

// Parse decodes a payload without checking anything but its form.
func Parse(payload []byte) (Ticket, error) {
	var t Ticket
	dec := json.NewDecoder(bytes.NewReader(payload))
	// Fields the signature does not cover must not ride along: a consumer
	// could read them as if central had said so.
	dec.DisallowUnknownFields()
	if err := dec.Decode(&t); err != nil {
		// json errors quote field names, not values; keep only that kind.
		var ute *json.UnmarshalTypeError
		if errors.As(err, &ute) {
			return Ticket{}, &Error{Code: CodeMalformed, Message: "field " + ute.Field + " has the wrong type"}
		}
		return Ticket{}, &Error{Code: CodeMalformed, Message: "not a JSON ticket object"}
	}
	if dec.More() {
		return Ticket{}, &Error{Code: CodeMalformed, Message: "trailing data after the ticket"}
	}
	return t, nil
}

// Check verifies payload completely, except that it does not record it: form,
// signature, terminal, validity window and replay against the last accepted.
// Redelivery of exactly the last accepted ticket passes (see Accept).
func (v *Verifier) Check(payload []byte) (Ticket, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.checkLocked(payload)
}

// Accept is Check followed by recording the ticket as the last accepted,
// durably, before it returns: a restart must not forget it.
//
// The very ticket that was accepted last is accepted again (same signed bytes):
// the parameters step runs again after a crash (the resume table re-runs it),
// and the retained ticket is all there is to run it with; giving the terminal
// a record it already has is no attack. Anything else not strictly newer
// (issued_at) than that ticket is E_TICKET_REPLAYED.
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
	return t, nil
}

func (v *Verifier) checkLocked(payload []byte) (Ticket, error) {
	t, err := Parse(payload)
	if err != nil {
		return Ticket{}, err
	}
	// The signature first: nothing in an unauthenticated ticket is worth
	// reporting back, not even which terminal it claims to be for.
	if t.Sig == "" {
		return Ticket{}, &Error{Code: CodeUnsigned, Message: "the ticket carries no signature"}
	}
	sig, err := base64.StdEncoding.DecodeString(t.Sig)
	if err != nil || len(sig) != ed25519.SignatureSize {
		return Ticket{}, &Error{Code: CodeBadSignature, Message: "the signature is not 64 bytes of base64"}
	}
	if len(v.Key) != ed25519.PublicKeySize {
		return Ticket{}, errors.New("ticket: no valid Ed25519 public key configured")
	}
	if !ed25519.Verify(v.Key, t.Canonical(), sig) {
		return Ticket{}, &Error{Code: CodeBadSignature, Message: "the signature does not verify with central's key"}
	}
	// Signed but maybe nonsense (a buggy signer): same rules as Sign.
	if err := t.check(); err != nil {
		return Ticket{}, err
	}
	if t.TID != v.TID {
		return Ticket{}, &Error{Code: CodeOtherTerminal, Message: "the ticket is for another terminal"}
	}
	now := time.Now()
	if v.Now != nil {
		now = v.Now()
	}
	skew := v.Skew
	if skew == 0 {
		skew = DefaultSkew
	}
	if now.Add(skew).Before(t.IssuedAt) {
		return Ticket{}, &Error{Code: CodeNotYetValid, Message: "issued_at is later than the terminal's clock"}
	}
	if !now.Add(-skew).Before(t.ExpiresAt) {
		return Ticket{}, &Error{Code: CodeExpired, Message: "expires_at has passed"}
	}
	last, err := v.load()
	if err != nil {
		return Ticket{}, err
	}
	if last != nil && last.Digest != t.Digest() {
		if !t.IssuedAt.After(last.IssuedAt) || t.Nonce == last.Nonce {
			return Ticket{}, &Error{Code: CodeReplayed, Message: "the ticket is not newer than the last accepted one"}
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
