package command

import (
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestVerifierRefusals(t *testing.T) {
	_, forger, _ := ed25519.GenerateKey(nil)
	now := t0.Add(time.Minute)
	good := func() Envelope { return envelope(t, "c1", NameReportNow, "") }
	with := func(f func(*Envelope)) Envelope { e := good(); f(&e); return e }
	resign := func(payload []byte, f func(*Envelope)) []byte { // keeps the signature
		var e Envelope
		if err := json.Unmarshal(payload, &e); err != nil {
			t.Fatal(err)
		}
		f(&e)
		b, _ := json.Marshal(e)
		return b
	}
	valid := signEnv(t, good(), testKey)
	for _, c := range []struct {
		name    string
		payload []byte
		code    string
	}{
		{"unsigned", resign(valid, func(e *Envelope) { e.Sig = "" }), CodeUnsigned},
		{"forged: another key", signEnv(t, good(), forger), CodeBadSignature},
		{"altered: name", resign(valid, func(e *Envelope) { e.Name = NameRerunTestSale }), CodeBadSignature},
		{"altered: args", resign(signEnv(t, envelope(t, "c", NameRetryStep, `{"step":"sign-on"}`), testKey),
			func(e *Envelope) { e.Args = []byte(`{"step":"void"}`) }), CodeBadSignature},
		{"altered: window", resign(valid, func(e *Envelope) { e.ExpiresAt = e.ExpiresAt.Add(time.Minute) }), CodeBadSignature},
		{"signature not base64", resign(valid, func(e *Envelope) { e.Sig = "!!" }), CodeBadSignature},
		{"unknown kid", signEnv(t, with(func(e *Envelope) { e.KID = "central-2027" }), testKey), CodeUnknownKey},
		{"revoked kid", signEnv(t, with(func(e *Envelope) { e.KID = "central-2025" }), testKey), CodeKeyRevoked},
		{"other terminal", signEnv(t, with(func(e *Envelope) { e.TID = "10000002" }), testKey), CodeOtherTerminal},
		{"expired", signEnv(t, with(func(e *Envelope) {
			e.IssuedAt, e.ExpiresAt = now.Add(-DefaultSkew-5*time.Minute), now.Add(-DefaultSkew-time.Second)
		}), testKey), CodeExpired},
		{"not yet valid", signEnv(t, with(func(e *Envelope) {
			e.IssuedAt, e.ExpiresAt = now.Add(DefaultSkew+time.Minute), now.Add(DefaultSkew+2*time.Minute)
		}), testKey), CodeNotYetValid},
		{"window over 10 minutes", mustResign(t, with(func(e *Envelope) { e.ExpiresAt = e.IssuedAt.Add(MaxValidity + time.Second) })), CodeMalformed},
		{"unknown name, signed", mustResign(t, with(func(e *Envelope) { e.Name = "format-disk" })), CodeUnknown},
		{"bad args, signed", mustResign(t, with(func(e *Envelope) { e.Name, e.Args = NameRetryStep, []byte(`{"step":"live"}`) })), CodeBadArgs},
		{"unsigned format of before", []byte(`{"id":"c1","name":"report-now"}`), CodeUnsigned},
		{"too large", append([]byte(strings.Repeat(" ", MaxSize)), valid...), CodeTooLarge},
	} {
		t.Run(c.name, func(t *testing.T) {
			v := verifierIn(t, t.TempDir(), now)
			_, err := v.Accept(c.payload)
			var ce *Error
			if !errors.As(err, &ce) || ce.Code != c.code {
				t.Fatalf("Accept = %v, want %s", err, c.code)
			}
			if _, err := os.Stat(v.StatePath); err == nil {
				t.Error("a refused command's nonce was recorded")
			}
		})
	}
}

// mustResign signs e by hand, bypassing Sign's own checks, as a buggy or
// hostile signer holding the key would.
func mustResign(t *testing.T, e Envelope) []byte {
	e.Sig = ""
	e.IssuedAt, e.ExpiresAt = e.IssuedAt.UTC(), e.ExpiresAt.UTC()
	e.Sig = b64(ed25519.Sign(testKey, e.Canonical()))
	b, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// A wound-back clock does not revive a command: the floor, raised by a later
// command, has passed its expiry.
func TestExpiredByTheFloor(t *testing.T) {
	dir := t.TempDir()
	v := verifierIn(t, dir, t0.Add(time.Hour))
	later := envelope(t, "later", NameReportNow, "")
	later.IssuedAt, later.ExpiresAt = t0.Add(time.Hour), t0.Add(time.Hour+5*time.Minute)
	if _, err := v.Accept(signEnv(t, later, testKey)); err != nil {
		t.Fatal(err)
	}
	// Back to t0+1m: the earlier command would be in its window by the clock.
	early := signEnv(t, envelope(t, "early", NameReportNow, ""), testKey)
	_, err := verifierIn(t, dir, t0.Add(time.Minute)).Accept(early)
	var ce *Error
	if !errors.As(err, &ce) || ce.Code != CodeExpired {
		t.Errorf("command before the floor: %v, want E_CMD_EXPIRED", err)
	}
}

// Nonces leave the record once the floor passes their expiry, and the record
// is capped: a full one refuses with E_CMD_BUSY rather than forget a nonce.
func TestNonceRecordBounded(t *testing.T) {
	dir := t.TempDir()
	v := verifierIn(t, dir, t0.Add(time.Minute))
	v.MaxNonces = 3
	for i := range 3 {
		if _, err := v.Accept(signEnv(t, envelope(t, "a", NameReportNow, ""), testKey)); err != nil {
			t.Fatalf("command %d: %v", i, err)
		}
	}
	_, err := v.Accept(signEnv(t, envelope(t, "b", NameReportNow, ""), testKey))
	var ce *Error
	if !errors.As(err, &ce) || ce.Code != CodeBusy {
		t.Fatalf("fourth command within the window: %v, want E_CMD_BUSY", err)
	}
	// Ten minutes on, a command raises the floor past the first three's
	// expiry: they leave the record.
	later := envelope(t, "c", NameReportNow, "")
	later.IssuedAt, later.ExpiresAt = t0.Add(10*time.Minute), t0.Add(12*time.Minute)
	v2 := verifierIn(t, dir, t0.Add(10*time.Minute))
	v2.MaxNonces = 3
	if _, err := v2.Accept(signEnv(t, later, testKey)); err != nil {
		t.Fatalf("after the window: %v", err)
	}
	b, _ := os.ReadFile(filepath.Join(dir, "command-nonces.json"))
	var r record
	json.Unmarshal(b, &r)
	if len(r.Nonces) > 3 {
		t.Errorf("record holds %d nonces", len(r.Nonces))
	}
	next := envelope(t, "d", NameReportNow, "")
	next.IssuedAt, next.ExpiresAt = t0.Add(11*time.Minute), t0.Add(13*time.Minute)
	if _, err := v2.Accept(signEnv(t, next, testKey)); err != nil {
		t.Fatalf("next: %v", err)
	}
	b, _ = os.ReadFile(filepath.Join(dir, "command-nonces.json"))
	json.Unmarshal(b, &r)
	if len(r.Nonces) != 2 {
		t.Errorf("record holds %d nonces, want the 2 still valid", len(r.Nonces))
	}
}

func TestCorruptNonceRecordIsAnError(t *testing.T) {
	dir := t.TempDir()
	v := verifierIn(t, dir, t0.Add(time.Minute))
	for _, bad := range []string{"", "{}", `{"schema":1,"nonces":[{"nonce":"x","expires_at":"soon"}]}`} {
		os.WriteFile(v.StatePath, []byte(bad), 0o600)
		v := verifierIn(t, dir, t0.Add(time.Minute))
		_, err := v.Accept([]byte(signedPayload(t, "a", NameReportNow)))
		if !errors.Is(err, ErrCorruptState) {
			t.Errorf("record %q: %v, want ErrCorruptState", bad, err)
		}
	}
}
