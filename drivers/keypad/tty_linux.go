package keypad

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// MakeRaw puts the terminal on fd in raw mode, so each key reaches a TTY
// keypad at once and Esc, Backspace and Enter are not interpreted by the
// line discipline. Output post-processing is kept so that "\n" still starts
// a new line on the developer's screen. Call restore before exiting, or the
// shell is left raw.
func MakeRaw(fd int) (restore func() error, err error) {
	old, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return nil, fmt.Errorf("keypad: tty: not a terminal: %w", err)
	}
	raw := *old
	raw.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
	raw.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	raw.Cflag &^= unix.CSIZE | unix.PARENB
	raw.Cflag |= unix.CS8
	raw.Cc[unix.VMIN] = 1
	raw.Cc[unix.VTIME] = 0
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, &raw); err != nil {
		return nil, fmt.Errorf("keypad: tty: raw mode: %w", err)
	}
	return func() error {
		if err := unix.IoctlSetTermios(fd, unix.TCSETS, old); err != nil {
			return fmt.Errorf("keypad: tty: restore: %w", err)
		}
		return nil
	}, nil
}
