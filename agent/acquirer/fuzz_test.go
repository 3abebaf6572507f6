package acquirer

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"slices"
	"testing"

	"github.com/posagent/posagent/provisioning"
)

// FuzzDecodeFrame: the framing reader never panics, and what it accepts it
// renders back byte for byte.
func FuzzDecodeFrame(f *testing.F) {
	f.Add([]byte{0x00, 0x0B, 0x60, 0, 3, 0, 0, 0x60, 0x31, 0, 0x31, 7, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, err := DecodeFrame(b)
		if err == nil {
			again, err := fr.Encode()
			if err != nil || !bytes.Equal(again, b) {
				t.Fatalf("re-encode: %v", err)
			}
		}
		r, err := ReadFrame(bytes.NewReader(b), 0)
		if err == nil && len(r.Message)+frameOverhead+2 > len(b) {
			t.Fatal("read past the input")
		}
	})
}

// FuzzUnpack: the dialect's unpacker never panics, Describe never panics on
// what it accepts, and a message that packs again unpacks to the same thing.
func FuzzUnpack(f *testing.F) {
	f.Add([]byte{0x08, 0x10, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Unpack(b)
		if err != nil {
			return
		}
		d1, err := Describe(m, true)
		if err != nil {
			return
		}
		if _, err := Describe(m, false); err != nil {
			t.Fatal(err)
		}
		packed, err := Pack(m)
		if err != nil {
			return
		}
		m2, err := Unpack(packed)
		if err != nil {
			t.Fatalf("re-unpack: %v", err)
		}
		d2, _ := Describe(m2, true)
		j1, _ := json.Marshal(d1)
		j2, _ := json.Marshal(d2)
		if !bytes.Equal(j1, j2) {
			t.Fatalf("round trip\n%s\n%s", j1, j2)
		}
	})
}

// FuzzParsePINBlock: the host's PIN block parser never panics, accepts only
// what format 0 allows, and what it accepts encodes back to the same block.
func FuzzParsePINBlock(f *testing.F) {
	f.Add([]byte{0x04, 0x12, 0x25, 0xEE, 0xEE, 0xEE, 0xEE, 0xEE}, "4111111111111111")
	f.Fuzz(func(t *testing.T, block []byte, p string) {
		pin, err := ParsePINBlock(block, p)
		if err != nil {
			return
		}
		if len(pin) < 4 || len(pin) > 12 || !isDigits(pin, len(pin)) {
			t.Fatalf("accepted a PIN of %d characters", len(pin))
		}
		again, err := pinBlockClear(pin, p)
		if err != nil || !bytes.Equal(again, block) {
			t.Fatalf("re-encode: %v", err)
		}
	})
}

// FuzzDecryptTrack: decrypting whatever a terminal sent as field 35/36
// never panics, and a track that encrypts decrypts back to itself.
func FuzzDecryptTrack(f *testing.F) {
	f.Add("6222021234567890128=30122011234567890")
	f.Add("1234567890=1")
	f.Fuzz(func(t *testing.T, track string) {
		tdk := Key{0x33, 0x33, 0x33, 0x33, 0x33, 0x33, 0x33, 0x33, 0xCC, 0xCC, 0xCC, 0xCC, 0xCC, 0xCC, 0xCC, 0xCC}
		_, _ = DecryptTrack(tdk, track)
		enc, err := EncryptTrack(tdk, track)
		if err != nil {
			return
		}
		back, err := DecryptTrack(tdk, enc)
		if err != nil || back != track {
			t.Fatalf("round trip: %v", err)
		}
	})
}

// FuzzScriptField: the script notice's field 55 is built from what the card
// gave (the TC set, DF31); whatever that holds it never panics, and what it
// builds is TLV in the public apps' order with a 2-byte ATC and whole
// 5-byte results.
func FuzzScriptField(f *testing.F) {
	f.Add(mustHex(f, chipTC), mustHex(f, chipScripts))
	f.Add(mustHex(f, "9F3602001182027C00"), mustHex(f, "DF310A20000000011000000002"))
	f.Add([]byte{0x9F, 0x36, 0x82, 0xFF, 0xFF}, []byte{0xDF, 0x31, 0x85})
	f.Add([]byte{}, []byte{0x20, 0, 0, 0, 1})
	f.Fuzz(func(t *testing.T, tc, scripts []byte) {
		ic := &provisioning.ICData{TC: hex.EncodeToString(tc), Scripts: hex.EncodeToString(scripts), ATC: "0011"}
		b, err := scriptField(ic)
		if err != nil {
			return
		}
		objs, err := decodeTLVField(b, 55)
		if err != nil {
			t.Fatalf("built field 55 does not decode: %v", err)
		}
		next := 0
		for _, o := range objs {
			i := slices.Index(scriptTags, o.Tag)
			if i < next {
				t.Fatalf("tag %s out of order", o.Tag)
			}
			next = i + 1
			switch o.Tag {
			case "9F36":
				if len(o.Value) != 2 {
					t.Fatalf("ATC of %d bytes", len(o.Value))
				}
			case "DF31":
				if len(o.Value) == 0 || len(o.Value)%5 != 0 {
					t.Fatalf("DF31 of %d bytes", len(o.Value))
				}
			}
		}
	})
}
