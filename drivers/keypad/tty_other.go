//go:build !linux

package keypad

import "errors"

// MakeRaw is only implemented on Linux, the development and target OS; the
// TTY keypad still works elsewhere on piped input.
func MakeRaw(fd int) (restore func() error, err error) {
	return nil, errors.New("keypad: tty: raw mode is only implemented on linux")
}
