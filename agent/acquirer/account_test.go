package acquirer

import (
	"encoding/hex"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/posagent/posagent/provisioning/pan"
)

// demoAccountCheck is the demo debit card 6222021234567890128 under the
// demo TMK 0123456789ABCDEFFEDCBA9876543210 and TID 10000001, computed
// outside Go:
//
//	openssl kdf -keylen 32 -kdfopt digest:SHA256 -kdfopt hexkey:0123456789ABCDEFFEDCBA9876543210 \
//	    -kdfopt "info:posagent settlement account check v110000001" HKDF
//	  = 41118D198C5A04B8963BB1F2D8BE6832AEDCA233205D36611010A4B566330E07
//	printf 6222021234567890128 | openssl dgst -sha256 -mac HMAC -macopt hexkey:41118D…0E07
const demoAccountCheck = "16669b73825af85f9eaa5dbc759d4aa358bd1e1a79d1d33559b52fadce61d318"

func TestAccountCheckKnownAnswer(t *testing.T) {
	tmk := Key(mustHex(t, "0123456789ABCDEFFEDCBA9876543210"))
	k, err := AccountCheckKey(tmk, "10000001")
	if err != nil || strings.ToUpper(hex.EncodeToString(k)) != "41118D198C5A04B8963BB1F2D8BE6832AEDCA233205D36611010A4B566330E07" {
		t.Fatalf("AccountCheckKey = %x, %v", k, err)
	}
	got, err := AccountCheck(tmk, "10000001", pan.MustParse("6222021234567890128"))
	if err != nil || got != demoAccountCheck {
		t.Fatalf("AccountCheck = %s, %v; want %s (openssl)", got, err, demoAccountCheck)
	}
	// Another terminal under the same TMK has another key.
	other, err := AccountCheck(tmk, "10000002", pan.MustParse("6222021234567890128"))
	if err != nil || other == got {
		t.Fatalf("TID 10000002: %s, %v", other, err)
	}
	for _, tid := range []string{"", "1000000", "100000011", "1000000A"} {
		if _, err := AccountCheckKey(tmk, tid); err == nil {
			t.Errorf("TID %q accepted", tid)
		}
	}
	if _, err := AccountCheckKey(nil, "10000001"); err == nil {
		t.Error("no TMK accepted")
	}
}

// TestAccountsFromKeyStore: the key store's checker matches the demo card
// against the check value with the TMK it holds, tells another card or
// another terminal's TMK apart, and fails (not mismatches) without keys.
func TestAccountsFromKeyStore(t *testing.T) {
	demo := pan.MustParse("6222021234567890128")
	fs := &FileKeyStore{Path: filepath.Join(t.TempDir(), "keys.json")}
	a := Accounts{Keys: fs, TID: "10000001"}
	if _, err := a.MatchAccount(demo, demoAccountCheck); !errors.Is(err, ErrNoKeys) {
		t.Fatalf("no keys: %v", err)
	}
	if err := fs.SaveKeys(Keys{TMK: mustHex(t, "0123456789ABCDEFFEDCBA9876543210")}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		a     Accounts
		p     string
		check string
		ok    bool
	}{
		{"the card", a, "6222021234567890128", demoAccountCheck, true},
		{"upper-case check", a, "6222021234567890128", strings.ToUpper(demoAccountCheck), true},
		{"another card", a, "6222029876543210128", demoAccountCheck, false},
		{"another terminal", Accounts{Keys: fs, TID: "10000002"}, "6222021234567890128", demoAccountCheck, false},
	} {
		ok, err := tc.a.MatchAccount(pan.MustParse(tc.p), tc.check)
		if err != nil || ok != tc.ok {
			t.Errorf("%s: %v, %v", tc.name, ok, err)
		}
	}
	other := &MemKeyStore{}
	if err := other.SaveKeys(Keys{TMK: mustHex(t, "1111111111111111AAAAAAAAAAAAAAAA")}); err != nil {
		t.Fatal(err)
	}
	if ok, err := (Accounts{Keys: other, TID: "10000001"}).MatchAccount(demo, demoAccountCheck); ok || err != nil {
		t.Errorf("another TMK: %v, %v", ok, err)
	}
	if _, err := (Accounts{Keys: fs, TID: "10000001"}).MatchAccount(demo, "not hex"); err == nil {
		t.Error("a malformed check value was compared")
	}
}
