package provisioning

import (
	"errors"
	"slices"
)

// The money rule: what an answer from the host means for the card. It lives
// here, in one place, because every way a terminal charges a card twice is a
// place where an answer was believed that should not have been.

// Integrity says how far an answer can be believed. The Host sets it on
// every HostResponse; judge reads it.
type Integrity string

// Integrity levels.
const (
	// IntegrityNone: no MAC verified the answer (none was sent, or it did
	// not verify). Anyone on the link may have written it.
	IntegrityNone Integrity = ""
	// IntegrityForgeable: the MAC verified, but the acquirer's MAC can be
	// forged without the key (the UnionPay "ECB" MAC is DES over the XOR of
	// the message's blocks) and the link is not authenticated: a decline may
	// be an approval someone rewrote.
	IntegrityForgeable Integrity = "forgeable"
	// IntegrityAuthentic: a MAC that cannot be forged verified, or the link
	// itself is authenticated (TLS with a pinned CA), or the host is in
	// process (the simulator).
	IntegrityAuthentic Integrity = "authentic"
)

// ErrNotSent is what a Host wraps when no byte of the request can have left
// the terminal (the connection was never made): the host cannot have
// processed it, so there is nothing to reverse and no reversal try used up.
var ErrNotSent = errors.New("provisioning: the request never left the terminal")

// ErrMismatch is what a Host wraps for an answer that is not for its request
// (MTI, processing code, amount, STAN, TID or MID differ): it was written for
// another message, or rewritten, and says nothing about this one.
var ErrMismatch = errors.New("provisioning: the answer does not match the request")

// ResponseCodes is an acquirer profile's table of field-39 codes: which
// answers to a sale or void are approvals and which are final declines.
// Every other code, and every answer the table cannot be trusted for, leaves
// the message to be reversed.
type ResponseCodes struct {
	// Approved codes charge the card: the sale must later be voided.
	// UnionPay's "approved with defect" codes (A2, A4, A5, A6) and ISO's
	// partial and VIP approvals (10, 11) are approvals too.
	Approved []string
	// Declined codes are final: the host did nothing to the card.
	Declined []string
}

// DefaultResponseCodes is the UnionPay POS table. Codes that say the outcome
// is unknown (06 error, 09 in progress, 19 re-enter, 22 suspected
// malfunction, 68 answer too late, 91 issuer down, 94 duplicate, 96 system
// malfunction, 98 no answer from the issuer, A0 MAC error …) are in neither
// list on purpose.
var DefaultResponseCodes = ResponseCodes{
	Approved: []string{"00", "10", "11", "A2", "A4", "A5", "A6"},
	Declined: []string{"01", "03", "04", "05", "07", "12", "13", "14", "15", "25", "30", "33", "34", "35", "36",
		"37", "38", "40", "41", "43", "45", "51", "54", "55", "57", "58", "59", "61", "62", "64", "65", "75", "77"},
}

// outcome is what an answer means for the money.
type outcome int

const (
	// unknown: the host may have charged (or cancelled) — the message is
	// reversed before anything else goes online.
	unknown outcome = iota
	// approved: the host did it; the record is kept (a sale is voided later).
	approved
	// declined: the host did nothing, and the answer can be trusted for it.
	declined
	// declinedUnproven: the answer says declined, but a forgeable MAC on an
	// unauthenticated link cannot tell it from a rewritten approval. The
	// installer is told "declined" and the message is reversed anyway: a
	// reversal of a real decline is harmless (the host answers 25 or 00).
	declinedUnproven
)

func (f *Flow) codes() ResponseCodes {
	if len(f.Codes.Approved) == 0 && len(f.Codes.Declined) == 0 {
		return DefaultResponseCodes
	}
	return f.Codes
}

// judge applies the money rule to an answer the Host returned without error
// (so it matched the request's MTI, processing code, amount, STAN, TID and
// MID: a Host returns ErrMismatch otherwise). The reason is field 39 of the
// reversal when the outcome leaves one.
func (f *Flow) judge(r HostResponse) (outcome, string) {
	c := f.codes()
	switch {
	case r.Integrity == IntegrityNone:
		return unknown, "A0" // the answer failed its MAC check, as far as the terminal can tell
	case slices.Contains(c.Approved, r.RC):
		return approved, ""
	case slices.Contains(c.Declined, r.RC) && r.Integrity == IntegrityAuthentic:
		return declined, ""
	case slices.Contains(c.Declined, r.RC):
		return declinedUnproven, "06"
	}
	return unknown, "06" // an answer that settles nothing
}

// reversalFinal says whether an answer to a reversal ends it: 00 (reversed)
// with a MAC that verified, or 25 (the host never had the original) with a
// MAC that cannot be forged. Under the forgeable ECB MAC on an open link a
// 25 is what anyone who kept the reversal from the host would answer (the
// sale's own MACed approval rewritten to 0410/25 still verifies), and
// believing it leaves a charge standing; it is sent again, and after the
// limit the acquirer settles it by hand. (A rewritten 00 cannot be told
// from the host's: on such a link only TLS protects the reversal.)
func reversalFinal(r HostResponse) bool {
	switch r.Integrity {
	case IntegrityAuthentic:
		return r.RC == "00" || r.RC == "25"
	case IntegrityForgeable:
		return r.RC == "00"
	}
	return false
}

// kindText names a message kind for the installer.
func kindText(kind string) Text {
	switch kind {
	case "sale":
		return Text{"测试交易", "test sale"}
	case "void":
		return Text{"撤销交易", "void"}
	}
	return Text{kind, kind}
}
