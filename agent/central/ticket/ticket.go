// Package ticket is the signed install ticket: central's merchant record for
// one terminal, published on pos/v1/{tid}/ticket and signed with one of
// central's Ed25519 keys (agent/central/trust), whose public halves are in the
// agent's configuration.
//
// The ticket is what the parameters step trusts instead of the local config:
// a terminal must not be talked into settling to someone else's account by
// whoever can reach its broker, so the agent refuses a ticket that is too
// large, not strict JSON, unsigned, signed with an unknown or revoked key or
// wrongly, for another terminal, expired (by its clock or by the time floor,
// which a wound-back clock cannot lower), not yet valid, asking for a test
// sale above the cap, or older than (or a different one with the same age
// as) the last it accepted. docs/mqtt.md, "Install ticket", is the wire
// format and the canonical encoding that the signature covers.
package ticket

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"time"

	"github.com/posagent/posagent/agent/central/trust"
	"github.com/posagent/posagent/provisioning"
)

// Version is the only ticket format this package reads and writes. Version 1
// had no kid and carried the account as a salted hash; it is not read.
const Version = 2

// Domain starts the signed bytes, so that a signature made for a ticket can
// never be taken for one over some other message signed with the same key
// (a command, or a ticket of another version).
const Domain = "posagent-ticket-v2\n"

// MaxSize bounds a ticket payload, checked before anything parses it: a real
// one is under 1 KiB, Chinese names included.
const MaxSize = 4096

// Ticket is the merchant record for one terminal as central issues it.
type Ticket struct {
	V            int                   `json:"v"`
	KID          string                `json:"kid"` // the central key that signed it
	TID          string                `json:"tid"`
	MID          string                `json:"mid"`
	MerchantName string                `json:"merchant_name"`
	LegalPerson  string                `json:"legal_person"`
	AccountName  string                `json:"account_name,omitempty"`
	AccountCheck string                `json:"account_check"` // 64 lowercase hex: the account's keyed check value
	CardType     provisioning.CardType `json:"card_type"`
	TestAmount   int64                 `json:"test_amount"` // test sale, fen
	IssuedAt     time.Time             `json:"issued_at"`
	ExpiresAt    time.Time             `json:"expires_at"`
	Nonce        string                `json:"nonce"` // at least 32 hex digits, random per ticket
	// Sig is the base64 (standard, padded) Ed25519 signature of Canonical().
	Sig string `json:"sig,omitempty"`
}

// Merchant is the ticket's record in the form the install flow uses.
func (t Ticket) Merchant() provisioning.Merchant {
	return provisioning.Merchant{
		MID: t.MID, Name: t.MerchantName, LegalPerson: t.LegalPerson, AccountName: t.AccountName,
		AccountCheck: t.AccountCheck, CardType: t.CardType, TestAmount: t.TestAmount,
	}
}

// Canonical is the byte string the signature covers: Domain, then every field
// but Sig in a fixed order, each as a 4-byte big-endian length and its UTF-8
// bytes (trust.Canonical). Numbers are decimal; times are
// YYYY-MM-DDTHH:MM:SSZ.
func (t Ticket) Canonical() []byte {
	return trust.Canonical(Domain,
		strconv.Itoa(t.V), t.KID, t.TID, t.MID, t.MerchantName, t.LegalPerson, t.AccountName,
		t.AccountCheck, string(t.CardType), strconv.FormatInt(t.TestAmount, 10),
		trust.Stamp(t.IssuedAt), trust.Stamp(t.ExpiresAt), t.Nonce)
}

// NewNonce returns 16 random bytes in hex.
func NewNonce() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return hex.EncodeToString(b[:]), nil
}

// Sign fills V (when 0), truncates the times to whole seconds (what the
// canonical form carries), signs with key under t.KID and returns the JSON
// payload to publish.
func Sign(t Ticket, key ed25519.PrivateKey) ([]byte, error) {
	if len(key) != ed25519.PrivateKeySize {
		return nil, errors.New("ticket: not an Ed25519 private key")
	}
	if t.V == 0 {
		t.V = Version
	}
	t.IssuedAt = t.IssuedAt.UTC().Truncate(time.Second)
	t.ExpiresAt = t.ExpiresAt.UTC().Truncate(time.Second)
	if err := t.check(); err != nil {
		return nil, err
	}
	t.Sig = base64.StdEncoding.EncodeToString(ed25519.Sign(key, t.Canonical()))
	b, err := json.Marshal(t)
	if err != nil {
		return nil, err
	}
	if len(b) > MaxSize {
		return nil, &Error{Code: CodeTooLarge, Message: fmt.Sprintf("the ticket is larger than %d bytes", MaxSize)}
	}
	return b, nil
}

var (
	checkPattern = regexp.MustCompile(`^[0-9a-f]{64}$`)
	noncePattern = regexp.MustCompile(`^([0-9a-f]{2}){16,32}$`)
)

// check validates the fields a signer could get wrong; Verify runs it too.
func (t Ticket) check() error {
	bad := func(field, why string) error {
		return &Error{Code: CodeMalformed, Message: "field " + field + " " + why}
	}
	if t.V != Version {
		return bad("v", fmt.Sprintf("is %d, want %d", t.V, Version))
	}
	if !trust.ValidKID(t.KID) {
		return bad("kid", "is not 1-32 characters of A-Z a-z 0-9 . _ -")
	}
	for _, f := range []struct{ name, v string }{
		{"tid", t.TID}, {"mid", t.MID}, {"merchant_name", t.MerchantName}, {"legal_person", t.LegalPerson},
	} {
		if f.v == "" {
			return bad(f.name, "is empty")
		}
	}
	if !checkPattern.MatchString(t.AccountCheck) {
		return bad("account_check", "is not 64 lowercase hex digits")
	}
	if !noncePattern.MatchString(t.Nonce) {
		return bad("nonce", "is not 32 to 64 lowercase hex digits")
	}
	if t.CardType != provisioning.Debit && t.CardType != provisioning.Credit {
		return bad("card_type", "is not debit or credit")
	}
	if t.TestAmount <= 0 {
		return bad("test_amount", "is not positive")
	}
	if t.IssuedAt.IsZero() || t.ExpiresAt.IsZero() || !t.ExpiresAt.After(t.IssuedAt) {
		return bad("expires_at", "is not after issued_at")
	}
	return nil
}

// Digest identifies one signed ticket (its canonical bytes and signature):
// the same ticket delivered twice has the same digest.
func (t Ticket) Digest() string {
	h := sha256.New()
	h.Write(t.Canonical())
	h.Write([]byte(t.Sig))
	return hex.EncodeToString(h.Sum(nil))
}
