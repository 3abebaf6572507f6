package emv

import (
	"encoding/hex"
	"errors"
	"testing"
)

// TestParseCDAFields covers the answers a CDA request can get: a signed
// format 2 without a clear AC, unsigned AACs in either format, and the
// malformed.
func TestParseCDAFields(t *testing.T) {
	for _, tc := range []struct {
		in            string
		ok, f1        bool
		cid           byte
		hasAC, hasSig bool
	}{
		{"77149F2701809F360200119F4B04010203049F100107", true, false, 0x80, false, true}, // signed ARQC, no clear AC
		{"77149F2701009F360200119F26080102030405060708", true, false, 0x00, true, false}, // unsigned AAC in format 2
		{"800D0000110102030405060708AABB", true, true, 0x00, true, false},                // format 1
		{"770A9F2701809F4B03010203", false, false, 0, false, false},                      // no ATC
		{"770A9F270280809F36020011", false, false, 0, false, false},                      // CID of two bytes
		{"770E9F2701809F360200119F2602AABB", false, false, 0, false, false},              // AC of two bytes
		{"6F00", false, false, 0, false, false},                                          // another template
		{"", false, false, 0, false, false},                                              // nothing
	} {
		b := unhexT(t, tc.in)
		f, err := parseCDAFields(b)
		if tc.ok != (err == nil) {
			t.Errorf("%s: err %v, want ok=%v", tc.in, err, tc.ok)
			continue
		}
		if err != nil {
			if !errors.Is(err, ErrCardData) {
				t.Errorf("%s: untyped error %v", tc.in, err)
			}
			continue
		}
		if f.format1 != tc.f1 || f.cid != tc.cid || (f.ac != nil) != tc.hasAC || (f.sdad != nil) != tc.hasSig {
			t.Errorf("%s: %+v", tc.in, f)
		}
	}
}

func FuzzParseCDAFields(f *testing.F) {
	for _, s := range []string{
		"77149F2701809F360200119F4B04010203049F100107",
		"77149F2701009F360200119F26080102030405060708",
		"800D0000110102030405060708AABB",
		"7700",
	} {
		b, _ := hex.DecodeString(s)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := parseCDAFields(b)
		if err != nil {
			if !errors.Is(err, ErrCardData) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		if len(c.atc) != 2 || c.ac != nil && len(c.ac) != 8 {
			t.Fatalf("accepted %X as %+v", b, c)
		}
	})
}
