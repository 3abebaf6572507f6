//go:build !unix

package acquirer

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// readKeyFile reads the key file. Outside Unix there are no owner and mode
// bits to check; the terminal's firmware is Linux, this build is for
// development tools only. A symbolic link is still refused.
func readKeyFile(path string) ([]byte, error) {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ErrNoKeys
	}
	if err != nil {
		return nil, fmt.Errorf("acquirer: key store: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%w: %s is not a regular file: refused", ErrKeyFileUnsafe, path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("acquirer: key store: %w", err)
	}
	return b, nil
}
