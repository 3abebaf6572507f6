package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestAccountCheck(t *testing.T) {
	dir := t.TempDir()
	tmkFile := filepath.Join(dir, "tmk.hex")
	if err := os.WriteFile(tmkFile, []byte(testTMK+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errs bytes.Buffer
	code := accountCheck([]string{"--tid", "10000001", "--tmk-file", tmkFile}, strings.NewReader("6222021234567890128\n"), &out, &errs)
	// testdata/posagent.example.yaml's merchant.account_check.
	if code != 0 || strings.TrimSpace(out.String()) != "16669b73825af85f9eaa5dbc759d4aa358bd1e1a79d1d33559b52fadce61d318" {
		t.Fatalf("exit %d: %q %s", code, out.String(), errs.String())
	}

	for _, tc := range []struct {
		name  string
		args  []string
		stdin string
		code  int
		want  string
	}{
		{"no tid", []string{"--tmk-file", tmkFile}, "6222021234567890128", 2, "usage"},
		{"no tmk file", []string{"--tid", "10000001"}, "6222021234567890128", 2, "usage"},
		{"pan as an argument", []string{"--tid", "10000001", "--tmk-file", tmkFile, "6222021234567890128"}, "", 2, "usage"},
		{"bad tid", []string{"--tid", "1000000", "--tmk-file", tmkFile}, "6222021234567890128", 1, "TID"},
		{"bad luhn", []string{"--tid", "10000001", "--tmk-file", tmkFile}, "6222021234567890127", 1, "622202*********0127"},
		{"not a pan", []string{"--tid", "10000001", "--tmk-file", tmkFile}, "62220212345x", 1, "card number"},
		{"missing tmk file", []string{"--tid", "10000001", "--tmk-file", filepath.Join(dir, "none")}, "6222021234567890128", 1, "none"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errs bytes.Buffer
			code := accountCheck(tc.args, strings.NewReader(tc.stdin), &out, &errs)
			if code != tc.code || !strings.Contains(errs.String(), tc.want) {
				t.Errorf("exit %d, want %d; stderr %q should mention %q", code, tc.code, errs.String(), tc.want)
			}
			for _, s := range []string{out.String(), errs.String()} {
				if strings.Contains(s, "6222021234567890") || strings.Contains(strings.ToUpper(s), testTMK[:16]) {
					t.Errorf("output shows the card number or the key: %q", s)
				}
			}
		})
	}
}
