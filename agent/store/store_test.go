package store

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/posagent/posagent/provisioning"
)

func TestFileRoundTrip(t *testing.T) {
	dir := t.TempDir()
	f := File{Path: filepath.Join(dir, "state.json")}
	if _, err := f.Load(); !errors.Is(err, provisioning.ErrNoState) {
		t.Fatalf("Load of a missing file = %v, want ErrNoState", err)
	}
	for _, data := range [][]byte{[]byte(`{"a":1}`), []byte(`{"a":2,"b":"longer than before"}`), []byte(`{}`)} {
		if err := f.Save(data); err != nil {
			t.Fatal(err)
		}
		got, err := f.Load()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, data) {
			t.Fatalf("Load = %q, want %q", got, data)
		}
	}
	st, err := os.Stat(f.Path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("mode = %v, want 0600", st.Mode().Perm())
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Errorf("temp files left behind: %v", entries)
	}
}

func TestEmptyFileIsCorruptNotNew(t *testing.T) {
	f := File{Path: filepath.Join(t.TempDir(), "state.json")}
	if err := os.WriteFile(f.Path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	b, err := f.Load()
	if err != nil {
		t.Fatalf("Load = %v", err)
	}
	if _, err := provisioning.Decode(b); !errors.Is(err, provisioning.ErrCorruptState) {
		t.Fatalf("Decode(empty) = %v, want ErrCorruptState", err)
	}
}

func TestWriteFileMissingDir(t *testing.T) {
	err := WriteFile(filepath.Join(t.TempDir(), "no", "such", "dir", "f"), []byte("x"), 0o600)
	if err == nil {
		t.Fatal("WriteFile into a missing directory succeeded")
	}
}

func TestIsTemp(t *testing.T) {
	for name, want := range map[string]bool{
		".keys.json.tmp-123456": true, ".state.json.tmp-9": true, ".cursor.tmp-1": true,
		"keys.json": false, ".keys.json": false, ".keys.json.tmp-": false, "keys.json.tmp-1": false, ".tmp-1": false,
	} {
		if got := IsTemp(name); got != want {
			t.Errorf("IsTemp(%q) = %v, want %v", name, got, want)
		}
	}
	// WriteFile's own temp names are what IsTemp recognises.
	dir := t.TempDir()
	f, err := os.CreateTemp(dir, tempPrefix("keys.json")+"*")
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	if !IsTemp(filepath.Base(f.Name())) {
		t.Errorf("IsTemp(%q) = false", filepath.Base(f.Name()))
	}
}

// TestRemoveTemps: the temp files a crash left (one holding a TMK) are
// zeroed and removed; the real files, and a symlink's target, are not
// touched.
func TestRemoveTemps(t *testing.T) {
	dir := t.TempDir()
	secret := []byte(`{"schema":3,"tmk":"0123456789abcdeffedcba9876543210"}`)
	for name, b := range map[string][]byte{
		"keys.json": secret, "state.json": []byte(`{}`),
		".keys.json.tmp-4242": secret, ".state.json.tmp-77": []byte(`{"step":"bind-card"}`),
	} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	outside := filepath.Join(t.TempDir(), "elsewhere")
	if err := os.WriteFile(outside, []byte("not ours"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(dir, ".mqtt-session.tmp-1")); err != nil {
		t.Fatal(err)
	}
	removed, err := RemoveTemps(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(removed) != 3 {
		t.Errorf("removed %v, want the three temp files", removed)
	}
	ents, _ := os.ReadDir(dir)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if len(names) != 2 || names[0] != "keys.json" || names[1] != "state.json" {
		t.Errorf("left %v", names)
	}
	if b, _ := os.ReadFile(outside); string(b) != "not ours" {
		t.Errorf("the symlink's target was changed: %q", b)
	}
	if removed, err := RemoveTemps(dir); err != nil || len(removed) != 0 {
		t.Errorf("second run: %v, %v", removed, err)
	}
}

// TestRemoveTempsZeroesBeforeRemoving: a process still holding the temp
// file open (as a crash dump or a reader would) finds zeros, not the key.
func TestRemoveTempsZeroesBeforeRemoving(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, ".keys.json.tmp-1")
	secret := []byte(`{"tmk":"0123456789abcdeffedcba9876543210"}`)
	if err := os.WriteFile(p, secret, 0o600); err != nil {
		t.Fatal(err)
	}
	held, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	if _, err := RemoveTemps(dir); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, len(secret))
	if _, err := held.ReadAt(b, 0); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b, make([]byte, len(secret))) {
		t.Errorf("the removed temp file still holds %q", b)
	}
}
