package installer_test

import (
	"fmt"

	"github.com/posagent/posagent/agent/installer"
	"github.com/posagent/posagent/agent/installer/ui"
	"github.com/posagent/posagent/drivers/keypad"
)

// The drivers plug straight in: a buzzer or LED is the installer's
// Indicator, and every keypad backend is a ui.Keypad through DriverKeypad.
var (
	_ installer.Indicator = (*keypad.Buzzer)(nil)
	_ installer.Indicator = (*keypad.LED)(nil)
	_ ui.NamedKeypad      = (*keypad.Matrix)(nil)
	_ ui.NamedKeypad      = (*keypad.InputEvents)(nil)
	_ ui.NamedKeypad      = (*keypad.TTY)(nil)
)

// The config holds the installer password as a salted PBKDF2 hash, never in
// clear. Pass a nil salt (random) and 0 iterations (the default) for a real
// terminal; a fixed salt is used here so the output is stable.
func ExampleHashPassword() {
	h, err := installer.HashPassword("2468", []byte("posagent-example"), 1000)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(h)
	// Output: pbkdf2-sha256$1000$cG9zYWdlbnQtZXhhbXBsZQ$8cTCQgQIV7p8QnAFrg6wb50FNkRI+HkFkA9C385ffoQ
}
