package acquirer

import (
	"crypto/hkdf"
	"crypto/sha256"
	"errors"
	"fmt"

	"github.com/posagent/posagent/provisioning"
	"github.com/posagent/posagent/provisioning/pan"
)

// AccountCheckInfo starts the HKDF info of the account-check key; the
// terminal's TID (8 ASCII digits) follows it.
const AccountCheckInfo = "posagent settlement account check v1"

var errAccountTID = errors.New("acquirer: account check: the TID must be 8 digits")

// AccountCheckKey derives the key of the settlement account check from the
// terminal master key:
//
//	HKDF-SHA256(IKM = TMK bytes, salt = none, info = AccountCheckInfo || TID, L = 32)
//
// The acquirer holds the TMK (it issued it), so it can compute the check
// value central puts in the merchant record; on the terminal only the key
// store holds the TMK, so nothing the terminal stores or sends outside
// keys.json can compute or test one. The TID in info gives every terminal
// its own key, even two under the same TMK. The caller wipes the result.
func AccountCheckKey(tmk Key, tid string) ([]byte, error) {
	if len(tmk) == 0 {
		return nil, provisioning.ErrAccountCheckKey
	}
	if !eightDigits(tid) {
		return nil, errAccountTID
	}
	k, err := hkdf.Key(sha256.New, tmk, nil, AccountCheckInfo+tid, sha256.Size)
	if err != nil {
		return nil, fmt.Errorf("acquirer: account check key: %w", err)
	}
	return k, nil
}

// AccountCheck is the check value of p for terminal tid under tmk: what
// central registers as the merchant's account_check (posctl account-check
// computes it). 64 lowercase hex digits.
func AccountCheck(tmk Key, tid string, p pan.PAN) (string, error) {
	k, err := AccountCheckKey(tmk, tid)
	if err != nil {
		return "", err
	}
	defer Key(k).Wipe()
	return provisioning.AccountCheckValue(k, p)
}

// Accounts checks settlement cards with the TMK of a key store: the
// terminal's provisioning.AccountChecker. It reads the TMK at each check
// (binding is rare) and keeps no key in memory after it.
type Accounts struct {
	Keys KeyStore
	TID  string
}

var _ provisioning.AccountChecker = Accounts{}

// MatchAccount reports whether p is the account of check.
func (a Accounts) MatchAccount(p pan.PAN, check string) (bool, error) {
	if a.Keys == nil {
		return false, fmt.Errorf("acquirer: account check: %w", ErrNoKeys)
	}
	keys, err := a.Keys.LoadKeys()
	if err != nil {
		return false, fmt.Errorf("acquirer: account check: %w", err)
	}
	defer keys.Wipe()
	k, err := AccountCheckKey(keys.TMK, a.TID)
	if err != nil {
		return false, err
	}
	defer Key(k).Wipe()
	return provisioning.KeyedAccounts{Key: k}.MatchAccount(p, check)
}

func eightDigits(s string) bool {
	if len(s) != 8 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
