package agent

import "golang.org/x/sys/unix"

// clockSynced asks the kernel whether the clock is synchronized: adjtimex
// without modes only reads, and an unsynchronized clock says TIME_ERROR or
// STA_UNSYNC (set until a time daemon disciplines it).
func clockSynced() bool {
	var tx unix.Timex
	state, err := unix.Adjtimex(&tx)
	return err == nil && state != unix.TIME_ERROR && tx.Status&unix.STA_UNSYNC == 0
}
