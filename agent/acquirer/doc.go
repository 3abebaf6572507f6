// Package acquirer speaks the UnionPay POS dialect of ISO 8583 to the acquirer
// host: DES/3DES key handling and check values, working keys from sign-on,
// the UnionPay "ECB" MAC and ANSI X9.19, the message spec on moov-io/iso8583,
// the TCP framing (length, TPDU, header), a masking Describe, and a Client
// that implements provisioning.Host: chip, swiped and fallback sales (tracks
// encrypted under the TDK), PIN blocks under the PIK, and reversals that
// repeat the original's PAN. The Client also implements
// provisioning.PANSealer, so the PAN a reversal needs after a restart is kept
// in the checkpoint only sealed under a key derived from the TMK.
//
// Nothing in this package logs or formats a PAN, track, PIN block or key:
// errors name the field id, never the value, and key types print only their
// check value.
package acquirer
