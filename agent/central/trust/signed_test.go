package trust

import (
	"crypto/ed25519"
	"encoding/base64"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var testKind = Kind{Noun: "widget", DefaultSkew: 10 * time.Minute, Codes: Codes{
	Unsigned: "E_UNSIGNED", BadSignature: "E_BAD_SIGNATURE", KeyRevoked: "E_KEY_REVOKED", UnknownKey: "E_UNKNOWN_KEY",
	NotYetValid: "E_NOT_YET_VALID", Expired: "E_EXPIRED",
}}

// Each way a signature fails gets its own code, and the message names the
// kind and, where it can be read, the kid.
func TestKindVerifySignature(t *testing.T) {
	pub, priv := newKey(t)
	_, stranger := newKey(t)
	ring, err := NewKeyRing([]Key{{"c-2026b", pub}}, []string{"c-2026a"})
	if err != nil {
		t.Fatal(err)
	}
	msg := Canonical("widget/v1", "x")
	b64 := func(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
	good := b64(ed25519.Sign(priv, msg))
	for _, c := range []struct {
		name, kid, sig string
		code, message  string // code "" means accepted
	}{
		{"good", "c-2026b", good, "", ""},
		{"no signature", "c-2026b", "", "E_UNSIGNED", "the widget carries no signature"},
		{"not base64", "c-2026b", "!" + good[1:], "E_BAD_SIGNATURE", "the signature is not 64 bytes of base64"},
		{"63 bytes", "c-2026b", b64(ed25519.Sign(priv, msg)[:63]), "E_BAD_SIGNATURE", "the signature is not 64 bytes of base64"},
		// Strict: the unused bits before the padding must be zero, so a
		// signature has one spelling. Loosely decoded, this one is good.
		{"loose base64", "c-2026b", loose(good), "E_BAD_SIGNATURE", "the signature is not 64 bytes of base64"},
		{"another key", "c-2026b", b64(ed25519.Sign(stranger, msg)), "E_BAD_SIGNATURE", "the signature does not verify with central's key c-2026b"},
		{"revoked", "c-2026a", good, "E_KEY_REVOKED", "the widget is signed with a revoked key (kid c-2026a)"},
		{"unknown", "c-2027", good, "E_UNKNOWN_KEY", "no configured central key has kid c-2027"},
		{"malformed kid not echoed", "c 2027\n", good, "E_UNKNOWN_KEY", "the widget names no valid kid"},
	} {
		r := testKind.VerifySignature(ring, c.kid, c.sig, msg)
		switch {
		case c.code == "" && r != nil:
			t.Errorf("%s: refused %+v", c.name, r)
		case c.code != "" && (r == nil || r.Code != c.code || r.Message != c.message):
			t.Errorf("%s: %+v, want %s %q", c.name, r, c.code, c.message)
		}
	}
}

// CheckWindow applies Window with the terminal's clock (time.Now unless
// given), the floor and the kind's skew unless given.
func TestKindCheckWindow(t *testing.T) {
	floor, err := OpenFloor(filepath.Join(t.TempDir(), "time-floor.json"))
	if err != nil {
		t.Fatal(err)
	}
	clock := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
	at := func() time.Time { return clock }
	h := time.Hour
	for _, c := range []struct {
		name            string
		issued, expires time.Time
		now             func() time.Time
		skew            time.Duration
		code            string
	}{
		{"valid", clock, clock.Add(h), at, 0, ""},
		{"expired", clock.Add(-2 * h), clock.Add(-h), at, 0, "E_EXPIRED"},
		{"early beyond the default skew", clock.Add(11 * time.Minute), clock.Add(h), at, 0, "E_NOT_YET_VALID"},
		{"early within the default skew", clock.Add(9 * time.Minute), clock.Add(h), at, 0, ""},
		{"early beyond a given skew", clock.Add(9 * time.Minute), clock.Add(h), at, 5 * time.Minute, "E_NOT_YET_VALID"},
		{"expired within the default skew", clock.Add(-h), clock.Add(-5 * time.Minute), at, 0, ""},
		{"expired beyond a given skew", clock.Add(-h), clock.Add(-5 * time.Minute), at, time.Minute, "E_EXPIRED"},
		{"nil clock is time.Now", time.Now().Add(-time.Minute), time.Now().Add(h), nil, 0, ""},
		{"nil clock is time.Now, expired", time.Now().Add(-2 * h), time.Now().Add(-h), nil, 0, "E_EXPIRED"},
	} {
		r := testKind.CheckWindow(c.issued, c.expires, c.now, floor, c.skew)
		switch {
		case c.code == "" && r != nil:
			t.Errorf("%s: refused %+v", c.name, r)
		case c.code != "" && (r == nil || r.Code != c.code):
			t.Errorf("%s: %+v, want %s", c.name, r, c.code)
		case r != nil && !strings.Contains(r.Message, map[string]string{"E_EXPIRED": "expires_at", "E_NOT_YET_VALID": "issued_at"}[r.Code]):
			t.Errorf("%s: message %q names the wrong field", c.name, r.Message)
		}
	}
}

// loose sets an unused bit in the last character of sig, 64 bytes in
// base64: a spelling that plain (not Strict) decoding takes for sig.
func loose(sig string) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	i := len(sig) - 3 // before "=="
	return sig[:i] + string(alphabet[strings.IndexByte(alphabet, sig[i])|1]) + "=="
}
