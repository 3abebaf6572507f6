// Package store keeps the agent's small durable files: written so that a power
// cut at any instant leaves either the old or the new content, never a mix.
package store

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/posagent/posagent/provisioning"
)

// WriteFile replaces path with data atomically: a temp file in the same
// directory, fsync, rename over the old one, then fsync the directory so the
// rename itself survives a power cut. The file ends with mode perm.
func WriteFile(path string, data []byte, perm fs.FileMode) (err error) {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err = tmp.Chmod(perm); err != nil {
		return fmt.Errorf("store: %w", err)
	}
	if _, err = tmp.Write(data); err != nil {
		return fmt.Errorf("store: %w", err)
	}
	if err = tmp.Sync(); err != nil {
		return fmt.Errorf("store: %w", err)
	}
	if err = tmp.Close(); err != nil {
		return fmt.Errorf("store: %w", err)
	}
	if err = os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("store: %w", err)
	}
	return SyncDir(dir)
}

// SyncDir fsyncs a directory, making renames and creations in it durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("store: sync %s: %w", dir, err)
	}
	return nil
}

// File is a provisioning.Store on one file, mode 0600.
type File struct {
	Path string
}

var _ provisioning.Store = File{}

// Load returns the file's bytes, or provisioning.ErrNoState when the file has
// never been written. An empty file is returned as it is, for the decoder to
// reject: an empty file is a corrupt state, not a new terminal.
func (f File) Load() ([]byte, error) {
	b, err := os.ReadFile(f.Path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, provisioning.ErrNoState
	}
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	return b, nil
}

// Save replaces the file atomically.
func (f File) Save(data []byte) error { return WriteFile(f.Path, data, 0o600) }
