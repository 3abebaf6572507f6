package provisioning

import (
	"sync"
	"time"
)

// ClockSource says where the flow's time comes from; every status report
// carries it, so central can tell a slip stamped by the acquirer's clock
// from one stamped by a floor.
type ClockSource string

// Clock sources, from the most trusted.
const (
	// ClockNTP: the system clock, which says it is kept synchronized
	// (SyncedClock).
	ClockNTP ClockSource = "ntp"
	// ClockAcquirer: the host's date and time from the last sign-on over an
	// authenticated link, run on by the system clock since.
	ClockAcquirer ClockSource = "acquirer"
	// ClockSystem: the system clock, not known to be synchronized, ahead of
	// every floor.
	ClockSystem ClockSource = "system"
	// ClockPersisted: the system clock is behind the last time the
	// checkpoint was saved; that time, run on since, is used instead.
	ClockPersisted ClockSource = "persisted"
	// ClockBuild: the system clock is behind the build of this program
	// (an RTC that lost its battery reads 1970); the build time, run on
	// since, is used instead.
	ClockBuild ClockSource = "build"
)

// SyncedClock is a Clock that can tell whether the system keeps its time
// (NTP, PTP): the flow then takes it as it is.
type SyncedClock interface {
	Clock
	Synced() bool
}

// DefaultBuildTime is the floor when the build names no time of its own:
// no posagent release is older.
var DefaultBuildTime = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// FloorClock is the flow's clock: the system clock where it can be
// believed, never earlier than a floor. A terminal whose RTC lost its
// battery reads 1970; slips, expiry checks and reports stamped with it
// would be wrong, and a clock wound back could make an expired card look
// valid. The floor is the latest of the build time and every time the
// terminal persisted (Raise); the host's time at sign-on, over a link
// nobody on the way can write to (SetHost), replaces the system clock
// until a synchronized one is there. Time keeps moving from a floor or the
// host's time by the system clock's elapsed time (monotonic within one
// process). Safe for concurrent use.
type FloorClock struct {
	System Clock

	mu       sync.Mutex
	floor    time.Time // the floor when it was raised
	floorAt  time.Time // the system clock then
	floorSrc ClockSource
	host     time.Time // the host's time at the last trusted sign-on
	hostAt   time.Time // the system clock then
}

var _ Clock = (*FloorClock)(nil)

// NewFloorClock is system floored at build (DefaultBuildTime when zero).
func NewFloorClock(system Clock, build time.Time) *FloorClock {
	if build.IsZero() {
		build = DefaultBuildTime
	}
	return &FloorClock{System: system, floor: build.UTC(), floorAt: system.Now(), floorSrc: ClockBuild}
}

// Now is the flow's time.
func (c *FloorClock) Now() time.Time { t, _ := c.Read(); return t }

// Source says where Now comes from at the moment.
func (c *FloorClock) Source() ClockSource { _, s := c.Read(); return s }

// maxRunOn bounds how far a floor or the host's time is run on by the
// system clock: within one process readings carry the monotonic clock and
// are exact, but a reading restored from disk has only the wall clock, and
// a wall clock set forward (from 1970 to today by hand) would otherwise
// carry the floor decades ahead. An install takes hours.
const maxRunOn = 72 * time.Hour

// since is how far the system clock has moved from at to now, and whether
// that can be believed: never negative (a system clock set back has not
// moved time back), and not beyond maxRunOn (a clock set forward has not
// moved time forward by as much).
func since(now, at time.Time) (time.Duration, bool) {
	d := now.Sub(at)
	switch {
	case d < 0:
		return 0, true
	case d > maxRunOn:
		return 0, false
	}
	return d, true
}

// Read is the time and its source, in one reading.
func (c *FloorClock) Read() (time.Time, ClockSource) {
	sys := c.System.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	d, _ := since(sys, c.floorAt)
	floor := c.floor.Add(d)
	if s, ok := c.System.(SyncedClock); ok && s.Synced() && !sys.Before(floor) {
		return sys, ClockNTP
	}
	if d, ok := since(sys, c.hostAt); ok && !c.host.IsZero() {
		if t := c.host.Add(d); !t.Before(floor) {
			return t, ClockAcquirer
		}
	}
	if !sys.Before(floor) {
		return sys, ClockSystem
	}
	return floor, c.floorSrc
}

// Raise lifts the floor to t when t is later than the floor now; src says
// what t is (ClockPersisted for a saved checkpoint's time).
func (c *FloorClock) Raise(t time.Time, src ClockSource) {
	sys := c.System.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	d, _ := since(sys, c.floorAt)
	if t.After(c.floor.Add(d)) {
		c.floor, c.floorAt, c.floorSrc = t.UTC(), sys, src
	}
}

// SetHost takes the host's time t, read at the system clock's at: from
// then on the clock runs from it. The caller vouches that nobody on the
// way could have written t (an authenticated link, or a host in process).
func (c *FloorClock) SetHost(t, at time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.host, c.hostAt = t.UTC(), at
}

// ClockRecord keeps the host's time across a restart: the host's time at
// the last trusted sign-on and the system clock's reading then. A restart
// whose system clock has run on from SystemAt runs on from HostTime too; one
// whose clock went back (an RTC reset by the power cut) has only the floor.
type ClockRecord struct {
	HostTime time.Time `json:"host_time"`
	SystemAt time.Time `json:"system_at"`
}
