package magstripe

import (
	"slices"
	"testing"
)

func TestFramingByName(t *testing.T) {
	for name, want := range map[string][]int{"lines": {1, 2, 3}, "lines:2": {2}, "lines:1, 2": {1, 2}, "lines:2,3": {2, 3}} {
		f, err := FramingByName(name)
		if err != nil || !slices.Equal(f.Lines, want) {
			t.Errorf("%q: %v %v", name, f.Lines, err)
		}
	}
	for _, name := range []string{"magtek", ""} {
		if f, err := FramingByName(name); err != nil || string(f.Start) != string(MagTek.Start) || !f.Status {
			t.Errorf("%q: %+v %v", name, f, err)
		}
	}
	for _, bad := range []string{"morse", "lines:", "lines:4", "lines:1,1,2", "lines:1,3", "lines:x"} {
		if _, err := FramingByName(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestNormalizeName(t *testing.T) {
	for in, want := range map[string]string{
		"ZHANG/SAN":                  "ZHANG/SAN",
		"ZHANG/SAN                 ": "ZHANG/SAN",
		" zhang / san ":              "ZHANG/SAN",
		"SMITH/JOHN  A.MR":           "SMITH/JOHN A",
		"LI/":                        "LI",
		"/WEI":                       "WEI",
		"WANG  XIAO MING":            "WANG XIAO MING",
		"/":                          "",
		"   ":                        "",
		"A/B/C":                      "A/B C",
	} {
		if got := NormalizeName(in); got != want {
			t.Errorf("NormalizeName(%q) = %q, want %q", in, got, want)
		}
	}
}
