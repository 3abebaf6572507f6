// Package coredump keeps the agent's memory out of core files: a core dump
// of the daemon would hold the TMK, the working keys and, during a sale,
// the card data it is handling, in a file anyone reading the disk (or the
// crash reporter) gets.
package coredump

// Disable turns core dumps off for this process and what it starts: the
// core size limit is set to 0 (soft and hard, so nothing can raise it
// again), and on Linux the process is marked not dumpable
// (PR_SET_DUMPABLE 0), which also keeps other processes of the same user
// from attaching to it or reading its memory through /proc. The packaging
// sets the limit before the start as well (LimitCORE=0, ulimit -c 0). On
// systems other than Linux it does nothing.
func Disable() error { return disable() }
