// Package crashtest holds the firmware build's whole-process campaigns
// (`make crashtest`), on the real posagent binary with real pcscd and a
// virtual chip card, a pty printer, the acquirer simulator and mosquitto,
// N fresh installs each, the invariants checked and printed per install.
//
//   - TestCrashCampaign (MODE=crash, the default; CRASH_N, CRASH_SEED): the
//     agent is SIGKILLed at random moments across the whole install and
//     restarted until it is live; power cuts must not break the invariants.
//   - TestHostileCampaign (MODE=hostile; HOSTILE_N, HOSTILE_SEED):
//     agent/testkit/hostile's attacker sits between the agent and the host, dropping,
//     delaying, duplicating, stripping and forging answers, mixed with
//     SIGKILLs, and the campaign answers retry as an installer would; no
//     double charge, no sale over an unresolved approval, no clear track on
//     the wire, and every install live or stopped for the operator with a
//     code, never a retry loop.
//
// Both run only when their N is set, since they hold the machine's PC/SC
// slots for their whole length.
package crashtest
