// Package keypad reads the terminal's keys: a matrix keypad scanned over GPIO
// pins (periph.io/x/conn/v3/gpio), with debounce, ghost-key suppression and
// stuck-key detection, plus the LED and buzzer beside it. Two other backends
// deliver the same key names: InputEvents (a Linux /dev/input/event* device,
// such as a USB numeric keypad) and TTY (a terminal or pipe, for
// development).
//
// The driver delivers key names ("0"…"9", "ENTER", "CANCEL", …) through
// Key(ctx); the agent adapts them to ui.Keypad. The package never imports
// agent code and the flow never sees a pin.
//
// Pins are given, not owned: Open configures them and Close puts the drive
// lines back to high-impedance inputs, but nothing here closes or halts what
// it was given. OpenHost is the one place that touches the host's GPIO
// (periph.io/x/host/v3); it returns ErrNoGPIO rather than failing later when
// the machine has none, so callers can run degraded.
//
// Time comes from a Clock so tests drive scans and indicator patterns with a
// fake clock (package keypadtest, over periph's gpiotest pins) and never sleep.
package keypad
