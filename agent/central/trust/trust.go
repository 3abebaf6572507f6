// Package trust is what a terminal trusts central with, shared by the signed
// install ticket (agent/central/ticket) and central's signed commands
// (agent/central/command): central's Ed25519 verification keys by key id, with
// rotation and revocation (KeyRing); the canonical encoding its signatures
// cover (Canonical); strict JSON decoding of signed payloads (DecodeStrict);
// a persisted time floor that never goes back (Floor), against which
// validity windows are checked when the terminal's clock cannot be trusted;
// and the checks both kinds make alike, each under its own codes (Kind: the
// signature by kid, the validity window).
//
// docs/mqtt.md, "Signed messages", is the contract for central's signers.
package trust

import (
	"bytes"
	"encoding/binary"
	"time"
)

// Canonical is the byte string a signature covers: domain (which names the
// message kind and its version, so that a signature over one kind can never
// be taken for another), then each field as a 4-byte big-endian length and
// its bytes. Length prefixes make it unambiguous without escaping; another
// language produces it in a dozen lines.
func Canonical(domain string, fields ...string) []byte {
	n := len(domain)
	for _, f := range fields {
		n += 4 + len(f)
	}
	b := bytes.NewBuffer(make([]byte, 0, n))
	b.WriteString(domain)
	for _, f := range fields {
		var l [4]byte
		binary.BigEndian.PutUint32(l[:], uint32(len(f)))
		b.Write(l[:])
		b.WriteString(f)
	}
	return b.Bytes()
}

// StampLayout is the only time format of signed payloads: RFC 3339, UTC,
// whole seconds ("2026-11-27T09:00:00Z"). One spelling per instant, so the
// JSON and the canonical form cannot disagree.
const StampLayout = "2006-01-02T15:04:05Z"

// Stamp formats t in StampLayout (UTC, truncated to the second).
func Stamp(t time.Time) string { return t.UTC().Truncate(time.Second).Format(StampLayout) }
