package command

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

// DefaultSkew is how far the terminal's clock may be off. Commands live
// minutes, not days: the skew is smaller than a ticket's.
const DefaultSkew = 5 * time.Minute

// kind is what trust's checks of every signed payload need of a command.
var kind = trust.Kind{Noun: "command", DefaultSkew: DefaultSkew, Codes: trust.Codes{
	Unsigned: CodeUnsigned, BadSignature: CodeBadSignature, KeyRevoked: CodeKeyRevoked, UnknownKey: CodeUnknownKey,
	NotYetValid: CodeNotYetValid, Expired: CodeExpired,
}}

// DefaultMaxNonces bounds the nonce record. Nonces leave it once the time
// floor passes their expiry (every accepted command raises the floor to its
// issued_at), so it holds about the commands of the last MaxValidity; a
// central that sends more than this in ten minutes gets E_CMD_BUSY.
const DefaultMaxNonces = 256

// ErrCorruptState is wrapped when the nonce record exists but cannot be read:
// treating it as empty would let every recent command be replayed.
var ErrCorruptState = errors.New("command: nonce record is corrupt")

// Verifier checks commands for one terminal and remembers (on disk) the
// nonces of those it accepted, to refuse replays. Its methods are safe for
// concurrent use.
type Verifier struct {
	// Keys are central's verification keys (config: central.keys, revoked).
	Keys *trust.KeyRing
	// TID is this terminal.
	TID string
	// StatePath is the nonce record (in the state directory). Required.
	StatePath string
	// Floor is the terminal's time floor: expiry is checked against it as well
	// as the clock, nonces are kept until it passes their expiry, and each
	// accepted command raises it to its issued_at. Required.
	Floor *trust.Floor
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Skew widens the clock's side of the window; 0 means DefaultSkew.
	Skew time.Duration
	// MaxNonces bounds the record; 0 means DefaultMaxNonces.
	MaxNonces int

	mu     sync.Mutex
	nonces []seen // the record, once loaded
	loaded bool
}

// seen is one accepted command's nonce, kept until the floor passes Expires.
type seen struct {
	Nonce   string `json:"nonce"`
	Expires string `json:"expires_at"` // trust.StampLayout
}

type record struct {
	Schema int    `json:"schema"`
	Nonces []seen `json:"nonces"`
}

// Check verifies payload completely without recording it: form, signature,
// terminal, window, name and args, and that its nonce was never accepted. A
// refusal is a *Error (its Command carries the id when one could be read);
// any other error is the nonce record's (disk).
func (v *Verifier) Check(payload []byte) (Command, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.checkLocked(payload)
}

// Accept is Check followed by raising the floor to the command's issued_at
// and recording its nonce (dropping those whose expiry the floor has
// passed), durably, before it returns: the command runs after that, so a
// crash can lose a command (central sees no reply and sends it again) but
// never run one twice.
func (v *Verifier) Accept(payload []byte) (Command, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	c, err := v.checkLocked(payload)
	if err != nil {
		return c, err
	}
	// The floor first: the nonces it lets go below are those of commands it
	// now refuses as expired, so it must be on disk before they leave.
	if err := v.Floor.Advance(c.IssuedAt); err != nil {
		return Command{ID: c.ID}, fmt.Errorf("command: %w", err)
	}
	floor := v.Floor.Time()
	kept := make([]seen, 0, len(v.nonces)+1)
	for _, s := range v.nonces {
		if t, _ := time.Parse(trust.StampLayout, s.Expires); t.After(floor) {
			kept = append(kept, s)
		}
	}
	max := v.MaxNonces
	if max <= 0 {
		max = DefaultMaxNonces
	}
	if len(kept) >= max {
		return Command{ID: c.ID}, &Error{Code: CodeBusy, Message: "too many commands in the last minutes; send it again later"}
	}
	kept = append(kept, seen{Nonce: c.Nonce, Expires: trust.Stamp(c.ExpiresAt)})
	b, _ := json.Marshal(record{Schema: 1, Nonces: kept})
	if err := store.WriteFile(v.StatePath, b, 0o600); err != nil {
		return Command{ID: c.ID}, fmt.Errorf("command: record nonce: %w", err)
	}
	v.nonces = kept
	return c, nil
}

func (v *Verifier) checkLocked(payload []byte) (Command, error) {
	if v.Floor == nil || v.StatePath == "" {
		return Command{}, errors.New("command: Verifier.Floor and StatePath are required")
	}
	e, perr := Parse(payload)
	if perr != nil {
		return Command{ID: e.ID}, perr
	}
	refuse := func(code, msg string) (Command, error) {
		return Command{ID: e.ID}, &Error{Code: code, Message: msg}
	}
	// The signature first: nothing of an unauthenticated command is acted on.
	if r := kind.VerifySignature(v.Keys, e.KID, e.Sig, e.Canonical()); r != nil {
		return refuse(r.Code, r.Message)
	}
	c, derr := e.decode()
	if derr != nil && derr.Code == CodeMalformed {
		return c, derr
	}
	if e.TID != v.TID {
		return refuse(CodeOtherTerminal, "the command is for another terminal")
	}
	if r := kind.CheckWindow(e.IssuedAt, e.ExpiresAt, v.Now, v.Floor, v.Skew); r != nil {
		return refuse(r.Code, r.Message)
	}
	if derr != nil {
		return c, derr
	}
	if err := v.loadLocked(); err != nil {
		return Command{ID: e.ID}, err
	}
	for _, s := range v.nonces {
		if s.Nonce == e.Nonce {
			return refuse(CodeReplayed, "this command (its nonce) was received before; it is not run again")
		}
	}
	return c, nil
}

// loadLocked reads the nonce record once; later calls use the copy in memory,
// which Accept writes through.
func (v *Verifier) loadLocked() error {
	if v.loaded {
		return nil
	}
	b, err := os.ReadFile(v.StatePath)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		v.loaded = true
		return nil
	case err != nil:
		return fmt.Errorf("command: nonce record: %w", err)
	}
	var r record
	if json.Unmarshal(b, &r) != nil || r.Schema != 1 {
		return fmt.Errorf("%w: %s", ErrCorruptState, v.StatePath)
	}
	for _, s := range r.Nonces {
		if _, err := time.Parse(trust.StampLayout, s.Expires); err != nil || !noncePattern.MatchString(s.Nonce) {
			return fmt.Errorf("%w: %s", ErrCorruptState, v.StatePath)
		}
	}
	v.nonces, v.loaded = r.Nonces, true
	return nil
}
