package provisioning

import (
	"bytes"
	"encoding/hex"
	"errors"
	"os/exec"
	"strings"
	"testing"
)

// The CA key checksum is SHA-1 over RID, index, modulus and exponent;
// openssl computes the reference from the same bytes.
func TestCAPKVerify(t *testing.T) {
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		t.Skip("no openssl:", err)
	}
	k := CAPK{RID: []byte{0xA0, 0, 0, 0x03, 0x33}, Index: 0x80, Exponent: []byte{0x03},
		Modulus: bytes.Repeat([]byte{0xC5, 0x3A}, 64), HashAlgo: 1, KeyAlgo: 1}
	in := append(append(append(append([]byte{}, k.RID...), k.Index), k.Modulus...), k.Exponent...)
	cmd := exec.Command(openssl, "dgst", "-sha1", "-hex")
	cmd.Stdin = bytes.NewReader(in)
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(out))
	if k.Checksum, err = hex.DecodeString(f[len(f)-1]); err != nil {
		t.Fatal(err)
	}
	if err := k.Verify(); err != nil {
		t.Fatalf("Verify with openssl's checksum: %v", err)
	}
	for name, bad := range map[string]func(*CAPK){
		"modulus":  func(k *CAPK) { k.Modulus = append([]byte{}, k.Modulus...); k.Modulus[7] ^= 1 },
		"exponent": func(k *CAPK) { k.Exponent = []byte{1, 0, 1} },
		"index":    func(k *CAPK) { k.Index++ },
		"checksum": func(k *CAPK) { k.Checksum = append([]byte{}, k.Checksum...); k.Checksum[0] ^= 0x80 },
	} {
		c := k
		bad(&c)
		if err := c.Verify(); !errors.Is(err, ErrCAPKChecksum) {
			t.Errorf("%s changed: Verify = %v, want ErrCAPKChecksum", name, err)
		}
	}
	if err := (CAPK{RID: []byte{1, 2}}).Verify(); err == nil || errors.Is(err, ErrCAPKChecksum) {
		t.Errorf("incomplete key: %v", err)
	}
}
