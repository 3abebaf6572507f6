// Package ui is the installer's screen and keypad as the provisioning flow sees
// them: Terminal turns a Display and a Keypad into a provisioning.Prompter.
//
// The hardware drivers (LCD, matrix keypad) implement Display and Keypad
// (DriverKeypad adapts drivers/keypad's backends); this package also holds the
// stand-ins the demo and the tests run on: Console, a framed text screen on any
// io.Writer; Grid, the same framed as the terminal's rows × cols LCD, with
// Layout to fit a screen onto it (Chinese characters counting two columns); and
// Script, a keypad that replays a key script (ParseScript documents the format
// of `posagent demo --keys FILE`, waits included).
package ui

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/posagent/posagent/provisioning"
)

// Key is the name of a key on the terminal's keypad.
type Key string

// The terminal's keys. Digit keys are "0" … "9".
const (
	KeyEnter  Key = "ENTER"
	KeyCancel Key = "CANCEL"
	KeyClear  Key = "CLEAR"
	KeyF1     Key = "F1"
	KeyF2     Key = "F2"
	KeyF3     Key = "F3"
	KeyF4     Key = "F4"
	KeyUp     Key = "UP"
	KeyDown   Key = "DOWN"
)

// Valid reports whether k names a key the keypad has.
func (k Key) Valid() bool {
	switch k {
	case KeyEnter, KeyCancel, KeyClear, KeyF1, KeyF2, KeyF3, KeyF4, KeyUp, KeyDown:
		return true
	}
	return len(k) == 1 && k[0] >= '0' && k[0] <= '9'
}

// aliases are the names a PC keyboard or a keypad's printed labels give some
// keys: the green key says OK on many terminals, and a developer thinks of Esc
// and Backspace.
var aliases = map[Key]Key{
	"OK": KeyEnter, "ESC": KeyCancel, "BACKSPACE": KeyClear, "BKSP": KeyClear,
}

// ParseKey reads a key name, ignoring case ("enter" is ENTER), so that scripts
// and configuration need not shout. OK is ENTER, ESC is CANCEL, BACKSPACE (or
// BKSP) is CLEAR.
func ParseKey(name string) (Key, error) {
	k := Key(strings.ToUpper(strings.TrimSpace(name)))
	if a, ok := aliases[k]; ok {
		k = a
	}
	if !k.Valid() {
		return "", fmt.Errorf("ui: unknown key %q", name)
	}
	return k, nil
}

// Display shows one screen: a title and lines of text. Draw replaces what was
// shown before; it does not wait for the installer.
type Display interface {
	Draw(ctx context.Context, title string, lines []string) error
}

// Keypad delivers key presses one at a time. Key blocks until a key is pressed
// or ctx is done, and then returns ctx's error.
type Keypad interface {
	Key(ctx context.Context) (Key, error)
}

// ErrNoOptions is returned by Ask when it is given nothing to choose from: it
// would otherwise wait for a key that can never answer.
var ErrNoOptions = errors.New("ui: ask without options")

// Terminal is the installer's side of the terminal: it shows the flow's screens
// on Display and reads answers from Keypad. Both fields are required.
type Terminal struct {
	Display Display
	Keypad  Keypad
}

var _ provisioning.Prompter = (*Terminal)(nil)

// Show draws s and returns without waiting for a key.
func (t *Terminal) Show(ctx context.Context, s provisioning.Screen) error {
	if t.Display == nil {
		return errors.New("ui: show: terminal has no display")
	}
	if err := t.Display.Draw(ctx, s.Title, s.Lines); err != nil {
		return fmt.Errorf("ui: show: %w", err)
	}
	return nil
}

// Ask draws s followed by one line per option ("[ENTER] Confirm"), then reads
// keys until one picks an option and returns that option's ID. Keys that pick
// nothing are ignored, as a real keypad's stray presses must be. If two options
// share a key the first wins. An option whose key the keypad does not have is
// an error before anything is drawn, since no press could ever choose it.
//
// Keypad errors (ErrNoMoreKeys from a Script, a driver failure) and the end of
// ctx are returned wrapped, so errors.Is finds them.
func (t *Terminal) Ask(ctx context.Context, s provisioning.Screen, options ...provisioning.Option) (string, error) {
	if t.Display == nil || t.Keypad == nil {
		return "", errors.New("ui: ask: terminal has no display or keypad")
	}
	if len(options) == 0 {
		return "", ErrNoOptions
	}
	keys := make([]Key, len(options))
	lines := append([]string(nil), s.Lines...)
	for i, o := range options {
		k, err := ParseKey(o.Key)
		if err != nil {
			return "", fmt.Errorf("ui: ask: option %q: %w", o.ID, err)
		}
		keys[i] = k
		lines = append(lines, strings.TrimRight("["+string(k)+"] "+o.Label, " "))
	}
	if err := t.Display.Draw(ctx, s.Title, lines); err != nil {
		return "", fmt.Errorf("ui: ask: %w", err)
	}
	for {
		// Checked here as well as in Key: a keypad with buffered presses
		// might otherwise keep answering after the flow gave up.
		if err := ctx.Err(); err != nil {
			return "", fmt.Errorf("ui: ask: %w", err)
		}
		k, err := t.Keypad.Key(ctx)
		if err != nil {
			return "", fmt.Errorf("ui: ask: read key: %w", err)
		}
		for i, want := range keys {
			if k == want {
				return options[i].ID, nil
			}
		}
	}
}
