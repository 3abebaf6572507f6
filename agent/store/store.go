// Package store keeps the agent's small durable files: written so that a power
// cut at any instant leaves either the old or the new content, never a mix.
package store

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/posagent/posagent/provisioning"
)

// WriteFile replaces path with data atomically: a temp file in the same
// directory, fsync, rename over the old one, then fsync the directory so the
// rename itself survives a power cut. The file ends with mode perm.
func WriteFile(path string, data []byte, perm fs.FileMode) (err error) {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, tempPrefix(filepath.Base(path))+"*")
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

// tempPrefix starts the name of WriteFile's temp file for a file called
// name: ".NAME.tmp-" and a random suffix.
func tempPrefix(name string) string { return "." + name + ".tmp-" }

// IsTemp reports whether a directory entry's name is one of WriteFile's
// temp files.
func IsTemp(name string) bool {
	if !strings.HasPrefix(name, ".") {
		return false
	}
	i := strings.LastIndex(name, ".tmp-")
	return i > 1 && i+len(".tmp-") < len(name)
}

// RemoveTemps removes the temp files that writes interrupted by a crash or
// power cut left in dir, and returns their names. Such a file holds what
// was being written (the checkpoint, or keys.json with the TMK in clear),
// so its content is overwritten with zeros before it is removed: on most
// file systems that rewrites the blocks, on some (log-structured flash)
// only the disk's encryption protects the old ones. The daemon calls it
// at start, before anything writes in dir; a write under way in another
// process at that moment (posctl keys inject) loses its temp file and
// fails, to be run again. Symbolic links and other non-regular entries are
// removed without being opened.
func RemoveTemps(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	var removed []string
	var errs []error
	for _, e := range ents {
		if !IsTemp(e.Name()) {
			continue
		}
		p := filepath.Join(dir, e.Name())
		if e.Type().IsRegular() {
			if err := zeroFile(p); err != nil {
				errs = append(errs, err)
			}
		}
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, fmt.Errorf("store: %w", err))
			continue
		}
		removed = append(removed, e.Name())
	}
	if len(removed) > 0 {
		if err := SyncDir(dir); err != nil {
			errs = append(errs, err)
		}
	}
	return removed, errors.Join(errs...)
}

// zeroFile overwrites a regular file's bytes with zeros and syncs them; a
// file that is no longer the regular file path named when it was opened is
// left alone.
func zeroFile(path string) error {
	before, err := os.Lstat(path)
	if err != nil || !before.Mode().IsRegular() {
		return nil
	}
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() || !os.SameFile(before, st) {
		return err
	}
	zeros := make([]byte, 4096)
	for off := int64(0); off < st.Size(); off += int64(len(zeros)) {
		n := min(int64(len(zeros)), st.Size()-off)
		if _, err := f.WriteAt(zeros[:n], off); err != nil {
			return fmt.Errorf("store: %w", err)
		}
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("store: %w", err)
	}
	return nil
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
