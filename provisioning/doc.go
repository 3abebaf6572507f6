// Package provisioning is the install procedure of a UnionPay POS terminal as an
// explicit state machine: selftest → network → parameters → sign-on → the
// acquirer's downloads (capk, ic-params, terminal-params) and status-upload →
// bind-card → test-sale → print-slip → void → print-void-slip → closing the
// test batch (settle, sign-off, sign-on-business) → live, with reverse and
// needs-attention off the line (procedure.go is the table).
//
// Every answer's processing requirement (the host's demand) is persisted and
// run before the next transaction; downloads are staged and become active
// only at the host's acknowledged end (downloads.go); the flow's clock is
// floored and set from the host over an authenticated link (clock.go).
//
// The checkpoint is saved before each step runs, so every step is written to be
// run twice; the resume table says where a restart continues; an empty or
// corrupt checkpoint is an error, never a new terminal. Devices, the host,
// reporting and storage are small interfaces defined here (ports.go, flow.go)
// and implemented by the agent: the flow never sees a driver.
//
// The settlement-card binding rules (binding.go) are real, not simulated: Luhn,
// UnionPay AID/BIN, card type, expiry, the cardholder name against the
// registration, and the salted hash of the settlement account.
package provisioning
