//go:build !linux

package agent

// clockSynced cannot tell elsewhere: the clock is not known to be kept.
func clockSynced() bool { return false }
