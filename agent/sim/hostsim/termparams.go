package hostsim

import (
	"errors"
	"fmt"
	"strings"
)

// Param is one terminal parameter of the parameter download (0800/360): a
// two-digit tag and its value, which field 62 carries as ASCII, one after the
// other, each value of the tag's fixed length.
type Param struct {
	Tag   string
	Value string
}

// paramLen are the fixed value lengths of the parameter and status tags, as
// the public LiaoYang_POS app reads the download (Src/tranproc.c
// UpdateParameters: 11-26) and writes its status upload (MakeTermStatusData:
// 01-05, 11-25, 27, 51).
var paramLen = map[string]int{
	"01": 1, "02": 1, "03": 1, "04": 1, "05": 1, // status: capabilities (1 = supported)
	"11": 2,                      // transaction timeout, seconds
	"12": 2,                      // dial/connect wait, seconds
	"13": 1,                      // redial count
	"14": 14, "15": 14, "16": 14, // host phone numbers, space-padded
	"17": 14, // management phone number
	"18": 1,  // tips enabled
	"19": 2,  // tip percentage
	"20": 1,  // manual card entry allowed
	"21": 1,  // automatic sign-off after settlement
	"22": 40, // merchant name, space-padded
	"23": 1,  // reversal resend count
	"24": 1,  // offline upload mode
	"25": 1,  // key index
	"27": 2,  // status: offline transactions allowed
	"51": 12, // status: statistics (hours 4, dials 5, success rate 3)
}

func pad(s string, n int) string { return s + strings.Repeat(" ", n-len(s)) }

// DefaultParams is a parameter download in the public app's format: 60 s
// timeouts, 3 redials, no phone numbers (the terminal is on IP), no tips,
// no manual entry, automatic sign-off, 3 reversal resends, key index 1.
func DefaultParams() []Param {
	return []Param{{"11", "60"}, {"12", "60"}, {"13", "3"}, {"14", pad("", 14)}, {"15", pad("", 14)},
		{"16", pad("", 14)}, {"17", pad("", 14)}, {"18", "0"}, {"19", "00"}, {"20", "0"}, {"21", "1"},
		{"22", pad("POSAGENT TEST MERCHANT", 40)}, {"23", "3"}, {"24", "0"}, {"25", "1"}}
}

// paramWidth is tag's width in t's parameter download.
func (t CodeTable) paramWidth(tag string) (int, bool) {
	if n, ok := t.ParamWidths[tag]; ok {
		return n, true
	}
	n, ok := paramLen[tag]
	return n, ok
}

// paramsFor is DefaultParams in t's widths: a number wider there is
// zero-padded on the left.
func paramsFor(t CodeTable) []Param {
	ps := DefaultParams()
	for i, p := range ps {
		if n, ok := t.ParamWidths[p.Tag]; ok && n > len(p.Value) {
			ps[i].Value = strings.Repeat("0", n-len(p.Value)) + p.Value
		}
	}
	return ps
}

func checkParams(ps []Param, t CodeTable) error {
	for _, p := range ps {
		n, ok := t.paramWidth(p.Tag)
		if !ok {
			return fmt.Errorf("hostsim: parameter tag %q is not one the public format knows", p.Tag)
		}
		if len(p.Value) != n {
			return fmt.Errorf("hostsim: parameter %s: value of %d bytes, the tag wants %d", p.Tag, len(p.Value), n)
		}
	}
	return nil
}

func paramsField(ps []Param) []byte {
	var b []byte
	for _, p := range ps {
		b = append(append(b, p.Tag...), p.Value...)
	}
	return b
}

// errStatus is the error of a status upload that does not read as tags of
// known lengths.
var errStatus = errors.New("hostsim: status upload field 62 does not parse")

// parseStatus reads a status upload's field 62 (tag, fixed-length value, ...)
// and returns the tags in order. A tag the format does not know, or a value
// cut short, is an error: the host could not tell where the next tag starts.
func parseStatus(b []byte) ([]string, error) {
	var tags []string
	for i := 0; i < len(b); {
		if b[i] == 0 {
			break // the public app's buffer is NUL-terminated; what follows is padding
		}
		if i+2 > len(b) {
			return nil, errStatus
		}
		tag := string(b[i : i+2])
		n, ok := paramLen[tag]
		if !ok || i+2+n > len(b) {
			return nil, errStatus
		}
		tags = append(tags, tag)
		i += 2 + n
	}
	if len(tags) == 0 {
		return nil, errStatus
	}
	return tags, nil
}
