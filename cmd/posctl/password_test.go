package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/posagent/posagent/agent/config"
	"github.com/posagent/posagent/agent/installer"
)

func TestHashPassword(t *testing.T) {
	var out, errs bytes.Buffer
	if code := hashPassword(nil, strings.NewReader("2468\n"), &out, &errs); code != 0 {
		t.Fatalf("exit %d: %s", code, errs.String())
	}
	h := strings.TrimSpace(out.String())
	if err := installer.ValidatePasswordHash(h); err != nil || strings.Contains(h, "2468") {
		t.Fatalf("hash %q: %v", h, err)
	}
	// The printed line is what installer.password_hash takes.
	c := config.Default()
	c.Installer.PasswordHash = h
	c.Devices.Keypad = "tty"
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	// Salted: the same password hashes differently each time.
	var again bytes.Buffer
	hashPassword(nil, strings.NewReader("2468"), &again, &errs)
	if strings.TrimSpace(again.String()) == h {
		t.Error("two hashes of one password are equal: no salt")
	}
	for _, bad := range []string{"", "24a8", "pass word", "1", "246"} {
		errs.Reset()
		if code := hashPassword(nil, strings.NewReader(bad), &out, &errs); code != 1 || strings.Contains(errs.String(), bad) && bad != "" {
			t.Errorf("%q: exit %d: %s", bad, code, errs.String())
		}
	}
	errs.Reset()
	if code := hashPassword(nil, strings.NewReader("7\n"), &out, &errs); code != 1 || !strings.Contains(errs.String(), "at least 4 digits") {
		t.Errorf("one digit: exit %d: %s", code, errs.String())
	}
}
