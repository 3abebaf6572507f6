// Package provisioning is the install procedure of a UnionPay POS terminal as an
// explicit state machine: selftest → network → parameters → sign-on → bind-card
// → test-sale → void → live, with needs-attention for the installer.
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
