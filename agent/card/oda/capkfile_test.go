package oda_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/posagent/posagent/agent/card/oda"
	"github.com/posagent/posagent/provisioning"
)

// TestParseCAPKs reads the test CA's key file, whose checksums were
// computed when the keys were made (agent/sim/testca/README.md), and
// refuses a file with one digit of a modulus changed, or a field short.
func TestParseCAPKs(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "sim", "testca", "capk.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	keys, err := oda.ParseCAPKs(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 4 || keys[1].Index != 0x81 || keys[1].Expiry != "20491231" || len(keys[1].Exponent) != 1 {
		t.Fatalf("keys %+v", keys)
	}
	i := strings.Index(string(b), `modulus: "`) + len(`modulus: "`)
	flipped := []byte(string(b))
	flipped[i] ^= 0x01 // 'B' → 'C': still hex
	if _, err := oda.ParseCAPKs(flipped); !errors.Is(err, provisioning.ErrCAPKChecksum) {
		t.Errorf("changed modulus: %v", err)
	}
	for _, in := range []string{"", "keys: []", "keys: [{rid: A0000003}]", "other: 1", `keys: [{rid: A000000333, index: "81", expiry: "2049", hash: "01", algorithm: "01", exponent: "03", modulus: "AA", checksum: "00"}]`} {
		if _, err := oda.ParseCAPKs([]byte(in)); err == nil {
			t.Errorf("%q: no error", in)
		}
	}
}

func FuzzParseCAPKs(f *testing.F) {
	if b, err := os.ReadFile(filepath.Join("..", "..", "sim", "testca", "capk.yaml")); err == nil {
		f.Add(b)
	}
	f.Add([]byte("keys: [{rid: A000000333}]"))
	f.Fuzz(func(t *testing.T, b []byte) {
		keys, err := oda.ParseCAPKs(b)
		for _, k := range keys {
			if err != nil || k.Verify() != nil {
				t.Fatalf("returned key %s with err %v", k.ID(), err)
			}
		}
	})
}
