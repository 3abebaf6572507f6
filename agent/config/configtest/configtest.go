// Package configtest writes edited copies of a configuration file for tests
// (usually testdata/posagent.example.yaml). It imports nothing of the
// agent, so the agent's own tests can use it as well as agent/testkit/rig.
package configtest

import (
	"fmt"
	"os"
	"strings"
)

// WriteEdited copies the config at src to dst (0600) with each edit's
// first occurrence replaced ({old, new}); an edit that finds nothing is an
// error, so a changed example config fails loudly instead of testing the
// wrong setup. src and dst may be the same file.
func WriteEdited(src, dst string, edits [][2]string) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	cfg := string(b)
	for _, kv := range edits {
		if !strings.Contains(cfg, kv[0]) {
			return fmt.Errorf("configtest: %s has no %q", src, kv[0])
		}
		cfg = strings.Replace(cfg, kv[0], kv[1], 1)
	}
	return os.WriteFile(dst, []byte(cfg), 0o600)
}
