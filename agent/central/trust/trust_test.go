package trust

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func newKey(t *testing.T) (ed25519.PublicKey, ed25519.PrivateKey) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return pub, priv
}

func TestKeyRingRotationAndRevocation(t *testing.T) {
	oldPub, oldPriv := newKey(t)
	newPub, newPriv := newKey(t)
	_, stranger := newKey(t)
	msg := []byte("message")
	// Rotation: both listed, each verifies its own signatures.
	both, err := NewKeyRing([]Key{{"c-2026a", oldPub}, {"c-2026b", newPub}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := both.Verify("c-2026a", msg, ed25519.Sign(oldPriv, msg)); err != nil {
		t.Errorf("old key during rotation: %v", err)
	}
	if err := both.Verify("c-2026b", msg, ed25519.Sign(newPriv, msg)); err != nil {
		t.Errorf("new key during rotation: %v", err)
	}
	// The kid names the key: another listed key's signature under it fails.
	if err := both.Verify("c-2026b", msg, ed25519.Sign(oldPriv, msg)); !errors.Is(err, ErrBadSignature) {
		t.Errorf("old key's signature labelled with the new kid: %v", err)
	}
	// After revocation.
	after, err := NewKeyRing([]Key{{"c-2026b", newPub}}, []string{"c-2026a"})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		kid  string
		sig  []byte
		want error
	}{
		{"c-2026a", ed25519.Sign(oldPriv, msg), ErrRevokedKey},
		{"c-2026b", ed25519.Sign(newPriv, msg), nil},
		{"c-2026b", ed25519.Sign(stranger, msg), ErrBadSignature},
		{"c-2026b", []byte("short"), ErrBadSignature},
		{"c-2027", ed25519.Sign(newPriv, msg), ErrUnknownKey},
		{"", ed25519.Sign(newPriv, msg), ErrUnknownKey},
	} {
		if err := after.Verify(c.kid, msg, c.sig); !errors.Is(err, c.want) {
			t.Errorf("Verify(%q) = %v, want %v", c.kid, err, c.want)
		}
	}
	if got := fmt.Sprint(both.KIDs()); got != "[c-2026a c-2026b]" {
		t.Errorf("KIDs = %s", got)
	}
	var none *KeyRing
	if err := none.Verify("c-2026b", msg, ed25519.Sign(newPriv, msg)); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("nil ring: %v", err)
	}
}

func TestNewKeyRingRefusesAmbiguity(t *testing.T) {
	pub, _ := newKey(t)
	for name, c := range map[string]struct {
		keys    []Key
		revoked []string
	}{
		"bad kid":            {[]Key{{"a b", pub}}, nil},
		"empty kid":          {[]Key{{"", pub}}, nil},
		"long kid":           {[]Key{{strings.Repeat("k", 33), pub}}, nil},
		"twice":              {[]Key{{"k1", pub}, {"k1", pub}}, nil},
		"listed and revoked": {[]Key{{"k1", pub}}, []string{"k1"}},
		"short key":          {[]Key{{"k1", pub[:16]}}, nil},
		"bad revoked kid":    {nil, []string{"k/1"}},
	} {
		if _, err := NewKeyRing(c.keys, c.revoked); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestPEMRoundTrip(t *testing.T) {
	privPEM, pubPEM, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	priv, err := ParsePrivateKey(privPEM)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "k.pub")
	os.WriteFile(path, pubPEM, 0o644)
	pub, err := LoadPublicKey(path)
	if err != nil {
		t.Fatal(err)
	}
	if !ed25519.Verify(pub, []byte("m"), ed25519.Sign(priv, []byte("m"))) {
		t.Error("halves do not match")
	}
	if _, err := ParsePrivateKey(pubPEM); err == nil {
		t.Error("public key taken as private")
	}
	if _, err := ParsePublicKey(privPEM); err == nil {
		t.Error("private key taken as public")
	}
}

func TestCanonical(t *testing.T) {
	got := string(Canonical("d\n", "ab", "", "上"))
	if want := "d\n\x00\x00\x00\x02ab\x00\x00\x00\x00\x00\x00\x00\x03上"; got != want {
		t.Errorf("Canonical = %q, want %q", got, want)
	}
	if s := Stamp(time.Date(2026, 11, 27, 17, 0, 0, 9e8, time.FixedZone("CST", 8*3600))); s != "2026-11-27T09:00:00Z" {
		t.Errorf("Stamp = %s", s)
	}
}

func TestFloorNeverGoesBack(t *testing.T) {
	path := filepath.Join(t.TempDir(), "time-floor.json")
	f, err := OpenFloor(path)
	if err != nil {
		t.Fatal(err)
	}
	if !f.Time().Equal(Epoch) {
		t.Errorf("fresh floor = %v, want Epoch", f.Time())
	}
	t1 := time.Date(2026, 11, 27, 9, 0, 0, 500, time.UTC)
	if err := f.Advance(t1); err != nil {
		t.Fatal(err)
	}
	if err := f.Advance(t1.Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := f.Advance(time.Unix(0, 0)); err != nil {
		t.Fatal(err)
	}
	g, err := OpenFloor(path)
	if err != nil {
		t.Fatal(err)
	}
	if want := t1.Truncate(time.Second); !g.Time().Equal(want) || !f.Time().Equal(want) {
		t.Errorf("floor after going back = %v / %v, want %v", f.Time(), g.Time(), want)
	}
	// A file older than Epoch (hand-edited) still floors at Epoch.
	os.WriteFile(path, []byte(`{"schema":1,"floor":"1999-01-01T00:00:00Z"}`), 0o600)
	if h, err := OpenFloor(path); err != nil || !h.Time().Equal(Epoch) {
		t.Errorf("old floor file = %v, %v", h, err)
	}
	for _, bad := range []string{"", "{}", `{"schema":1,"floor":"yesterday"}`, `{"schema":2,"floor":"2026-11-27T09:00:00Z"}`} {
		os.WriteFile(path, []byte(bad), 0o600)
		if _, err := OpenFloor(path); !errors.Is(err, ErrCorruptFloor) {
			t.Errorf("floor file %q: %v, want ErrCorruptFloor", bad, err)
		}
	}
}

func TestWindow(t *testing.T) {
	floor := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
	skew := 10 * time.Minute
	h := time.Hour
	for _, c := range []struct {
		name                   string
		issued, expires, clock time.Time
		expired, early         bool
	}{
		{"valid", floor, floor.Add(h), floor.Add(time.Minute), false, false},
		{"expired by the clock", floor, floor.Add(h), floor.Add(2 * h), true, false},
		{"within skew after expiry", floor, floor.Add(h), floor.Add(h + 5*time.Minute), false, false},
		{"expired by the floor, clock wound back", floor.Add(-3 * h), floor.Add(-h), floor.Add(-2 * h), true, false},
		{"expired at the floor exactly", floor.Add(-h), floor, floor.Add(-h), true, false},
		{"early", floor.Add(h), floor.Add(2 * h), floor, false, true},
		{"within skew before issue", floor.Add(5 * time.Minute), floor.Add(h), floor, false, false},
		{"clock behind the floor cannot say early", floor.Add(24 * h), floor.Add(48 * h), time.Unix(0, 0), false, false},
	} {
		exp, early := Window(c.issued, c.expires, c.clock, floor, skew)
		if exp != c.expired || early != c.early {
			t.Errorf("%s: expired %v early %v, want %v %v", c.name, exp, early, c.expired, c.early)
		}
	}
}

type sample struct {
	ID   string    `json:"id"`
	N    int       `json:"n"`
	At   time.Time `json:"at"`
	Args any       `json:"args,omitempty"`
}

func TestDecodeStrict(t *testing.T) {
	for _, c := range []struct {
		in, err string
	}{
		{`{"id":"a","n":1,"at":"2026-11-27T09:00:00Z"}`, ""},
		{` { "n" : 1 , "id" : "a" } `, ""},
		{`{"id":"a","args":{"k":1,"l":[1,{"m":2}]}}`, ""},
		{`{"id":"a","id":"b"}`, "duplicate key id"},
		{`{"id":"a","ID":"b"}`, "key differs from id only by case"},
		{`{"Id":"a"}`, "key differs from id only by case"},
		{"{\"\u0130d\":\"a\"}", "key differs from id only by case"},
		{`{"x":1}`, "unknown key"},
		{`{"id":null}`, "field id is null"},
		{`{"id":"a","args":{"k":1,"k":2}}`, "duplicate key"},
		{`{"id":"a","args":{"k":1,"K":2}}`, "two keys differ only by case"},
		{"{\"id\":\"a\",\"args\":{\"k\":1,\"\u212a\":2}}", "two keys differ only by case"},
		{"{\"id\":\"a\",\"args\":{\"id\":1,\"\u0130d\":2}}", "two keys differ only by case"},
		{`{"id":"a","args":[[[[[1]]]]]}`, "nested too deeply"},
		{`{"at":"2026-11-27T09:00:00.5Z"}`, "field at is not YYYY-MM-DDTHH:MM:SSZ"},
		{`{"at":"2026-11-27T17:00:00+08:00"}`, "field at is not YYYY-MM-DDTHH:MM:SSZ"},
		{`{"at":"2026-13-27T09:00:00Z"}`, "not a valid object"},
		{`{"n":"1"}`, "field n has the wrong type"},
		{`{"n":1.5}`, "field n has the wrong type"},
		{`{"id":"a"} {}`, "trailing data after the object"},
		{`{"id":"a"}x`, "trailing data after the object"},
		{`[1]`, "not a JSON object"},
		{``, "not a JSON object"},
		{"{\"id\":\"\xff\"}", "not valid UTF-8"},
		{`{"id":"a"`, "not valid JSON"},
		{`{"id":"a",}`, "not valid JSON"},
	} {
		var s sample
		err := DecodeStrict([]byte(c.in), &s)
		got := ""
		if err != nil {
			got = err.Error()
			var je *JSONError
			if !errors.As(err, &je) {
				t.Errorf("%s: %T is not a *JSONError", c.in, err)
			}
		}
		if got != c.err {
			t.Errorf("DecodeStrict(%s) = %q, want %q", c.in, got, c.err)
		}
	}
	if err := DecodeStrict([]byte(`{}`), new(int)); err == nil {
		t.Error("a non-struct target: no error")
	}
}

// FuzzDecodeStrict: never a panic, and what passes is what encoding/json
// reads too (strict is a subset).
func FuzzDecodeStrict(f *testing.F) {
	f.Add([]byte(`{"id":"a","n":1,"at":"2026-11-27T09:00:00Z","args":{"k":[1]}}`))
	f.Add([]byte(`{"id":"a","ID":"b"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var s sample
		if err := DecodeStrict(b, &s); err != nil {
			var je *JSONError
			if !errors.As(err, &je) || je.Msg == "" {
				t.Fatalf("uncoded error %v", err)
			}
		}
	})
}
