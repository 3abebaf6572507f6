package storetest_test

import (
	"testing"

	"github.com/posagent/posagent/agent/installer"
	"github.com/posagent/posagent/agent/store/storetest"
	"github.com/posagent/posagent/provisioning"
	"github.com/posagent/posagent/provisioning/provisioningtest"
)

// The suite's Store is both interfaces, and both are the suite's Store.
var (
	_ provisioning.Store = storetest.Store(nil)
	_ installer.Store    = storetest.Store(nil)
	_ storetest.Store    = provisioning.Store(nil)
	_ storetest.Store    = installer.Store(nil)
)

// memory is the in-memory store of provisioningtest as a Backend: its
// exported Data is the medium.
func memory(s *provisioningtest.Store) storetest.Backend {
	return storetest.Backend{
		Store: s,
		Damage: func(d storetest.Damage) bool {
			switch d {
			case storetest.Empty:
				s.Data = []byte{}
			case storetest.Garbled:
				s.Data = append([]byte(nil), storetest.Garbage...)
			default:
				return false // bytes in memory are always readable
			}
			return true
		},
		Concurrent: true,
	}
}

// The backends below the agent run here, so that provisioning's own tests
// import nothing of agent/; agent/store runs the suite on File, and
// agent/sim/hostsim on its power-cut store.

func TestProvisioningtestStore(t *testing.T) {
	storetest.Run(t, func(*testing.T) storetest.Backend { return memory(&provisioningtest.Store{}) })
}

// ForgetAccountCheck wraps the daemon's checkpoint store; what it does not
// rewrite (anything but a checkpoint with a bound card and an account
// check) must pass through with the store's semantics.
func TestForgetAccountCheck(t *testing.T) {
	storetest.Run(t, func(*testing.T) storetest.Backend {
		b := memory(&provisioningtest.Store{})
		b.Store = provisioning.ForgetAccountCheck(b.Store)
		return b
	})
}
