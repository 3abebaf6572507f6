package coredump

import (
	"fmt"

	"golang.org/x/sys/unix"
)

func disable() error {
	if err := unix.Setrlimit(unix.RLIMIT_CORE, &unix.Rlimit{Cur: 0, Max: 0}); err != nil {
		return fmt.Errorf("coredump: setrlimit(RLIMIT_CORE, 0): %w", err)
	}
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
		return fmt.Errorf("coredump: prctl(PR_SET_DUMPABLE, 0): %w", err)
	}
	return nil
}
