package mqtt

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"

	"github.com/posagent/posagent/agent/store"
)

// ErrCorruptSession is wrapped by NextSession when the session file exists but
// does not hold a number: starting again at 1 would let an old Will look newer
// than our births, so it is an error for the operator, not a fresh start.
var ErrCorruptSession = errors.New("mqtt: session file is corrupt")

// NextSession reads the session number kept in path, increments it, writes it
// back atomically (fsynced) and returns the new value: 1 on the first start.
// The agent calls it once per start, before New, and passes the result as
// Options.Session (docs/mqtt.md, "Session numbers"). The number is written
// before it is used, so a crash right after can only skip a number, never
// reuse one.
func NextSession(path string) (uint64, error) {
	var last uint64
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return 0, fmt.Errorf("mqtt: session file: %w", err)
	default:
		last, err = strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
		if err != nil || last == 0 {
			return 0, fmt.Errorf("%w: %s", ErrCorruptSession, path)
		}
	}
	next := last + 1
	if err := store.WriteFile(path, []byte(strconv.FormatUint(next, 10)+"\n"), 0o600); err != nil {
		return 0, fmt.Errorf("mqtt: session file: %w", err)
	}
	return next, nil
}

// Stale reports whether an offline presence p is older than the newest
// presence seen from the same terminal, newest: its Will belongs to an earlier
// session (a Will the broker published late, after that terminal's newer
// birth). Presences without a session (0, before this field existed) are never
// judged stale: the monitor cannot tell.
func Stale(p, newest Presence) bool {
	return p.State == Offline && p.Session != 0 && newest.Session != 0 && p.Session < newest.Session
}
