package keypad

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Orientation says which side of the matrix is driven and which is read.
type Orientation string

const (
	// RowsDrive drives rows (one at a time, Low) and reads the columns as
	// pulled-up inputs. It is the default.
	RowsDrive Orientation = "rows"
	// ColsDrive drives columns and reads the rows, for boards wired the
	// other way round.
	ColsDrive Orientation = "cols"
)

// Defaults used when a Config field is zero. A 5 ms scan catches a 30 ms
// tap several times over; 20 ms outlasts the bounce of membrane and dome
// switches; 10 s is longer than any deliberate hold on a POS keypad.
const (
	DefaultScanEvery  = 5 * time.Millisecond
	DefaultDebounce   = 20 * time.Millisecond
	DefaultStuckAfter = 10 * time.Second
)

// Config describes a matrix keypad: the GPIO names of its rows and columns
// (as gpioreg.ByName knows them, e.g. "GPIO17"), and the key at each
// (row, col). Keys has one entry per row, each with one name per column;
// an empty name marks a position with no key. It is plain data so it can be
// read from the agent's YAML configuration.
type Config struct {
	Rows        []string      `yaml:"rows"`
	Cols        []string      `yaml:"cols"`
	Keys        [][]string    `yaml:"keys"`
	Orientation Orientation   `yaml:"orientation"` // "" means RowsDrive
	ScanEvery   time.Duration `yaml:"scan_every"`  // 0 means DefaultScanEvery
	Debounce    time.Duration `yaml:"debounce"`    // 0 means DefaultDebounce
	StuckAfter  time.Duration `yaml:"stuck_after"` // 0 means DefaultStuckAfter; negative disables
}

// ErrConfig is wrapped by every validation error, so callers can tell a bad
// configuration (fix the file) from a hardware failure.
var ErrConfig = errors.New("keypad: invalid config")

// knownKeys are the names the terminal's keypad may carry.
var knownKeys = map[string]bool{
	"0": true, "1": true, "2": true, "3": true, "4": true,
	"5": true, "6": true, "7": true, "8": true, "9": true,
	"ENTER": true, "CANCEL": true, "CLEAR": true,
	"F1": true, "F2": true, "F3": true, "F4": true,
	"UP": true, "DOWN": true, "*": true, "#": true,
}

// ValidKey reports whether name is a key name the driver may deliver.
func ValidKey(name string) bool { return knownKeys[name] }

func configErr(field, format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", ErrConfig, field, fmt.Sprintf(format, args...))
}

// Validate checks c and returns an error naming the first bad field.
func (c Config) Validate() error {
	if len(c.Rows) == 0 {
		return configErr("Rows", "no row pins")
	}
	if len(c.Cols) == 0 {
		return configErr("Cols", "no column pins")
	}
	seen := map[string]string{}
	for _, f := range []struct {
		name string
		pins []string
	}{{"Rows", c.Rows}, {"Cols", c.Cols}} {
		for i, p := range f.pins {
			field := fmt.Sprintf("%s[%d]", f.name, i)
			if strings.TrimSpace(p) == "" {
				return configErr(field, "empty pin name")
			}
			if prev, ok := seen[p]; ok {
				return configErr(field, "pin %q already used by %s", p, prev)
			}
			seen[p] = field
		}
	}
	if len(c.Keys) != len(c.Rows) {
		return configErr("Keys", "%d rows of keys for %d row pins", len(c.Keys), len(c.Rows))
	}
	names := map[string]string{}
	for r, row := range c.Keys {
		if len(row) != len(c.Cols) {
			return configErr(fmt.Sprintf("Keys[%d]", r), "%d keys for %d column pins", len(row), len(c.Cols))
		}
		for col, k := range row {
			field := fmt.Sprintf("Keys[%d][%d]", r, col)
			if k == "" {
				continue
			}
			if !knownKeys[k] {
				return configErr(field, "unknown key %q", k)
			}
			if prev, ok := names[k]; ok {
				return configErr(field, "key %q already at %s", k, prev)
			}
			names[k] = field
		}
	}
	switch c.Orientation {
	case "", RowsDrive, ColsDrive:
	default:
		return configErr("Orientation", "%q is neither %q nor %q", c.Orientation, RowsDrive, ColsDrive)
	}
	if c.ScanEvery < 0 {
		return configErr("ScanEvery", "negative (%s)", c.ScanEvery)
	}
	if c.Debounce < 0 {
		return configErr("Debounce", "negative (%s)", c.Debounce)
	}
	return nil
}

// withDefaults returns c with zero durations replaced by the defaults.
func (c Config) withDefaults() Config {
	if c.Orientation == "" {
		c.Orientation = RowsDrive
	}
	if c.ScanEvery == 0 {
		c.ScanEvery = DefaultScanEvery
	}
	if c.Debounce == 0 {
		c.Debounce = DefaultDebounce
	}
	if c.StuckAfter == 0 {
		c.StuckAfter = DefaultStuckAfter
	}
	return c
}
