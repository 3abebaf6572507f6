package acquirer

import (
	"bytes"
	"encoding/json"
	"testing"
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
