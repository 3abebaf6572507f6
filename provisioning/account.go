package provisioning

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"

	"github.com/posagent/posagent/provisioning/pan"
)

// AccountChecker tells whether a card is the merchant's settlement account,
// given the merchant record's check value (Merchant.AccountCheck).
//
// The check value is keyed: HMAC-SHA256 over the card number's digits under
// an account-check key that only the acquirer and the terminal's key store
// can produce (agent/acquirer derives it from the TMK). Without that key a
// check value confirms no guess, so the masked card (6 + 4 digits) shown
// and reported everywhere, and the check value in the config or a ticket,
// do not add up to the number.
//
// The terminal's key store implements it (agent/acquirer), the demo a
// simulated store with a public key (agent/sim/inproc), and KeyedAccounts any test
// that holds the key itself.
type AccountChecker interface {
	// MatchAccount reports whether p is the account check names (64 hex
	// digits). An error means the check could not be made (no key, an
	// unreadable key store), never that the card is another account; it
	// never quotes p or check.
	MatchAccount(p pan.PAN, check string) (bool, error)
}

// Errors of AccountCheckValue and KeyedAccounts. They never quote the key,
// the card or the check value.
var (
	ErrAccountCheckKey = errors.New("provisioning: account check: no key")
	errAccountPAN      = errors.New("provisioning: account check: no card number")
	errAccountCheck    = errors.New("provisioning: account check: not 64 hex digits")
)

// AccountCheckValue is the check value of p under key: lowercase hex of
// HMAC-SHA256(key, the PAN's digits as ASCII). It is what the acquirer puts
// in the merchant record (account_check) and what MatchAccount recomputes.
func AccountCheckValue(key []byte, p pan.PAN) (string, error) {
	sum, err := accountMAC(key, p)
	if err != nil {
		return "", err
	}
	return hex.EncodeToString(sum), nil
}

func accountMAC(key []byte, p pan.PAN) ([]byte, error) {
	if len(key) == 0 {
		return nil, ErrAccountCheckKey
	}
	if p.IsZero() {
		return nil, errAccountPAN
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte(p.Reveal())) // MACed, never kept
	return m.Sum(nil), nil
}

// KeyedAccounts is an AccountChecker that holds the account-check key
// itself.
type KeyedAccounts struct{ Key []byte }

var _ AccountChecker = KeyedAccounts{}

// MatchAccount recomputes p's check value and compares it with check in
// constant time, so that timing does not tell how much of a guess was right.
func (k KeyedAccounts) MatchAccount(p pan.PAN, check string) (bool, error) {
	want, err := hex.DecodeString(check)
	if err != nil || len(want) != sha256.Size {
		return false, errAccountCheck
	}
	got, err := accountMAC(k.Key, p)
	if err != nil {
		return false, err
	}
	return hmac.Equal(got, want), nil
}

// ForgetAccountCheck wraps the flow's store so that a checkpoint with a
// bound card is saved without the merchant record's account check: the
// check has done its work once the card is bound, and the checkpoint then
// holds the masked card, which must never sit next to it. Before the card
// is bound the check stays, so that a power cut inside bind-card resumes
// there and can still check the card. The save that records the bound
// card is the one that drops it, in the same atomic write.
func ForgetAccountCheck(s Store) Store { return forgetfulStore{s} }

type forgetfulStore struct{ Store }

func (s forgetfulStore) Save(data []byte) error {
	var cp Checkpoint
	if json.Unmarshal(data, &cp) == nil && cp.Card != nil && cp.Merchant != nil && cp.Merchant.AccountCheck != "" {
		cp.Merchant.AccountCheck = ""
		b, err := cp.Encode()
		if err != nil {
			return err
		}
		data = b
	}
	return s.Store.Save(data)
}
