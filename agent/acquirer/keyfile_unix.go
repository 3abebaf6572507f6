//go:build unix

package acquirer

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"syscall"
)

// geteuid is the user the key file must belong to; a test seam.
var geteuid = os.Geteuid

// readKeyFile reads the key file after checking that it is safe to trust:
// a regular file, not a symbolic link, of mode exactly 0600, owned by this
// process's effective user. The checks are made on the opened file
// (O_NOFOLLOW, fstat), so the file cannot be swapped between check and read.
// A missing file is ErrNoKeys.
func readKeyFile(path string) ([]byte, error) {
	unsafe := func(rule string) error {
		return fmt.Errorf("%w: %s %s: refused", ErrKeyFileUnsafe, path, rule)
	}
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ErrNoKeys
	}
	if err != nil {
		return nil, fmt.Errorf("acquirer: key store: %w", err)
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		return nil, unsafe("is a symbolic link; it must be a regular file")
	}
	if !fi.Mode().IsRegular() {
		return nil, unsafe("is not a regular file")
	}
	// O_NONBLOCK: a FIFO swapped in after the Lstat must not block the open.
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ErrNoKeys
	}
	if err != nil {
		if errors.Is(err, syscall.ELOOP) {
			return nil, unsafe("is a symbolic link; it must be a regular file")
		}
		return nil, fmt.Errorf("acquirer: key store: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("acquirer: key store: %w", err)
	}
	if !st.Mode().IsRegular() || !os.SameFile(fi, st) {
		return nil, unsafe("changed while it was opened")
	}
	if m := st.Mode() & (fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky); m != 0o600 {
		return nil, unsafe(fmt.Sprintf("has mode %04o; it must be 0600 (chmod 600)", uint32(m.Perm())|modeBits(m)))
	}
	if sys, ok := st.Sys().(*syscall.Stat_t); ok {
		if uid := int(sys.Uid); uid != geteuid() {
			return nil, unsafe(fmt.Sprintf("is owned by uid %d; it must be owned by the service user (uid %d)", uid, geteuid()))
		}
	}
	// A key file is a few hundred bytes: refuse to read a huge one.
	b, err := io.ReadAll(io.LimitReader(f, 64<<10+1))
	if err != nil {
		clear(b)
		return nil, fmt.Errorf("acquirer: key store: %w", err)
	}
	if len(b) > 64<<10 {
		clear(b)
		return nil, ErrKeyFile
	}
	return b, nil
}

// modeBits is the setuid, setgid and sticky bits of m in octal position.
func modeBits(m fs.FileMode) uint32 {
	var b uint32
	if m&fs.ModeSetuid != 0 {
		b |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		b |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		b |= 0o1000
	}
	return b
}
