// Package hostile is an attacker on the acquirer link, for the test bench's
// hostile-link campaign (agent/testkit/crashtest, TestHostileCampaign): a TCP proxy
// on loopback between the terminal and the host simulator that decodes each
// frame with agent/acquirer's codec and, per exchange, applies a mutation a
// seeded Planner picks: pass (the majority, so installs progress), drop
// (hold the line or close it), delay past the terminal's timeout, duplicate,
// strip the MAC, forge a decline or an approved-with-defect code whose MAC
// still verifies, answer a reversal with a forged 25 (MACed and not) instead
// of sending it on, cut the TDK out of the sign-on answer, replay an earlier
// sign-on answer (verbatim, or with STAN and TID rewritten).
//
// The forgeries need no key. The UnionPay "ECB" MAC (PROTOCOLS.md §1) is a
// function of the XOR of the message's 8-byte blocks alone, so flipping bits
// of field 39 and the same bits at the same offsets mod 8 inside the RRN (37)
// or the authorisation code (38), keeping them digits or letters, leaves
// field 64 valid. The 0810 carries no MAC at all: its field 62 and its STAN
// are anyone's to rewrite.
//
// What the proxy cannot parse it forwards untouched, and it never panics on
// garbage. It records every frame both ways (Frames) and every exchange with
// the mutation applied (Exchanges), for the campaign's checks; its log lines
// carry kinds, STANs and response codes, never card data.
package hostile
