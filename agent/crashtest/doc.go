// Package crashtest is the crash campaign of the firmware build (`make
// crashtest`): the real posagent binary, on real pcscd with a virtual chip
// card, a pty printer, the acquirer simulator and mosquitto, is SIGKILLed at
// random moments across the whole install and restarted until it is live,
// N times over; after each install the invariants a power cut must not break
// are checked and printed. The campaign is TestCrashCampaign; it runs only
// when CRASH_N is set, since it holds the machine's PC/SC slots for its whole
// length.
package crashtest
