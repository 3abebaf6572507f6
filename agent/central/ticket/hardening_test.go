package ticket

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/posagent/posagent/agent/central/trust"
	"github.com/posagent/posagent/provisioning"
)

// The first six tests were written against the version 1 verifier and failed
// there: it took duplicate and case-folded keys, any size, any test amount,
// called an older ticket a replay, and refused everything against a clock
// behind what it knew.

func TestDuplicateKeysRefused(t *testing.T) {
	pub, priv := keys(t)
	good := sign(t, sample(nonce(1), t0), priv)
	dup := bytes.Replace(good, []byte(`{`), []byte(`{"mid":"000000000000000",`), 1)
	v := verifier(t, pub, t0.Add(time.Hour))
	if _, err := v.Accept(dup); !errors.Is(err, ErrMalformed) {
		t.Errorf("duplicate key: Accept = %v, want E_TICKET_MALFORMED", err)
	}
}

func TestCaseFoldedKeysRefused(t *testing.T) {
	pub, priv := keys(t)
	good := sign(t, sample(nonce(1), t0), priv)
	for name, p := range map[string][]byte{
		"renamed":    bytes.Replace(good, []byte(`"mid":`), []byte(`"MID":`), 1),
		"both cases": bytes.Replace(good, []byte(`{`), []byte(`{"Mid":"000000000000000",`), 1),
	} {
		v := verifier(t, pub, t0.Add(time.Hour))
		if _, err := v.Accept(p); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: Accept = %v, want E_TICKET_MALFORMED", name, err)
		}
	}
}

func TestOversizedTicketRefusedBeforeParsing(t *testing.T) {
	pub, priv := keys(t)
	good := sign(t, sample(nonce(1), t0), priv)
	big := append([]byte(strings.Repeat(" ", 1<<20)), good...)
	v := verifier(t, pub, t0.Add(time.Hour))
	_, err := v.Accept(big)
	var te *Error
	if !errors.As(err, &te) || te.Code != "E_TICKET_TOO_LARGE" {
		t.Errorf("1 MiB ticket: Accept = %v, want E_TICKET_TOO_LARGE", err)
	}
}

func TestTestAmountCapped(t *testing.T) {
	pub, priv := keys(t)
	tk := sample(nonce(1), t0)
	tk.TestAmount = 1_000_000 // 10,000 CNY
	v := verifier(t, pub, t0.Add(time.Hour))
	_, err := v.Accept(sign(t, tk, priv))
	var te *Error
	if !errors.As(err, &te) || te.Code != "E_TICKET_AMOUNT" {
		t.Errorf("test_amount 1000000: Accept = %v, want E_TICKET_AMOUNT", err)
	}
}

func TestOlderTicketIsSuperseded(t *testing.T) {
	pub, priv := keys(t)
	v := verifier(t, pub, t0.Add(time.Hour))
	if _, err := v.Accept(sign(t, sample(nonce(1), t0), priv)); err != nil {
		t.Fatal(err)
	}
	_, err := v.Accept(sign(t, sample(nonce(2), t0.Add(-time.Minute)), priv))
	var te *Error
	if !errors.As(err, &te) || te.Code != "E_TICKET_SUPERSEDED" {
		t.Errorf("older ticket: Accept = %v, want E_TICKET_SUPERSEDED", err)
	}
}

// A clock that falls behind what the terminal already knows (an RTC without a
// battery after a power cut) counts as that knowledge: the newer genuine
// ticket is taken, not refused as "not yet valid" against 1970.
func TestClockBehindFloorCountsAsFloor(t *testing.T) {
	pub, priv := keys(t)
	v := verifier(t, pub, t0.Add(time.Hour))
	if _, err := v.Accept(sign(t, sample(nonce(1), t0), priv)); err != nil {
		t.Fatal(err)
	}
	unset := again(t, v, time.Unix(0, 0))
	if _, err := unset.Accept(sign(t, sample(nonce(2), t0.Add(2*time.Hour)), priv)); err != nil {
		t.Errorf("newer ticket with the clock at 1970: %v, want accepted", err)
	}
}

// The floor is what a wound-back clock cannot undo: once the terminal knows
// it is later than a ticket's expiry (a command's issued_at, the host's time
// at sign-on), the ticket stays expired whatever the clock says.
func TestExpiredByTheFloor(t *testing.T) {
	pub, priv := keys(t)
	tk := sample(nonce(1), t0)
	payload := sign(t, tk, priv)
	v := verifier(t, pub, t0.Add(time.Hour)) // the clock, wound back into the window
	if err := v.Floor.Advance(tk.ExpiresAt.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Accept(payload); !errors.Is(err, ErrExpired) {
		t.Errorf("ticket expired by the floor: %v, want E_TICKET_EXPIRED", err)
	}
	// After a restart too: the floor is on disk.
	if _, err := again(t, v, t0.Add(time.Hour)).Accept(payload); !errors.Is(err, ErrExpired) {
		t.Errorf("after a restart: %v, want E_TICKET_EXPIRED", err)
	}
}

// Accepting a ticket raises the floor to its issued_at.
func TestAcceptRaisesTheFloor(t *testing.T) {
	pub, priv := keys(t)
	v := verifier(t, pub, t0.Add(time.Hour))
	if _, err := v.Accept(sign(t, sample(nonce(1), t0), priv)); err != nil {
		t.Fatal(err)
	}
	if f := again(t, v, t0).Floor.Time(); !f.Equal(t0) {
		t.Errorf("floor = %v, want the ticket's issued_at %v", f, t0)
	}
}

func TestKeyRotationAndRevocation(t *testing.T) {
	oldPub, oldPriv := keys(t)
	newPub, newPriv := keys(t)
	during, err := trust.NewKeyRing([]trust.Key{{ID: "c-2026a", Public: oldPub}, {ID: "c-2026b", Public: newPub}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	after, err := trust.NewKeyRing([]trust.Key{{ID: "c-2026b", Public: newPub}}, []string{"c-2026a"})
	if err != nil {
		t.Fatal(err)
	}
	signed := func(k string, priv ed25519.PrivateKey, n byte, issued time.Time) []byte {
		tk := sample(nonce(n), issued)
		tk.KID = k
		return sign(t, tk, priv)
	}
	v := verifier(t, oldPub, t0.Add(time.Hour))
	v.Keys = during
	if _, err := v.Accept(signed("c-2026a", oldPriv, 1, t0)); err != nil {
		t.Errorf("old key during the rotation: %v", err)
	}
	if _, err := v.Accept(signed("c-2026b", newPriv, 2, t0.Add(time.Minute))); err != nil {
		t.Errorf("new key during the rotation: %v", err)
	}
	v.Keys = after
	if _, err := v.Accept(signed("c-2026a", oldPriv, 3, t0.Add(2*time.Minute))); !errors.Is(err, ErrKeyRevoked) {
		t.Errorf("revoked key: %v, want E_TICKET_KEY_REVOKED", err)
	}
	if _, err := v.Accept(signed("c-2027", newPriv, 4, t0.Add(3*time.Minute))); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("unknown kid: %v, want E_TICKET_UNKNOWN_KEY", err)
	}
	if _, err := v.Accept(signed("c-2026b", newPriv, 5, t0.Add(4*time.Minute))); err != nil {
		t.Errorf("new key after the rotation: %v", err)
	}
}

func TestMaxTestAmountConfigurable(t *testing.T) {
	pub, priv := keys(t)
	tk := sample(nonce(1), t0)
	tk.TestAmount = 500
	v := verifier(t, pub, t0.Add(time.Hour))
	v.MaxTestAmount = 500
	if _, err := v.Accept(sign(t, tk, priv)); err != nil {
		t.Errorf("5.00 CNY under a 5.00 cap: %v", err)
	}
}

// Offer keeps at most MaxSize+1 bytes of a payload, so a flood of huge
// messages costs bounded memory and each is still refused as too large.
func TestOfferBoundsPayloads(t *testing.T) {
	pub, priv := keys(t)
	rec := &recorder{ch: make(chan struct{}, maxPending+2)}
	src := &Source{Verifier: verifier(t, pub, t0.Add(time.Hour)), Reporter: rec}
	huge := make([]byte, 8<<20)
	for range 2 * maxPending {
		src.Offer(huge)
	}
	src.mu.Lock()
	n, size := len(src.pending), 0
	for _, p := range src.pending {
		size += len(p)
	}
	src.mu.Unlock()
	if n != maxPending || size > maxPending*(MaxSize+1) {
		t.Fatalf("pending %d payloads, %d bytes", n, size)
	}
	src.Offer(sign(t, sample(nonce(1), t0), priv))
	if _, err := src.Parameters(context.Background(), provisioning.Terminal{TID: tid}); err != nil {
		t.Fatal(err)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.reports) != maxPending-1 || rec.reports[0].Error.Code != CodeTooLarge {
		t.Errorf("%d refusals reported, first %+v", len(rec.reports), rec.reports[0].Error)
	}
}
