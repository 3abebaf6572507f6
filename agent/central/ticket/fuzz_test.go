package ticket

import (
	"crypto/ed25519"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fuzzKey is fixed so that the committed seed corpora (testdata/fuzz/) hold
// tickets that verify: the fuzzer starts from valid ones and mutates.
var fuzzKey = ed25519.NewKeyFromSeed([]byte("posagent ticket fuzz seed 32 byt"))

// FuzzParse: any bytes give a ticket or a coded error, never a panic; what
// parses is within MaxSize.
func FuzzParse(f *testing.F) {
	f.Add(mustSign(f, sample(nonce(1), t0)))
	f.Fuzz(func(t *testing.T, b []byte) {
		tk, err := Parse(b)
		if err != nil {
			var te *Error
			if !errors.As(err, &te) || !strings.HasPrefix(te.Code, "E_TICKET_") || te.Message == "" {
				t.Fatalf("uncoded error %v", err)
			}
			return
		}
		if len(b) > MaxSize {
			t.Fatalf("%d bytes parsed", len(b))
		}
		_ = tk.Canonical()
	})
}

// FuzzVerify: through the whole verifier (key ring, floor, replay state),
// any bytes are refused with a code or give a ticket that passes every rule:
// for this terminal, in its window, signed by the configured key, capped.
func FuzzVerify(f *testing.F) {
	f.Add(mustSign(f, sample(nonce(1), t0)))
	ring := ring(f, fuzzKey.Public().(ed25519.PublicKey))
	now := t0.Add(time.Hour)
	f.Fuzz(func(t *testing.T, b []byte) {
		dir := t.TempDir()
		v := &Verifier{Keys: ring, TID: tid, StatePath: filepath.Join(dir, "ticket-state.json"), Floor: floor(t, dir),
			Now: func() time.Time { return now }}
		tk, err := v.Accept(b)
		if err != nil {
			var te *Error
			if !errors.As(err, &te) || !strings.HasPrefix(te.Code, "E_TICKET_") || te.Message == "" {
				t.Fatalf("uncoded error %v", err)
			}
			return
		}
		if tk.TID != tid || tk.KID != kid || tk.check() != nil || tk.TestAmount > DefaultMaxTestAmount ||
			!tk.ExpiresAt.After(now.Add(-DefaultSkew)) || tk.IssuedAt.After(now.Add(DefaultSkew)) {
			t.Fatalf("accepted %+v", tk)
		}
	})
}

func mustSign(tb testing.TB, tk Ticket) []byte {
	b, err := Sign(tk, fuzzKey)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}
