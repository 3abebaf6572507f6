package oda_test

import (
	"bytes"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/posagent/posagent/agent/card/oda"
	"github.com/posagent/posagent/provisioning"
)

// The simulators' test CA (agent/sim/testca), read as files: this package
// may not import agent/sim, and the files are what hostsim serves.
const testca = "../../sim/testca"

func hx(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatalf("hex %q: %v", s, err)
	}
	return b
}

// mustHex is hx for constant data outside a test (the public vectors,
// examples).
func mustHex(s string) []byte {
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		panic(err)
	}
	return b
}

// testKey is an RSA key pair in a PEM file: the public half for the code
// under test, the file for openssl to sign with.
type testKey struct {
	path string
	pub  oda.PublicKey
}

func loadKey(t testing.TB, path string) testKey {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(raw)
	if blk == nil {
		t.Fatalf("%s: no PEM block", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	rk, ok := k.(*rsa.PrivateKey)
	if !ok {
		t.Fatalf("%s: not RSA", path)
	}
	return testKey{path: path, pub: oda.PublicKey{
		Modulus:  rk.N.FillBytes(make([]byte, (rk.N.BitLen()+7)/8)),
		Exponent: big.NewInt(int64(rk.E)).Bytes(),
	}}
}

func caKey(t testing.TB, index string) testKey {
	return loadKey(t, filepath.Join(testca, "A000000333-"+index+".TEST-ONLY.key.pem"))
}

func dataKey(t testing.TB, name string) testKey {
	return loadKey(t, filepath.Join("testdata", name+".TEST-ONLY.key.pem"))
}

// sign is the private-key operation done by openssl, raw RSA with no
// padding: plain^d mod n. plain must be as long as the modulus. OpenSSL 3's
// `pkeyutl -sign` refuses an input longer than a digest even without
// padding, so this asks for the same operation as a raw decryption.
func (k testKey) sign(t testing.TB, plain []byte) []byte {
	t.Helper()
	if len(plain) != len(k.pub.Modulus) {
		t.Fatalf("plaintext of %d bytes for a key of %d", len(plain), len(k.pub.Modulus))
	}
	cmd := exec.Command("openssl", "pkeyutl", "-decrypt", "-pkeyopt", "rsa_padding_mode:none", "-inkey", k.path)
	cmd.Stdin = bytes.NewReader(plain)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("openssl pkeyutl: %v: %s", err, stderr.Bytes())
	}
	if len(out) != len(plain) {
		t.Fatalf("openssl gave %d bytes for %d", len(out), len(plain))
	}
	return out
}

// needOpenSSL skips the openssl-signed known answers where openssl is not
// installed; the public vectors (vectors_test.go) need nothing and always run.
func needOpenSSL(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("openssl is not installed: it signs these known answers")
	}
}

// testCAPKs reads agent/sim/testca/capk.yaml, the CA keys hostsim serves,
// DF03 checksums included.
func testCAPKs(t testing.TB) []provisioning.CAPK {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(testca, "capk.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Keys []struct {
			RID, Index, Expiry, Hash, Algorithm, Exponent, Modulus, Checksum string
		}
	}
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	var out []provisioning.CAPK
	for _, k := range doc.Keys {
		out = append(out, provisioning.CAPK{
			RID: hx(t, k.RID), Index: hx(t, k.Index)[0], Expiry: k.Expiry,
			HashAlgo: hx(t, k.Hash)[0], KeyAlgo: hx(t, k.Algorithm)[0],
			Exponent: hx(t, k.Exponent), Modulus: hx(t, k.Modulus), Checksum: hx(t, k.Checksum),
		})
	}
	return out
}

func testCAPK(t testing.TB, index byte) provisioning.CAPK {
	t.Helper()
	for _, k := range testCAPKs(t) {
		if k.Index == index {
			return k
		}
	}
	t.Fatalf("no test CAPK %02X", index)
	return provisioning.CAPK{}
}

// The plaintexts below are built from Book 2's tables by the test, field by
// field, independently of the package's parsing: each field can be set
// wrong to see the check that must catch it.

// cert is the plaintext of an issuer (Table 6) or ICC (Table 14) public key
// certificate.
type cert struct {
	header, format, trailer byte
	owner                   []byte // issuer identifier (4) or application PAN (10)
	expiry                  []byte // MMYY
	serial                  []byte // 3 bytes
	hashAlgo, keyAlgo       byte
	key                     oda.PublicKey
	keyLen, expLen          int    // as written; -1 means the key's own
	staticData              []byte // hashed after the exponent (ICC only)
	hashFix                 func([]byte) []byte
}

func newCert(format byte, owner []byte, key oda.PublicKey) cert {
	return cert{header: 0x6A, format: format, trailer: 0xBC, owner: owner,
		expiry: []byte{0x12, 0x49}, serial: []byte{0x00, 0x00, 0x01},
		hashAlgo: 1, keyAlgo: 1, key: key, keyLen: -1, expLen: -1}
}

// build lays the certificate out for a signer with an n-byte modulus and
// returns it with the remainder the card would carry.
func (c cert) build(n int) (plain, remainder []byte) {
	keyLen, expLen := len(c.key.Modulus), len(c.key.Exponent)
	if c.keyLen >= 0 {
		keyLen = c.keyLen
	}
	if c.expLen >= 0 {
		expLen = c.expLen
	}
	b := []byte{c.header, c.format}
	b = append(b, c.owner...)
	b = append(b, c.expiry...)
	b = append(b, c.serial...)
	b = append(b, c.hashAlgo, c.keyAlgo, byte(keyLen), byte(expLen))
	room := n - len(b) - 21
	if len(c.key.Modulus) <= room {
		b = append(b, c.key.Modulus...)
		b = append(b, bytes.Repeat([]byte{0xBB}, room-len(c.key.Modulus))...)
	} else {
		b = append(b, c.key.Modulus[:room]...)
		remainder = c.key.Modulus[room:]
	}
	h := sha1.New()
	h.Write(b[1:])
	h.Write(remainder)
	h.Write(c.key.Exponent)
	h.Write(c.staticData)
	sum := h.Sum(nil)
	if c.hashFix != nil {
		sum = c.hashFix(sum)
	}
	b = append(b, sum...)
	return append(b, c.trailer), remainder
}

// signedData is the plaintext of signed static (Table 7) or dynamic
// (Table 17) application data: header, format, hash algorithm, the body
// (DAC, or L_DD and the ICC dynamic data), BB padding, hash, trailer.
type signedData struct {
	header, format, hashAlgo, trailer byte
	body                              []byte
	hashed                            []byte // after the recovered part: static or terminal dynamic data
	hashFix                           func([]byte) []byte
}

func (s signedData) build(n int) []byte {
	b := append([]byte{s.header, s.format, s.hashAlgo}, s.body...)
	b = append(b, bytes.Repeat([]byte{0xBB}, n-len(b)-21)...)
	h := sha1.New()
	h.Write(b[1:])
	h.Write(s.hashed)
	sum := h.Sum(nil)
	if s.hashFix != nil {
		sum = s.hashFix(sum)
	}
	return append(append(b, sum...), s.trailer)
}

func flipFirst(b []byte) []byte { b = bytes.Clone(b); b[0] ^= 1; return b }

// wantErr checks err against want (nil: success) and the detail substring.
func wantErr(t *testing.T, err error, want []error, detail string) {
	t.Helper()
	if len(want) == 0 {
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return
	}
	if err == nil {
		t.Fatalf("no error, want %v", want)
	}
	for _, w := range want {
		if !errors.Is(err, w) {
			t.Errorf("error %q is not %q", err, w)
		}
	}
	if !strings.Contains(err.Error(), detail) {
		t.Errorf("error %q does not say %q", err, detail)
	}
}
