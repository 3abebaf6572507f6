package agent

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// TestLoadRevocations reads the test CA's list (agent/sim/testca) and
// refuses a list with an entry it cannot read, or a key it does not know.
func TestLoadRevocations(t *testing.T) {
	got, err := loadRevocations(filepath.Join("sim", "testca", "revoked.yaml"))
	if err != nil || len(got) != 1 || !bytes.Equal(got[0].RID, []byte{0xA0, 0, 0, 0x03, 0x33}) || got[0].Index != 0x81 ||
		!bytes.Equal(got[0].Serial, []byte{0x90, 0x00, 0x01}) {
		t.Fatalf("%+v %v", got, err)
	}
	if got, err := loadRevocations(""); err != nil || got != nil {
		t.Fatalf("no file: %+v %v", got, err)
	}
	dir := t.TempDir()
	for name, text := range map[string]string{
		"short serial": "revoked:\n  - {rid: A000000333, index: \"81\", serial: \"9000\"}\n",
		"not hex":      "revoked:\n  - {rid: A00000033Z, index: \"81\", serial: \"900001\"}\n",
		"unknown key":  "revoked:\n  - {rid: A000000333, index: \"81\", serial: \"900001\", why: x}\n",
	} {
		p := filepath.Join(dir, "list.yaml")
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := loadRevocations(p); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
