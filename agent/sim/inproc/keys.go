package inproc

import (
	"github.com/posagent/posagent/agent/acquirer"
	"github.com/posagent/posagent/provisioning"
)

// DemoTMK is the simulated terminal's master key, the one the test rig also
// injects and hostsim uses. It is public (it is in this file), so a check
// value made under it protects nothing: it exists so the demo's merchant
// record can carry a real account_check (testdata/posagent.example.yaml:
// the demo debit card under DemoTMK and TID 10000001). A real terminal's
// TMK is injected with posctl keys inject and is never in source or config.
const DemoTMK = "0123456789ABCDEFFEDCBA9876543210"

// KeyStore returns a new in-memory key store holding DemoTMK: the simulated
// terminal's keys, which the simulated host needs none of.
func KeyStore() *acquirer.MemKeyStore {
	tmk, err := acquirer.ParseKey(DemoTMK)
	if err != nil {
		panic(err) // a constant
	}
	ks := &acquirer.MemKeyStore{}
	if err := ks.SaveKeys(acquirer.Keys{TMK: tmk}); err != nil {
		panic(err) // the memory store does not fail
	}
	tmk.Wipe()
	return ks
}

// Accounts is the simulated terminal's settlement account checker: the
// key store's checker (acquirer.Accounts) over KeyStore, for terminal tid.
func Accounts(tid string) provisioning.AccountChecker {
	return acquirer.Accounts{Keys: KeyStore(), TID: tid}
}
