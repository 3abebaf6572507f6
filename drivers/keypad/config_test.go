package keypad

import (
	"errors"
	"strings"
	"testing"
	"time"

	"periph.io/x/conn/v3/gpio"
)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name   string
		change func(*Config)
		field  string // "" means valid
	}{
		{"valid", func(*Config) {}, ""},
		{"valid reversed", func(c *Config) { c.Orientation = ColsDrive }, ""},
		{"zero durations take defaults", func(c *Config) { c.ScanEvery, c.Debounce, c.StuckAfter = 0, 0, 0 }, ""},
		{"stuck detection off", func(c *Config) { c.StuckAfter = -1 }, ""},
		{"no rows", func(c *Config) { c.Rows = nil }, "Rows:"},
		{"no cols", func(c *Config) { c.Cols = nil }, "Cols:"},
		{"blank pin", func(c *Config) { c.Cols = []string{"C0", " ", "C2", "C3"} }, "Cols[1]:"},
		{"pin used twice", func(c *Config) { c.Cols = []string{"C0", "C1", "R2", "C3"} }, "Cols[2]:"},
		{"keys rows mismatch", func(c *Config) { c.Keys = c.Keys[:3] }, "Keys:"},
		{"keys cols mismatch", func(c *Config) {
			c.Keys = [][]string{c.Keys[0], c.Keys[1], {"7", "8"}, c.Keys[3]}
		}, "Keys[2]:"},
		{"unknown key", func(c *Config) {
			c.Keys = [][]string{c.Keys[0], {"4", "five", "6", "F2"}, c.Keys[2], c.Keys[3]}
		}, "Keys[1][1]:"},
		{"lower-case key", func(c *Config) {
			c.Keys = [][]string{c.Keys[0], c.Keys[1], c.Keys[2], {"cancel", "0", "ENTER", ""}}
		}, "Keys[3][0]:"},
		{"duplicate key", func(c *Config) {
			c.Keys = [][]string{c.Keys[0], c.Keys[1], c.Keys[2], {"CANCEL", "0", "ENTER", "1"}}
		}, "Keys[3][3]:"},
		{"bad orientation", func(c *Config) { c.Orientation = "diagonal" }, "Orientation:"},
		{"negative scan", func(c *Config) { c.ScanEvery = -time.Millisecond }, "ScanEvery:"},
		{"negative debounce", func(c *Config) { c.Debounce = -time.Millisecond }, "Debounce:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := testConfig(RowsDrive)
			tt.change(&c)
			err := c.Validate()
			if tt.field == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tt.field) {
				t.Fatalf("Validate = %v, want ErrConfig naming %s", err, tt.field)
			}
			// Open and OpenHost refuse it the same way.
			if _, err := Open(c, func(string) gpio.PinIO { return nil }); !errors.Is(err, ErrConfig) {
				t.Errorf("Open = %v", err)
			}
			if _, err := OpenHost(c); !errors.Is(err, ErrConfig) {
				t.Errorf("OpenHost = %v", err)
			}
		})
	}
}

func TestDefaults(t *testing.T) {
	c := Config{}.withDefaults()
	if c.Orientation != RowsDrive || c.ScanEvery != DefaultScanEvery || c.Debounce != DefaultDebounce || c.StuckAfter != DefaultStuckAfter {
		t.Fatalf("defaults: %+v", c)
	}
	if ValidKey("enter") || !ValidKey("ENTER") || !ValidKey("#") {
		t.Fatal("ValidKey")
	}
}
