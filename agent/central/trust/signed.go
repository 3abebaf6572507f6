package trust

import (
	"encoding/base64"
	"errors"
	"time"
)

// Kind is one kind of signed payload (the install ticket, central's
// commands) as the checks every kind shares see it: the noun its refusals
// name it by, its clock skew, and its refusal codes. The checks are one
// contract (docs/mqtt.md, "Signed messages"), so that a ticket and a
// command signed alike are refused alike, each under its own codes.
type Kind struct {
	Noun        string        // "ticket": "the ticket carries no signature"
	DefaultSkew time.Duration // the skew CheckWindow allows when given 0
	Codes       Codes
}

// Codes are a kind's refusal codes (E_TICKET_…, E_CMD_…) for the checks
// Kind does.
type Codes struct {
	Unsigned, BadSignature, KeyRevoked, UnknownKey, NotYetValid, Expired string
}

// Refusal is a payload refused by one of Kind's checks: the kind's code and
// a message that says which rule. It names the kid, the only value it
// shows: a key id is public and says which key to look at.
type Refusal struct {
	Code, Message string
}

// VerifySignature is the check that comes first: nothing of an
// unauthenticated payload is acted on. sig is the payload's sig field; it
// must be 64 bytes of strict base64 (one spelling per signature) that
// verify over canonical with the key that kid names in keys.
func (k Kind) VerifySignature(keys *KeyRing, kid, sig string, canonical []byte) *Refusal {
	if sig == "" {
		return &Refusal{k.Codes.Unsigned, "the " + k.Noun + " carries no signature"}
	}
	raw, err := base64.StdEncoding.Strict().DecodeString(sig)
	if err != nil || len(raw) != 64 {
		return &Refusal{k.Codes.BadSignature, "the signature is not 64 bytes of base64"}
	}
	switch err := keys.Verify(kid, canonical, raw); {
	case errors.Is(err, ErrRevokedKey):
		return &Refusal{k.Codes.KeyRevoked, "the " + k.Noun + " is signed with a revoked key (kid " + kid + ")"}
	// A kid that is not ValidKID is not echoed: refusals reach logs and
	// screens, and it could be any bytes the sender chose.
	case errors.Is(err, ErrUnknownKey) && ValidKID(kid):
		return &Refusal{k.Codes.UnknownKey, "no configured central key has kid " + kid}
	case errors.Is(err, ErrUnknownKey):
		return &Refusal{k.Codes.UnknownKey, "the " + k.Noun + " names no valid kid"}
	case err != nil:
		return &Refusal{k.Codes.BadSignature, "the signature does not verify with central's key " + kid}
	}
	return nil
}

// CheckWindow checks issued and expires by Window's rule: against the
// terminal's clock now (nil means time.Now) and the floor, with skew (0
// means the kind's DefaultSkew).
func (k Kind) CheckWindow(issued, expires time.Time, now func() time.Time, floor *Floor, skew time.Duration) *Refusal {
	clock := time.Now()
	if now != nil {
		clock = now()
	}
	if skew == 0 {
		skew = k.DefaultSkew
	}
	expired, early := Window(issued, expires, clock, floor.Time(), skew)
	if early {
		return &Refusal{k.Codes.NotYetValid, "issued_at is later than the terminal's clock"}
	}
	if expired {
		return &Refusal{k.Codes.Expired, "expires_at has passed"}
	}
	return nil
}
