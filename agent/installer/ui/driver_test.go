package ui

import (
	"context"
	"errors"
	"testing"
)

// names is a driver that returns fixed names, then an error.
type names struct{ left []string }

func (n *names) Key(context.Context) (string, error) {
	if len(n.left) == 0 {
		return "", errors.New("keypad: closed")
	}
	k := n.left[0]
	n.left = n.left[1:]
	return k, nil
}

func TestDriverKeypad(t *testing.T) {
	kp := DriverKeypad{D: &names{left: []string{"*", "5", "#", "ENTER", "enter"}}}
	for _, want := range []Key{"5", KeyEnter} {
		if k, err := kp.Key(context.Background()); err != nil || k != want {
			t.Fatalf("Key = %q, %v; want %q", k, err, want)
		}
	}
	// "enter" is not a driver name (drivers speak upper case): skipped too.
	if _, err := kp.Key(context.Background()); err == nil || err.Error() != "keypad: closed" {
		t.Fatalf("Key = %v, want the driver's error", err)
	}
}

func TestDriverKeypadKeep(t *testing.T) {
	stuck := errors.New("keypad: key 5 stuck")
	n := &flaky{errs: []error{stuck, stuck}, then: "7"}
	var kept []error
	kp := DriverKeypad{D: n, Keep: func(err error) bool { kept = append(kept, err); return errors.Is(err, stuck) }}
	if k, err := kp.Key(context.Background()); err != nil || k != "7" || len(kept) != 2 {
		t.Fatalf("Key = %q, %v after keeping %v", k, err, kept)
	}
	other := errors.New("gpio gone")
	kp.D = &flaky{errs: []error{other}}
	if _, err := kp.Key(context.Background()); !errors.Is(err, other) {
		t.Fatalf("Key = %v, want the error Keep refused", err)
	}
}

// flaky fails with errs in turn, then returns then.
type flaky struct {
	errs []error
	then string
}

func (f *flaky) Key(context.Context) (string, error) {
	if len(f.errs) > 0 {
		err := f.errs[0]
		f.errs = f.errs[1:]
		return "", err
	}
	return f.then, nil
}
