package installer

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/posagent/posagent/provisioning/provisioningtest"
)

func TestHashPassword(t *testing.T) {
	h, err := HashPassword("2468", nil, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "pbkdf2-sha256$1000$") || strings.Contains(h, "2468") {
		t.Fatalf("hash %q", h)
	}
	ph, err := parsePasswordHash(h)
	if err != nil {
		t.Fatal(err)
	}
	for pw, want := range map[string]bool{"2468": true, "246": false, "24680": false, "": false, "8642": false} {
		if got := ph.matches(pw); got != want {
			t.Errorf("matches(%q) = %v", pw, got)
		}
	}
	// A random salt each time: equal passwords do not give equal strings.
	h2, _ := HashPassword("2468", nil, 1000)
	if h2 == h {
		t.Error("two hashes of one password are equal: salt not random")
	}
	// Fixed salt and cost give a fixed string, so configs can be checked in tests.
	a, _ := HashPassword("1234", []byte("0123456789abcdef"), 10)
	b, _ := HashPassword("1234", []byte("0123456789abcdef"), 10)
	if a != b {
		t.Error("fixed salt gives different hashes")
	}
	if d, _ := HashPassword("1357", []byte("0123456789abcdef"), 0); !strings.Contains(d, "$100000$") {
		t.Errorf("default cost: %q", d)
	}
	// One to three digits fall at the keypad within hours; more than the
	// field takes could never be typed.
	for _, bad := range []string{"", "12a4", " 1234", "1", "12", "123", "1234567890123"} {
		if _, err := HashPassword(bad, nil, 1); err == nil {
			t.Errorf("HashPassword(%q) accepted", bad)
		}
	}
}

func TestParsePasswordHashErrors(t *testing.T) {
	good, _ := HashPassword("2468", []byte("0123456789abcdef"), 1000)
	parts := strings.Split(good, "$")
	for name, s := range map[string]string{
		"empty":        "",
		"plain text":   "2468",
		"other scheme": "bcrypt$" + strings.Join(parts[1:], "$"),
		"bad cost":     parts[0] + "$x$" + parts[2] + "$" + parts[3],
		"zero cost":    parts[0] + "$0$" + parts[2] + "$" + parts[3],
		"short salt":   parts[0] + "$1000$YWJj$" + parts[3],
		"bad base64":   parts[0] + "$1000$" + parts[2] + "$!!",
		"short hash":   parts[0] + "$1000$" + parts[2] + "$YWJj",
	} {
		err := ValidatePasswordHash(s)
		if !errors.Is(err, ErrPasswordHash) {
			t.Errorf("%s: %v", name, err)
		}
		// The error says what is wrong, never what the value was.
		if err != nil && len(s) > 8 && strings.Contains(err.Error(), s) {
			t.Errorf("%s: error echoes the hash", name)
		}
	}
}

func TestVirtualClock(t *testing.T) {
	c := NewVirtualClock(time.Unix(100, 0))
	var fired []string
	c.AfterFunc(2*time.Second, func() { fired = append(fired, "b") })
	c.AfterFunc(time.Second, func() { fired = append(fired, "a") })
	stop := c.AfterFunc(time.Second, func() { fired = append(fired, "stopped") })
	if !stop() || stop() {
		t.Fatal("stop should report true once")
	}
	c.Advance(500 * time.Millisecond)
	if len(fired) != 0 {
		t.Fatalf("fired early: %v", fired)
	}
	c.Advance(2 * time.Second)
	if strings.Join(fired, ",") != "a,b" || c.Now() != time.Unix(102, 5e8) {
		t.Fatalf("fired %v at %v", fired, c.Now())
	}
	// Sleep advances and reports the context, which a timer may have ended.
	ctx, cancel := context.WithCancel(context.Background())
	c.AfterFunc(time.Second, cancel)
	if err := c.Sleep(ctx, 10*time.Second); !errors.Is(err, context.Canceled) {
		t.Fatalf("Sleep = %v", err)
	}
	if err := c.Sleep(context.Background(), time.Second); err != nil {
		t.Fatal(err)
	}
}

func TestLockRecord(t *testing.T) {
	s := &provisioningtest.Store{}
	l, err := loadLock(s)
	if err != nil || l.Failures != 0 || !l.LockedUntil.IsZero() {
		t.Fatalf("no record: %+v, %v", l, err)
	}
	until := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if err := saveLock(s, lockState{Failures: 2, LockedUntil: until}); err != nil {
		t.Fatal(err)
	}
	if l, err := loadLock(s); err != nil || l.Failures != 2 || !l.LockedUntil.Equal(until) {
		t.Fatalf("round trip: %+v, %v", l, err)
	}
	for _, bad := range []string{"", "{", `{"schema":2}`, `{"schema":1,"failures":-1}`} {
		s.Data = []byte(bad)
		if _, err := loadLock(s); !errors.Is(err, errCorruptLock) {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

func TestIdentityRecord(t *testing.T) {
	s := &provisioningtest.Store{}
	if _, ok, err := loadIdentity(s); ok || err != nil {
		t.Fatalf("no record: %v %v", ok, err)
	}
	id := Identity{MID: "123456789012345", TID: "12345678"}
	if err := saveIdentity(s, id); err != nil {
		t.Fatal(err)
	}
	if got, ok, err := loadIdentity(s); !ok || err != nil || got != id {
		t.Fatalf("round trip: %+v %v %v", got, ok, err)
	}
	s.Data = []byte(`{"schema":1,"mid":"12","tid":"12345678"}`)
	if _, _, err := loadIdentity(s); err == nil {
		t.Fatal("short MID accepted from the store")
	}
}

func TestMaskRuns(t *testing.T) {
	for in, want := range map[string]string{
		"Card 6222021234567890128 is":  "Card 622202*********0128 is",
		"MID 898310048990001":          "MID 898310048990001", // 15 digits: a MID, not a PAN
		"6250941234567898":             "625094******7898",
		"622202*********0128":          "622202*********0128",
		"STAN 000012 RC 05":            "STAN 000012 RC 05",
		"12345678901234567890123 long": "*********************** long",
	} {
		if got := maskRuns(in); got != want {
			t.Errorf("maskRuns(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestBank(t *testing.T) {
	in := &Installer{o: Options{Banks: map[string]string{"62": "UnionPay", "622202": "ICBC"}}}
	for masked, want := range map[string]string{
		"622202*********0128": "ICBC",
		"625094******7898":    "UnionPay",
		"411111******1111":    "未知 unknown",
	} {
		if got := in.bank(masked); got != want {
			t.Errorf("bank(%s) = %s, want %s", masked, got, want)
		}
	}
}
