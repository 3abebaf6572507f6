package agent

import (
	"os"
	"path/filepath"
	"testing"
)

// TestLoadRevocations: no file is no list; a file is read (the format's
// cases are oda's); a list that does not read stops the start.
func TestLoadRevocations(t *testing.T) {
	if got, err := loadRevocations(""); err != nil || got != nil {
		t.Fatalf("no file: %+v %v", got, err)
	}
	if got, err := loadRevocations(filepath.Join("sim", "testca", "revoked.yaml")); err != nil || len(got) != 1 {
		t.Fatalf("test CA's list: %+v %v", got, err)
	}
	p := filepath.Join(t.TempDir(), "list.yaml")
	if err := os.WriteFile(p, []byte("revoked: [{rid: A0}]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := loadRevocations(p); err == nil {
		t.Error("a list that does not read was accepted")
	}
	if _, err := loadRevocations(filepath.Join(t.TempDir(), "missing.yaml")); err == nil {
		t.Error("a missing list was accepted")
	}
}
