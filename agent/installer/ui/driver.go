package ui

import "context"

// NamedKeypad is what a keypad driver offers (drivers/keypad's Matrix,
// InputEvents and TTY): Key returns the pressed key's name. It is declared
// here, not imported, so this package stays free of driver code.
type NamedKeypad interface {
	Key(ctx context.Context) (string, error)
}

// DriverKeypad adapts a keypad driver to Keypad. A name the terminal's
// keypad does not have (the driver's "*" and "#", say) is skipped like a
// stray press, so a prompt never sees a key it cannot answer to.
//
// A driver error ends Key unless Keep says to go on reading: a stuck key
// (drivers/keypad.ErrStuckKey) is one to keep reading past, since the other
// keys still work, and Keep is where the caller logs it.
type DriverKeypad struct {
	D    NamedKeypad
	Keep func(err error) bool // nil: every error ends Key
}

var _ Keypad = DriverKeypad{}

// Key returns the next key the terminal has.
func (d DriverKeypad) Key(ctx context.Context) (Key, error) {
	for {
		name, err := d.D.Key(ctx)
		if err != nil {
			if d.Keep != nil && ctx.Err() == nil && d.Keep(err) {
				continue
			}
			return "", err
		}
		if k := Key(name); k.Valid() {
			return k, nil
		}
	}
}
