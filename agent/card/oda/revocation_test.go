package oda

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// TestParseRevocations reads the test CA's list (agent/sim/testca) and
// refuses a list with an entry it cannot read, or a key it does not know.
func TestParseRevocations(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "sim", "testca", "revoked.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseRevocations(b)
	if err != nil || len(got) != 1 || !bytes.Equal(got[0].RID, []byte{0xA0, 0, 0, 0x03, 0x33}) || got[0].Index != 0x81 ||
		!bytes.Equal(got[0].Serial, []byte{0x90, 0x00, 0x01}) {
		t.Fatalf("%+v %v", got, err)
	}
	for name, text := range map[string]string{
		"short serial": "revoked:\n  - {rid: A000000333, index: \"81\", serial: \"9000\"}\n",
		"not hex":      "revoked:\n  - {rid: A00000033Z, index: \"81\", serial: \"900001\"}\n",
		"unknown key":  "revoked:\n  - {rid: A000000333, index: \"81\", serial: \"900001\", why: x}\n",
		"not a list":   "revoked: A000000333\n",
	} {
		if _, err := ParseRevocations([]byte(text)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// FuzzParseRevocations: a revocation list of any bytes is read or refused,
// never a panic.
func FuzzParseRevocations(f *testing.F) {
	f.Add([]byte("revoked:\n  - {rid: A000000333, index: \"81\", serial: \"900001\"}\n"))
	f.Add([]byte("revoked: []\n"))
	f.Fuzz(func(t *testing.T, b []byte) { _, _ = ParseRevocations(b) })
}
