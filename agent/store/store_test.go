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
