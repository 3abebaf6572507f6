package acquirer

import (
	"bytes"
	"crypto/sha1"
	"encoding/hex"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/posagent/posagent/provisioning"
)

// Fuzz targets for every parser of the procedure's host bytes: none
// panics, and what each accepts holds what its layout promises.

func fuzzHex(f *testing.F, s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		f.Fatal(err)
	}
	return b
}

// FuzzCAPKList: a 372 answer's field 62.
func FuzzCAPKList(f *testing.F) {
	f.Add(fuzzHex(f, "32"+"9F0605A000000333"+"9F220108"+"DF0508"+hex.EncodeToString([]byte("20301231"))))
	f.Add(fuzzHex(f, "31"+"9F0605A000000333"+"9F220109"+"DF050420291231"))
	f.Add([]byte("0"))
	f.Add(fuzzHex(f, "31"+"9F06"+"89FFFFFFFFFFFFFFFFFF"))
	f.Fuzz(func(t *testing.T, b []byte) {
		keys, more, err := parseCAPKList(b)
		if err != nil {
			return
		}
		if more && b[0] != listMore {
			t.Fatal("more pages without the flag")
		}
		for _, k := range keys {
			if len(k.RID) != 5 || (k.Expiry != "" && !isDigits(k.Expiry, len(k.Expiry))) {
				t.Fatalf("accepted %s expiry %q", k, k.Expiry)
			}
		}
	})
}

// fuzzCAPKSeed is a well-formed 370 answer (its checksum by crypto/sha1:
// a seed, not a reference).
func fuzzCAPKSeed(f *testing.F) ([]byte, provisioning.CAPKID) {
	rid, mod := fuzzHex(f, "A000000333"), bytes.Repeat([]byte{0xB6, 0x16}, 64)
	sum := sha1.Sum(append(append(append(bytes.Clone(rid), 0x08), mod...), 0x03))
	b := fuzzHex(f, "31"+"9F0605A000000333"+"9F220108"+"DF0508"+hex.EncodeToString([]byte("20301231"))+"DF060101DF070101"+
		"DF028180"+hex.EncodeToString(mod)+"DF040103"+"DF0314"+hex.EncodeToString(sum[:]))
	return b, provisioning.CAPKID{RID: rid, Index: 0x08}
}

// FuzzCAPK: a 370 answer's field 62; an accepted key is the one asked for
// and its checksum verifies.
func FuzzCAPK(f *testing.F) {
	seed, want := fuzzCAPKSeed(f)
	f.Add(seed)
	f.Add(seed[:len(seed)-3])
	f.Add(append([]byte("0"), seed[1:]...))
	f.Fuzz(func(t *testing.T, b []byte) {
		k, err := parseCAPK(b, want)
		if err != nil {
			if k.Modulus != nil {
				t.Fatal("a refused key came back")
			}
			return
		}
		if !bytes.Equal(k.RID, want.RID) || k.Index != want.Index || k.Verify() != nil {
			t.Fatalf("accepted %s that does not verify", k.ID())
		}
	})
}

// FuzzAIDList: a 382 answer's field 62.
func FuzzAIDList(f *testing.F) {
	f.Add(fuzzHex(f, "31"+"9F0608"+unionPayDebit+"9F0608"+unionPayCredit))
	f.Add(fuzzHex(f, "32"+"9F0607A0000003330101"))
	f.Add([]byte("0"))
	f.Fuzz(func(t *testing.T, b []byte) {
		aids, _, err := parseAIDList(b)
		if err != nil {
			return
		}
		for _, a := range aids {
			if len(a) < 5 || len(a) > 16 {
				t.Fatalf("accepted an AID of %d bytes", len(a))
			}
		}
	})
}

// FuzzAppParams: a 380 answer's field 62.
func FuzzAppParams(f *testing.F) {
	want := fuzzHex(f, unionPayDebit)
	f.Add(fuzzHex(f, "31"+"9F0608"+unionPayDebit+"DF010100"+"9F08020030"+"DF1105D84000A800"+"DF1205D84004F800"+
		"DF13050010000000"+"9F1B040000C350"+"DF150400000000"+"DF160199"+"DF170120"+"DF14039F3704"+"DF180101"))
	f.Add(fuzzHex(f, "31"+"9F0608"+unionPayDebit))
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := parseAppParams(b, want)
		if err != nil {
			return
		}
		if !bytes.Equal(a.AID, want) || len(a.TACDefault) != 5 || len(a.TACOnline) != 5 || len(a.TACDenial) != 5 ||
			a.FloorLimit < 0 || a.Threshold < 0 || a.MaxTargetPercent > 99 || a.TargetPercent > 99 {
			t.Fatalf("accepted %+v", a)
		}
	})
}

// FuzzTerminalParams: a terminal-parameter answer's field 62 under both
// built-in profiles; what is accepted uploads again without panicking.
func FuzzTerminalParams(f *testing.F) {
	f.Add(false, []byte("1260"+"133"+"1402161234567   "+"232"+"26\x01\x02\x00\xFF"))
	f.Add(true, []byte("1260"+"2599"+"27ABC"))
	f.Add(false, []byte("22"+"\xc9\xcf\xba\xa3"+strings.Repeat(" ", 36)))
	common, _ := LookupProfile("common")
	centerm, _ := LookupProfile("centerm")
	f.Fuzz(func(t *testing.T, second bool, b []byte) {
		p := common
		if second {
			p = centerm
		}
		params, err := parseTerminalParams(p, b)
		if err != nil {
			return
		}
		if !utf8.ValidString(params.MerchantName) || params.HostTimeout < 0 || params.MaxReversals < 0 {
			t.Fatalf("accepted %+v", params)
		}
		for tag := range params.Other {
			if _, ok := p.paramTag(tag); !ok {
				t.Fatalf("kept tag %s the profile does not know", tag)
			}
		}
		_, _ = statusField(p, params)
	})
}

// FuzzSettlement: a settlement answer's field 48.
func FuzzSettlement(f *testing.F) {
	f.Add(strings.Repeat("0", 30)+"1"+strings.Repeat("0", 30)+"2", false)
	f.Add(strings.Repeat("0", 30)+"3", true)
	f.Add("0", false)
	f.Fuzz(func(t *testing.T, s string, noForeign bool) {
		dom, foreign, err := parseSettlement(s, noForeign)
		if err != nil {
			return
		}
		if len(s) != settleSide && len(s) != 2*settleSide {
			t.Fatalf("accepted %d digits", len(s))
		}
		if dom != (s[settleSide-1] == '1') || len(s) == 2*settleSide && foreign != (s[2*settleSide-1] == '1') {
			t.Fatal("verdict misread")
		}
	})
}

// FuzzHeaderDemand: any header, any digit position.
func FuzzHeaderDemand(f *testing.F) {
	f.Add([]byte{0x60, 0x31, 0x04, 0x31, 0x07, 0x00}, 5)
	f.Add([]byte{0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF}, 11)
	f.Fuzz(func(t *testing.T, b []byte, digit int) {
		var h Header
		copy(h[:], b)
		p := DefaultProfile()
		p.DemandDigit = digit
		if d := p.Demand(h); d < 0 || d > 15 {
			t.Fatalf("demand %d from one nibble", d)
		}
	})
}

// FuzzInstitutions: field 44.
func FuzzInstitutions(f *testing.F) {
	f.Add("01020000   03050000   ")
	f.Add("0102")
	f.Fuzz(func(t *testing.T, s string) {
		i, a := institutions(s)
		if len(i) > 11 || len(a) > 11 {
			t.Fatalf("%q %q", i, a)
		}
	})
}
