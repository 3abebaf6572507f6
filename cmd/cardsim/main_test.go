package main

import (
	"strings"
	"testing"
)

func TestRunArgs(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "-profile is required"},
		{[]string{"-profile", "../../testdata/cards/debit.yaml", "-slot", "2"}, "-slot must be 0 or 1"},
		{[]string{"-profile", "nope.yaml"}, "no such file"},
		// Nothing listens on port 1 of loopback: the dial fails at once.
		{[]string{"-profile", "../../testdata/cards/debit.yaml", "-addr", "127.0.0.1:1"}, "dial vpcd"},
	} {
		err := run(tc.args)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want %q", tc.args, err, tc.want)
		}
	}
}
