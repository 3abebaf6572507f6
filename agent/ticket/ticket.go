// Package ticket is the signed install ticket: central's merchant record for
// one terminal, published on pos/v1/{tid}/ticket and signed with central's
// Ed25519 key, whose public half is in the agent's configuration.
//
// The ticket is what the parameters step trusts instead of the local config:
// a terminal must not be talked into settling to someone else's account by
// whoever can reach its broker, so the agent refuses a ticket that is
// unsigned, wrongly signed, expired, not yet valid, for another terminal, or
// older than (or a different one with the same age as) the last it accepted.
// docs/mqtt.md, "Install ticket", is the wire format and the canonical
// encoding that the signature covers.
package ticket

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/posagent/posagent/provisioning"
)

// Version is the only ticket format this package reads and writes.
const Version = 1

// Domain starts the signed bytes, so that a signature made for a ticket can
// never be taken for one over some other message signed with the same key.
const Domain = "posagent-ticket-v1\n"

// Ticket is the merchant record for one terminal as central issues it.
type Ticket struct {
	V            int                   `json:"v"`
	TID          string                `json:"tid"`
	MID          string                `json:"mid"`
	MerchantName string                `json:"merchant_name"`
	LegalPerson  string                `json:"legal_person"`
	AccountName  string                `json:"account_name,omitempty"`
	AccountHash  string                `json:"account_hash"` // hex SHA-256(salt || PAN digits)
	AccountSalt  string                `json:"account_salt"` // hex
	CardType     provisioning.CardType `json:"card_type"`
	TestAmount   int64                 `json:"test_amount"` // test sale, fen
	IssuedAt     time.Time             `json:"issued_at"`
	ExpiresAt    time.Time             `json:"expires_at"`
	Nonce        string                `json:"nonce"` // 32 hex digits, random per ticket
	// Sig is the base64 (standard, padded) Ed25519 signature of Canonical().
	Sig string `json:"sig,omitempty"`
}

// Merchant is the ticket's record in the form the install flow uses.
func (t Ticket) Merchant() provisioning.Merchant {
	return provisioning.Merchant{
		MID: t.MID, Name: t.MerchantName, LegalPerson: t.LegalPerson, AccountName: t.AccountName,
		AccountHash: t.AccountHash, AccountSalt: t.AccountSalt, CardType: t.CardType,
		TestAmount: t.TestAmount,
	}
}

// Canonical is the byte string the signature covers: Domain, then every field
// but Sig in a fixed order, each as a 4-byte big-endian length and its UTF-8
// bytes. Numbers are decimal; times are RFC 3339 in UTC with whole seconds.
// Length prefixes make it unambiguous without escaping, and other languages
// can produce it in a dozen lines (docs/mqtt.md).
func (t Ticket) Canonical() []byte {
	var b bytes.Buffer
	b.WriteString(Domain)
	for _, f := range []string{
		strconv.Itoa(t.V), t.TID, t.MID, t.MerchantName, t.LegalPerson, t.AccountName,
		t.AccountHash, t.AccountSalt, string(t.CardType), strconv.FormatInt(t.TestAmount, 10),
		stamp(t.IssuedAt), stamp(t.ExpiresAt), t.Nonce,
	} {
		var n [4]byte
		binary.BigEndian.PutUint32(n[:], uint32(len(f)))
		b.Write(n[:])
		b.WriteString(f)
	}
	return b.Bytes()
}

func stamp(t time.Time) string { return t.UTC().Truncate(time.Second).Format(time.RFC3339) }

// NewNonce returns 16 random bytes in hex.
func NewNonce() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return hex.EncodeToString(b[:]), nil
}

// Sign fills V (when 0), truncates the times to whole seconds (what the
// canonical form carries), signs and returns the JSON payload to publish.
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
	return json.Marshal(t)
}

// check validates the fields a signer could get wrong; Verify runs it too.
func (t Ticket) check() error {
	bad := func(field, why string) error {
		return &Error{Code: CodeMalformed, Message: "field " + field + " " + why}
	}
	if t.V != Version {
		return bad("v", fmt.Sprintf("is %d, want %d", t.V, Version))
	}
	for _, f := range []struct{ name, v string }{
		{"tid", t.TID}, {"mid", t.MID}, {"merchant_name", t.MerchantName}, {"legal_person", t.LegalPerson},
		{"account_hash", t.AccountHash}, {"account_salt", t.AccountSalt}, {"nonce", t.Nonce},
	} {
		if f.v == "" {
			return bad(f.name, "is empty")
		}
	}
	for _, f := range []string{t.TID, t.MID, t.MerchantName, t.LegalPerson, t.AccountName, t.AccountHash, t.AccountSalt, t.Nonce} {
		if !utf8.ValidString(f) {
			return bad("text", "is not UTF-8")
		}
	}
	if h, err := hex.DecodeString(t.AccountHash); err != nil || len(h) != sha256.Size {
		return bad("account_hash", "is not 64 hex digits")
	}
	if s, err := hex.DecodeString(t.AccountSalt); err != nil || len(s) < 8 {
		return bad("account_salt", "is not at least 16 hex digits")
	}
	if n, err := hex.DecodeString(t.Nonce); err != nil || len(n) < 16 {
		return bad("nonce", "is not at least 32 hex digits")
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
