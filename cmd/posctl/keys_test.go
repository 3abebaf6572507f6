package main

import (
	"bytes"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/posagent/posagent/agent"
	"github.com/posagent/posagent/agent/acquirer"
)

const testTMK = "0123456789ABCDEFFEDCBA9876543210"

// kcvOf is computed independently of posctl: 3DES-encrypt a zero block.
func kcvOf(t *testing.T, hexKey string) string {
	t.Helper()
	k, err := acquirer.ParseKey(hexKey)
	if err != nil {
		t.Fatal(err)
	}
	zero := make([]byte, 8)
	ct, err := acquirer.EncryptECB(k, zero)
	if err != nil {
		t.Fatal(err)
	}
	return strings.ToUpper(hex.EncodeToString(ct[:3]))
}

func TestKeysInject(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	kcv := kcvOf(t, testTMK)
	var out, errs bytes.Buffer
	code := keys([]string{"inject", "--state-dir", dir, "--kcv", kcv}, strings.NewReader(testTMK+"\n"), &out, &errs)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs.String())
	}
	if !strings.Contains(out.String(), kcv) {
		t.Errorf("output does not show the check value %s: %s", kcv, out.String())
	}
	for _, s := range []string{out.String(), errs.String()} {
		if strings.Contains(strings.ToUpper(s), testTMK[:16]) {
			t.Errorf("output shows the key: %s", s)
		}
	}
	path := filepath.Join(dir, agent.KeyFile)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v, want 0600", fi.Mode().Perm())
	}
	got, err := (&acquirer.FileKeyStore{Path: path}).LoadKeys()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.EqualFold(hex.EncodeToString(got.TMK), testTMK) {
		t.Error("stored TMK differs from the one injected")
	}

	// show: check values only.
	out.Reset()
	if code := keys([]string{"show", "--state-dir", dir}, nil, &out, &errs); code != 0 || !strings.Contains(out.String(), kcv) ||
		strings.Contains(strings.ToUpper(out.String()), testTMK[:16]) {
		t.Errorf("show: exit %d: %s", code, out.String())
	}

	// A second injection needs --replace.
	errs.Reset()
	other := strings.Repeat("11", 16)
	if code := keys([]string{"inject", "--state-dir", dir, "--kcv", kcvOf(t, other)}, strings.NewReader(other), &out, &errs); code != 1 ||
		!strings.Contains(errs.String(), "--replace") {
		t.Errorf("second inject: exit %d: %s", code, errs.String())
	}
	if code := keys([]string{"inject", "--state-dir", dir, "--replace", "--kcv", kcvOf(t, other)}, strings.NewReader(other), &out, &errs); code != 0 {
		t.Errorf("replace: exit %d: %s", code, errs.String())
	}
}

func TestKeysInjectRefuses(t *testing.T) {
	for _, tc := range []struct {
		name  string
		args  []string
		stdin string
		code  int
		want  string
	}{
		{"kcv mismatch", []string{"--kcv", "000000"}, testTMK, 1, "nothing stored"},
		{"kcv not hex", []string{"--kcv", "zz"}, testTMK, 2, "--kcv"},
		{"kcv missing", nil, testTMK, 2, "--kcv is required"},
		{"kcv empty", []string{"--kcv", ""}, testTMK, 2, "--kcv is required"},
		{"not hex", []string{"--kcv", "000000"}, "0123456789ABCDEFXEDCBA9876543210", 1, "not hex"},
		{"odd length", []string{"--kcv", "000000"}, "0123456789ABCDEF0123", 1, "TMK"},
		{"empty", []string{"--kcv", "000000"}, "", 1, "TMK"},
		{"no state dir", []string{"--state-dir", "", "--kcv", "000000"}, testTMK, 2, "usage"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "state")
			var out, errs bytes.Buffer
			code := keys(append([]string{"inject", "--state-dir", dir}, tc.args...), strings.NewReader(tc.stdin), &out, &errs)
			if code != tc.code || !strings.Contains(errs.String(), tc.want) {
				t.Errorf("exit %d, want %d; stderr %q should mention %q", code, tc.code, errs.String(), tc.want)
			}
			if strings.Contains(strings.ToUpper(errs.String()), "0123456789ABCDEF") {
				t.Errorf("error echoes the key: %s", errs.String())
			}
			if _, err := os.Stat(filepath.Join(dir, agent.KeyFile)); err == nil {
				t.Error("a key file was written")
			}
		})
	}
}
