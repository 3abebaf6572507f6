package agent

import (
	"runtime/debug"
	"time"

	"github.com/posagent/posagent/provisioning"
)

// BuildStamp is the build's time, RFC 3339, stamped at build time
// (-ldflags "-X …/agent.BuildStamp=…"); empty leaves the VCS commit time
// the Go toolchain records, and without that provisioning.DefaultBuildTime.
var BuildStamp = ""

// BuildTime is the floor of the terminal's clock: no clock reading before
// the build of the program reading it can be right.
func BuildTime() time.Time {
	if t, err := time.Parse(time.RFC3339, BuildStamp); err == nil {
		return t.UTC()
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.time" {
				if t, err := time.Parse(time.RFC3339, s.Value); err == nil {
					return t.UTC()
				}
			}
		}
	}
	return time.Time{}
}

// systemClock is the system clock, which says whether the kernel keeps it
// synchronized (NTP, chrony): provisioning.FloorClock then takes it as it is
// and reports "ntp".
type systemClock struct{}

var _ provisioning.SyncedClock = systemClock{}

func (systemClock) Now() time.Time { return time.Now() }

func (systemClock) Synced() bool { return clockSynced() }

// terminalClock is the clock the flow, its reports and the host link
// share: the system clock floored at the build time, set from the host at
// an authenticated sign-on.
func terminalClock() *provisioning.FloorClock {
	return provisioning.NewFloorClock(systemClock{}, BuildTime())
}
