package cardsim_test

import (
	"bytes"
	"crypto/rsa"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/posagent/posagent/agent/card/emv"
	"github.com/posagent/posagent/agent/sim/cardsim"
	"github.com/posagent/posagent/agent/sim/hostsim"
)

// These tests read the ODA cards the way EMV Book 2 and Book 3 §10.3 tell a
// terminal to, but every RSA recovery and every SHA-1 is done by openssl
// (pkeyutl -verifyrecover with no padding, dgst -sha1): the card's signing
// code is checked against an implementation it shares nothing with.

const root = "../../.."

func odaProfile(name string) string { return filepath.Join(root, "testdata/cards/oda", name+".yaml") }

func needOpenSSL(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("openssl not installed")
	}
}

// opensslSHA1 is SHA-1 computed by openssl.
func opensslSHA1(t *testing.T, data ...[]byte) []byte {
	t.Helper()
	cmd := exec.Command("openssl", "dgst", "-sha1", "-binary")
	cmd.Stdin = bytes.NewReader(bytes.Join(data, nil))
	out, err := cmd.Output()
	if err != nil || len(out) != 20 {
		t.Fatalf("openssl dgst: %v (%d bytes)", err, len(out))
	}
	return out
}

// opensslRecover applies the public key to sig with openssl's raw RSA.
func opensslRecover(t *testing.T, pub *rsa.PublicKey, sig []byte) ([]byte, error) {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	keyFile, sigFile := filepath.Join(dir, "pub.pem"), filepath.Join(dir, "sig")
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(sigFile, sig, 0o600); err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd := exec.Command("openssl", "pkeyutl", "-verifyrecover", "-pubin", "-inkey", keyFile,
		"-pkeyopt", "rsa_padding_mode:none", "-in", sigFile)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("openssl pkeyutl: %v: %s", err, stderr.String())
	}
	return out, nil
}

// recoverEMV recovers sig and checks the Book 2 frame: header 6A, the
// format byte, trailer BC, and the hash (openssl SHA-1 over the recovered
// data from the format byte to the hash, then extra) in the 20 bytes
// before the trailer.
func recoverEMV(t *testing.T, pub *rsa.PublicKey, sig []byte, format byte, extra ...[]byte) ([]byte, error) {
	t.Helper()
	n := (pub.N.BitLen() + 7) / 8
	if len(sig) != n {
		return nil, fmt.Errorf("signature of %d bytes for a %d-byte key", len(sig), n)
	}
	m, err := opensslRecover(t, pub, sig)
	if err != nil {
		return nil, err
	}
	if len(m) != n {
		return nil, fmt.Errorf("recovered %d bytes", len(m))
	}
	if m[0] != 0x6A || m[1] != format || m[n-1] != 0xBC {
		return nil, fmt.Errorf("frame %02X %02X .. %02X, want 6A %02X .. BC", m[0], m[1], m[n-1], format)
	}
	if got := opensslSHA1(t, append([][]byte{m[1 : n-21]}, extra...)...); !bytes.Equal(got, m[n-21:n-1]) {
		return nil, errors.New("hash does not match")
	}
	return m, nil
}

// capk is the CA public key hostsim serves for the index.
func capk(t *testing.T, idx byte) (*rsa.PublicKey, bool) {
	t.Helper()
	keys, err := hostsim.DefaultCAPKs()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if k.Index == idx && hex.EncodeToString(k.RID) == "a000000333" {
			return &rsa.PublicKey{N: new(big.Int).SetBytes(k.Modulus), E: int(new(big.Int).SetBytes(k.Exponent).Int64())}, true
		}
	}
	return nil, false
}

// read is what a terminal has after SELECT, GPO and reading the AFL: the
// record objects, the static data to be authenticated (built here from the
// AFL and the raw records, Book 3 §10.3) and the GPO answer.
type read struct {
	card    *cardsim.Card
	objs    map[emv.Tag][]byte
	static  []byte
	aip     []byte
	afl     []byte
	gpo     []byte // the answer's data (without SW)
	pdolDat []byte
}

func send(t *testing.T, c *cardsim.Card, h string, data []byte) ([]byte, uint16) {
	t.Helper()
	cmd, _ := hex.DecodeString(h)
	if data != nil {
		cmd = append(append(cmd, byte(len(data))), data...)
	}
	resp, act := c.Process(append(cmd, 0x00))
	if act != cardsim.Answer || len(resp) < 2 {
		t.Fatalf("%s: action %v, % X", h, act, resp)
	}
	return resp[:len(resp)-2], uint16(resp[len(resp)-2])<<8 | uint16(resp[len(resp)-1])
}

// defaultPDOLData fills cardsim.DefaultPDOL: TTQ, amount 1.00, other 0,
// country 0156, TVR 0, currency 0156, date, type 00, UN.
func defaultPDOLData(ttq string) []byte {
	b, _ := hex.DecodeString(ttq + "000000000100" + "000000000000" + "0156" + "0000000000" + "0156" + "261203" + "00" + "11223344")
	return b
}

func readCard(t *testing.T, name string, ttq string) *read {
	t.Helper()
	card, err := cardsim.Open(odaProfile(name), nil)
	if err != nil {
		t.Fatal(err)
	}
	r := &read{card: card, objs: map[emv.Tag][]byte{}}
	aid, _ := hex.DecodeString("A000000333010101")
	if _, s := send(t, card, "00A40400", aid); s != 0x9000 {
		t.Fatalf("SELECT: %04X", s)
	}
	r.pdolDat = defaultPDOLData(ttq)
	gpo, s := send(t, card, "80A80000", append([]byte{0x83, byte(len(r.pdolDat))}, r.pdolDat...))
	if s != 0x9000 {
		t.Fatalf("GPO: %04X", s)
	}
	r.gpo = gpo
	objs, err := emv.DecodeTLV(gpo)
	if err != nil || len(objs) != 1 {
		t.Fatalf("GPO answer: %v", err)
	}
	switch objs[0].Tag {
	case 0x80:
		r.aip, r.afl = objs[0].Value[:2], objs[0].Value[2:]
	case 0x77:
		a, _ := emv.Find(objs[0].Children, 0x82)
		f, _ := emv.Find(objs[0].Children, 0x94)
		r.aip, r.afl = a.Value, f.Value
	}
	if len(r.afl) == 0 || len(r.afl)%4 != 0 {
		t.Fatalf("AFL % X", r.afl)
	}
	for i := 0; i < len(r.afl); i += 4 {
		sfi, first, last, nODA := int(r.afl[i]>>3), int(r.afl[i+1]), int(r.afl[i+2]), int(r.afl[i+3])
		for n := first; n <= last; n++ {
			rec, s := send(t, card, fmt.Sprintf("00B2%02X%02X", n, sfi<<3|4), nil)
			if s != 0x9000 {
				t.Fatalf("READ RECORD %d/%d: %04X", sfi, n, s)
			}
			tl, err := emv.DecodeTLV(rec)
			if err != nil || len(tl) != 1 || tl[0].Tag != 0x70 {
				t.Fatalf("record %d/%d: %v", sfi, n, err)
			}
			for _, o := range tl[0].Children {
				r.objs[o.Tag] = o.Value
			}
			if n-first < nODA {
				r.static = append(r.static, rawValue(t, rec)...)
			}
		}
	}
	// 9F4A lists only 82 (Book 3 §10.3): its value goes last.
	if tl := r.objs[0x9F4A]; !bytes.Equal(tl, []byte{0x82}) {
		t.Fatalf("9F4A % X", tl)
	}
	r.static = append(r.static, r.aip...)
	return r
}

// rawValue is the bytes of a 70 template after its tag and length.
func rawValue(t *testing.T, rec []byte) []byte {
	t.Helper()
	switch {
	case rec[1] < 0x80:
		return rec[2:]
	case rec[1] == 0x81:
		return rec[3:]
	case rec[1] == 0x82:
		return rec[4:]
	}
	t.Fatalf("record length % X", rec[:2])
	return nil
}

// chain recovers the issuer and ICC public keys from the records.
type chain struct {
	issuerRec, iccRec []byte
	issuer, icc       *rsa.PublicKey
}

func pubFrom(field []byte, n int, rem, exp []byte) *rsa.PublicKey {
	mod := append(append([]byte(nil), field[:min(n, len(field))]...), rem...)
	return &rsa.PublicKey{N: new(big.Int).SetBytes(mod), E: int(new(big.Int).SetBytes(exp).Int64())}
}

func recoverIssuer(t *testing.T, r *read, idx byte) (*chain, error) {
	t.Helper()
	ca, ok := capk(t, idx)
	if !ok {
		return nil, fmt.Errorf("hostsim serves no CA key %02X", idx)
	}
	nca := (ca.N.BitLen() + 7) / 8
	m, err := recoverEMV(t, ca, r.objs[0x90], 0x02, r.objs[0x92], r.objs[0x9F32])
	if err != nil {
		return nil, fmt.Errorf("issuer certificate: %w", err)
	}
	// Book 2 Table 6 offsets.
	if got := hex.EncodeToString(m[2:6]); got != "622202ff" {
		return nil, fmt.Errorf("issuer identifier %s", got)
	}
	if m[11] != 0x01 || m[12] != 0x01 || int(m[14]) != len(r.objs[0x9F32]) {
		return nil, errors.New("issuer certificate algorithms or exponent length")
	}
	ni := int(m[13])
	if want := max(ni-(nca-36), 0); len(r.objs[0x92]) != want {
		return nil, fmt.Errorf("remainder of %d bytes, want %d", len(r.objs[0x92]), want)
	}
	return &chain{issuerRec: m, issuer: pubFrom(m[15:nca-21], ni, r.objs[0x92], r.objs[0x9F32])}, nil
}

func (c *chain) recoverICC(t *testing.T, r *read) error {
	t.Helper()
	ni := (c.issuer.N.BitLen() + 7) / 8
	m, err := recoverEMV(t, c.issuer, r.objs[0x9F46], 0x04, r.objs[0x9F48], r.objs[0x9F47], r.static)
	if err != nil {
		return fmt.Errorf("ICC certificate: %w", err)
	}
	// Book 2 Table 14: the application PAN, padded with F to 10 bytes.
	if got := hex.EncodeToString(m[2:12]); got != "6222021234567890128f" {
		return fmt.Errorf("ICC certificate PAN %s", got)
	}
	pan := append([]byte(nil), r.objs[0x5A]...)
	for len(pan) < 10 {
		pan = append(pan, 0xFF)
	}
	if !bytes.Equal(m[2:12], pan) {
		return errors.New("ICC certificate PAN is not 5A")
	}
	c.iccRec = m
	c.icc = pubFrom(m[21:ni-21], int(m[19]), r.objs[0x9F48], r.objs[0x9F47])
	return nil
}

func fullChain(t *testing.T, r *read) *chain {
	t.Helper()
	ch, err := recoverIssuer(t, r, r.objs[0x8F][0])
	if err != nil {
		t.Fatal(err)
	}
	if err := ch.recoverICC(t, r); err != nil {
		t.Fatal(err)
	}
	return ch
}

func TestODAProfilesLoad(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(root, "testdata/cards/oda/*.yaml"))
	if err != nil || len(files) != len(cardsim.CertSpecs) {
		t.Fatalf("%d ODA profiles, %d in the certificate plan (%v)", len(files), len(cardsim.CertSpecs), err)
	}
	debit, err := cardsim.LoadProfile(filepath.Join(root, "testdata/cards/debit.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		p, err := cardsim.LoadProfile(f)
		if err != nil {
			t.Fatal(err)
		}
		if p.Name+".yaml" != filepath.Base(f) || p.ODA == nil {
			t.Errorf("%s: name %q, oda %v", f, p.Name, p.ODA)
		}
		if p.PAN != debit.PAN || p.Key != debit.Key || p.Cardholder != debit.Cardholder || p.Expiry != debit.Expiry {
			t.Errorf("%s: not debit.yaml's account", f)
		}
		if _, err := cardsim.New(p); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
}

// TestODARecordsCarryWhatTheAIPClaims: the AIP names exactly the method,
// the records carry its objects and the AFL counts the static data.
func TestODARecordsCarryWhatTheAIPClaims(t *testing.T) {
	common := []emv.Tag{0x8F, 0x90, 0x92, 0x9F32, 0x9F4A, 0x5A}
	for _, tc := range []struct {
		name string
		aip  byte // byte 1 bits SDA 40, DDA 20, CDA 01
		has  []emv.Tag
		not  []emv.Tag
	}{
		{"sda", 0x40, []emv.Tag{0x93}, []emv.Tag{0x9F46, 0x9F47, 0x9F48, 0x9F49}},
		{"dda", 0x20, []emv.Tag{0x9F46, 0x9F47, 0x9F48, 0x9F49}, []emv.Tag{0x93}},
		{"cda", 0x01, []emv.Tag{0x9F46, 0x9F47, 0x9F48, 0x9F49}, []emv.Tag{0x93}},
		{"qpboc", 0x20, []emv.Tag{0x9F46, 0x9F47, 0x9F48}, []emv.Tag{0x93}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := readCard(t, tc.name, "26000000")
			if r.aip[0]&0x61 != tc.aip {
				t.Errorf("AIP % X: ODA bits %02X, want %02X", r.aip, r.aip[0]&0x61, tc.aip)
			}
			for _, tag := range append(common, tc.has...) {
				if len(r.objs[tag]) == 0 {
					t.Errorf("records lack %v", tag)
				}
			}
			for _, tag := range tc.not {
				if _, ok := r.objs[tag]; ok {
					t.Errorf("records carry %v", tag)
				}
			}
			if !bytes.Equal(r.objs[0x8F], []byte{0x81}) {
				t.Errorf("8F % X", r.objs[0x8F])
			}
			// Three records are in the static data: SFI 1 record 1 and SFI
			// 2 records 1-2; SFI 3 (the certificates) is not.
			if want := "080101011001020218010200"; hex.EncodeToString(r.afl) != want {
				t.Errorf("AFL %x, want %s", r.afl, want)
			}
		})
	}
	// The shipped cards without an oda section carry no certificate and
	// claim no ODA method (AIP 1C00: cardholder verification, terminal risk
	// management, issuer authentication).
	c, _ := cardsim.Open(filepath.Join(root, "testdata/cards/debit.yaml"), nil)
	aid, _ := hex.DecodeString("A000000333010101")
	send(t, c, "00A40400", aid)
	pdol := defaultPDOLData("26000000")
	if r, _ := send(t, c, "80A80000", append([]byte{0x83, byte(len(pdol))}, pdol...)); len(r) < 4 || r[0] != 0x80 || r[2] != 0x1C || r[3] != 0x00 {
		t.Errorf("debit GPO % X", r)
	}
}

func TestSDAVerifiesWithOpenSSL(t *testing.T) {
	needOpenSSL(t)
	r := readCard(t, "sda", "26000000")
	ch, err := recoverIssuer(t, r, 0x81)
	if err != nil {
		t.Fatal(err)
	}
	ni := (ch.issuer.N.BitLen() + 7) / 8
	m, err := recoverEMV(t, ch.issuer, r.objs[0x93], 0x03, r.static)
	if err != nil {
		t.Fatalf("93: %v", err)
	}
	// Table 7: hash algorithm 01, DAC, BB padding up to the hash.
	if m[2] != 0x01 || !bytes.Equal(m[5:ni-21], bytes.Repeat([]byte{0xBB}, ni-26)) {
		t.Fatalf("93 recovered % X", m[:8])
	}
	// The same 93 must not verify over other static data.
	if _, err := recoverEMV(t, ch.issuer, r.objs[0x93], 0x03, r.static[1:]); err == nil {
		t.Fatal("93 verifies over other data")
	}
}

// checkSDAD recovers 9F4B (format 05) with the ICC key over the terminal
// data and returns the ICC dynamic data.
func checkSDAD(t *testing.T, icc *rsa.PublicKey, sdad []byte, terminal ...[]byte) ([]byte, error) {
	t.Helper()
	m, err := recoverEMV(t, icc, sdad, 0x05, terminal...)
	if err != nil {
		return nil, err
	}
	n := len(m)
	ldd := int(m[3])
	if m[2] != 0x01 || ldd > n-25 || !bytes.Equal(m[4+ldd:n-21], bytes.Repeat([]byte{0xBB}, n-ldd-25)) {
		return nil, fmt.Errorf("SDAD layout % X", m[:6])
	}
	return m[4 : 4+ldd], nil
}

func TestInternalAuthenticateVerifiesWithOpenSSL(t *testing.T) {
	needOpenSSL(t)
	r := readCard(t, "dda", "26000000")
	ch := fullChain(t, r)
	if !bytes.Equal(r.objs[0x9F49], []byte{0x9F, 0x37, 0x04}) {
		t.Fatalf("DDOL % X", r.objs[0x9F49])
	}
	var idns [][]byte
	for _, un := range []string{"CAFEBABE", "01020304"} {
		ddol, _ := hex.DecodeString(un)
		resp, s := send(t, r.card, "00880000", ddol)
		if s != 0x9000 || resp[0] != 0x80 {
			t.Fatalf("INTERNAL AUTHENTICATE: %04X % X", s, resp)
		}
		o, _ := emv.DecodeTLV(resp)
		dyn, err := checkSDAD(t, ch.icc, o[0].Value, ddol)
		if err != nil {
			t.Fatal(err)
		}
		if int(dyn[0]) < 2 || int(dyn[0]) > 8 || len(dyn) != 1+int(dyn[0]) {
			t.Fatalf("ICC dynamic data % X", dyn)
		}
		idns = append(idns, dyn[1:])
		// Over another terminal number the signature must fail.
		if _, err := checkSDAD(t, ch.icc, o[0].Value, []byte{0, 0, 0, 0}); err == nil {
			t.Fatal("SDAD verifies over other DDOL data")
		}
	}
	if bytes.Equal(idns[0], idns[1]) {
		t.Fatal("ICC dynamic number repeats")
	}
	if _, s := send(t, r.card, "00880000", []byte{1, 2, 3}); s != 0x6700 {
		t.Fatalf("short DDOL data: %04X", s)
	}
	// An SDA card has no dynamic signature.
	sda := readCard(t, "sda", "26000000")
	if _, s := send(t, sda.card, "00880000", []byte{1, 2, 3, 4}); s != 0x6D00 {
		t.Fatalf("SDA card INTERNAL AUTHENTICATE: %04X", s)
	}
}

var cdol1Data, _ = hex.DecodeString("000000000100" + "000000000000" + "0156" + "0000000000" + "0156" + "261203" + "00" + "A1B2C3D4" + "0000")

func TestCDAVerifiesWithOpenSSL(t *testing.T) {
	needOpenSSL(t)
	r := readCard(t, "cda", "26000000")
	ch := fullChain(t, r)
	d := append([]byte(nil), cdol1Data...)
	copy(d[len(d)-2:], r.aip)
	resp, s := send(t, r.card, "80AE9000", d) // ARQC, CDA requested
	if s != 0x9000 {
		t.Fatalf("GENERATE AC: %04X", s)
	}
	o, err := emv.DecodeTLV(resp)
	if err != nil || o[0].Tag != 0x77 {
		t.Fatalf("CDA answer % X: %v", resp, err)
	}
	kids := o[0].Children
	if _, has := emv.Find(kids, 0x9F26); has {
		t.Error("CDA answer carries the cryptogram in the clear")
	}
	sdad, _ := emv.Find(kids, 0x9F4B)
	cid, _ := emv.Find(kids, 0x9F27)
	atc, _ := emv.Find(kids, 0x9F36)
	// The transaction data hash covers PDOL data, CDOL1 data and the answer's
	// TLVs but 9F4B, in order (Book 2 §6.6.1).
	var tlvs []byte
	for _, k := range kids {
		if k.Tag != 0x9F4B {
			tlvs = emv.EncodeTLV(tlvs, k.Tag, k.Value)
		}
	}
	dyn, err := checkSDAD(t, ch.icc, sdad.Value, d[len(d)-6:len(d)-2]) // the UN 9F37 of the CDOL1 data
	if err != nil {
		t.Fatal(err)
	}
	nIDN := int(dyn[0])
	if len(dyn) != 1+nIDN+1+8+20 {
		t.Fatalf("CDA dynamic data of %d bytes", len(dyn))
	}
	if dyn[1+nIDN] != cid.Value[0] || cid.Value[0] != 0x80 {
		t.Errorf("CID in the signature %02X, in the answer % X", dyn[1+nIDN], cid.Value)
	}
	ac := dyn[2+nIDN : 10+nIDN]
	key, _ := hex.DecodeString(cardsim.DefaultKey)
	want, _ := cardsim.ARQC(key, uint16(atc.Value[0])<<8|uint16(atc.Value[1]), d)
	if !bytes.Equal(ac, want) {
		t.Errorf("AC in the signature % X, want % X", ac, want)
	}
	if got := opensslSHA1(t, r.pdolDat, d, tlvs); !bytes.Equal(dyn[10+nIDN:], got) {
		t.Errorf("transaction data hash % X, want % X", dyn[10+nIDN:], got)
	}

	// The second GENERATE AC (TC, CDA) hashes the CDOL2 data too.
	cdol2, _ := hex.DecodeString("3030" + "0000000000" + "55667788")
	resp2, s := send(t, r.card, "80AE5000", cdol2)
	if s != 0x9000 {
		t.Fatalf("second GENERATE AC: %04X", s)
	}
	o2, _ := emv.DecodeTLV(resp2)
	if o2[0].Tag != 0x77 {
		t.Fatalf("second answer % X", resp2)
	}
	var tlvs2 []byte
	var sdad2 []byte
	for _, k := range o2[0].Children {
		if k.Tag == 0x9F4B {
			sdad2 = k.Value
			continue
		}
		tlvs2 = emv.EncodeTLV(tlvs2, k.Tag, k.Value)
	}
	dyn2, err := checkSDAD(t, ch.icc, sdad2, cdol2[7:11])
	if err != nil {
		t.Fatal(err)
	}
	if got := opensslSHA1(t, r.pdolDat, d, cdol2, tlvs2); !bytes.Equal(dyn2[len(dyn2)-20:], got) || dyn2[1+int(dyn2[0])] != 0x40 {
		t.Errorf("second CDA: CID %02X, hash mismatch %v", dyn2[1+int(dyn2[0])], !bytes.Equal(dyn2[len(dyn2)-20:], got))
	}

	// Without P1 bit 5, or for an AAC, the answer is format 1, unsigned.
	for _, p1 := range []string{"80", "10"} {
		r := readCard(t, "cda", "26000000")
		resp, s := send(t, r.card, "80AE"+p1+"00", d)
		if s != 0x9000 || resp[0] != 0x80 {
			t.Errorf("P1 %s: %04X % X, want format 1", p1, s, resp)
		}
	}
}

func TestQPBOC(t *testing.T) {
	needOpenSSL(t)
	key, _ := hex.DecodeString(cardsim.DefaultKey)
	gpoObjs := func(r *read) []emv.TLV {
		o, _ := emv.DecodeTLV(r.gpo)
		if o[0].Tag != 0x77 {
			t.Fatalf("GPO format % X", r.gpo)
		}
		return o[0].Children
	}
	// The host checks the cryptogram as it checks a contact ARQC: field 55
	// rebuilt from the terminal's PDOL values and the card's answer.
	checkHost := func(r *read, kids []emv.TLV) {
		var f55 []byte
		vals := r.pdolDat[4:] // after the TTQ, the PDOL values are in CDOL1 order
		for _, e := range []struct {
			tag emv.Tag
			n   int
		}{{0x9F02, 6}, {0x9F03, 6}, {0x9F1A, 2}, {0x95, 5}, {0x5F2A, 2}, {0x9A, 3}, {0x9C, 1}, {0x9F37, 4}} {
			f55 = emv.EncodeTLV(f55, e.tag, vals[:e.n])
			vals = vals[e.n:]
		}
		f55 = emv.EncodeTLV(f55, 0x82, r.aip)
		for _, k := range kids {
			if k.Tag == 0x9F26 || k.Tag == 0x9F36 {
				f55 = emv.EncodeTLV(f55, k.Tag, k.Value)
			}
		}
		if err := cardsim.VerifyField55(key, "", hex.EncodeToString(f55)); err != nil {
			t.Errorf("host check: %v", err)
		}
	}

	// A reader that allows offline and does fDDA 01 (TTQ byte 4 bit 8): TC
	// with 9F4B, and 9F69 in the records.
	r := readCard(t, "qpboc", "26000080")
	ch := fullChain(t, r)
	kids := gpoObjs(r)
	for _, tag := range []emv.Tag{0x9F26, 0x9F27, 0x9F10, 0x9F36, 0x9F4B} {
		if _, ok := emv.Find(kids, tag); !ok {
			t.Errorf("offline GPO answer lacks %v", tag)
		}
	}
	cid, _ := emv.Find(kids, 0x9F27)
	if cid.Value[0] != 0x40 {
		t.Errorf("CID %02X, want TC", cid.Value[0])
	}
	checkHost(r, kids)
	sdad, _ := emv.Find(kids, 0x9F4B)
	atc, _ := emv.Find(kids, 0x9F36)
	d69 := r.objs[0x9F69]
	un, amt, cur := r.pdolDat[len(r.pdolDat)-4:], r.pdolDat[4:10], r.pdolDat[23:25]
	if hex.EncodeToString(amt) != "000000000100" || hex.EncodeToString(cur) != "0156" {
		t.Fatalf("test PDOL layout: %x %x", amt, cur)
	}
	dyn, err := checkSDAD(t, ch.icc, sdad.Value, un, amt, cur, d69)
	if err != nil {
		t.Fatalf("fDDA 01: %v", err)
	}
	if !bytes.Equal(dyn, append([]byte{2}, atc.Value...)) || len(d69) != 7 || d69[0] != 0x01 {
		t.Errorf("fDDA dynamic data % X, 9F69 % X", dyn, d69)
	}
	if _, err := checkSDAD(t, ch.icc, sdad.Value, un); err == nil {
		t.Error("an fDDA 01 signature verifies as fDDA 00")
	}
	if _, s := send(t, r.card, "80AE4000", cdol1Data); s != 0x6985 {
		t.Errorf("GENERATE AC: %04X, want 6985", s)
	}

	// fDDA 00 (TTQ byte 4 bit 8 clear): over the unpredictable number
	// alone, no 9F69.
	r = readCard(t, "qpboc", "26000000")
	kids = gpoObjs(r)
	sdad, _ = emv.Find(kids, 0x9F4B)
	atc, _ = emv.Find(kids, 0x9F36)
	if _, has := r.objs[0x9F69]; has {
		t.Error("9F69 in the records of an fDDA 00 transaction")
	}
	dyn, err = checkSDAD(t, ch.icc, sdad.Value, r.pdolDat[len(r.pdolDat)-4:])
	if err != nil {
		t.Fatalf("fDDA 00: %v", err)
	}
	if !bytes.Equal(dyn, append([]byte{2}, atc.Value...)) {
		t.Errorf("fDDA 00 dynamic data % X", dyn)
	}

	// Online cryptogram required: ARQC, no signature.
	r = readCard(t, "qpboc", "26800000")
	kids = gpoObjs(r)
	cid, _ = emv.Find(kids, 0x9F27)
	if _, has := emv.Find(kids, 0x9F4B); has || cid.Value[0] != 0x80 {
		t.Errorf("online: CID %02X, 9F4B present %v", cid.Value[0], has)
	}
	checkHost(r, kids)
	if _, s := send(t, r.card, "80AE8000", cdol1Data); s != 0x6985 {
		t.Errorf("GENERATE AC after an ARQC: %04X, want 6985", s)
	}

	// A card not allowed offline, at an offline-only reader: AAC.
	c, err := cardsim.Open(odaProfile("qpboc"), func(p *cardsim.Profile) { p.ODA.Offline = false })
	if err != nil {
		t.Fatal(err)
	}
	aid, _ := hex.DecodeString("A000000333010101")
	send(t, c, "00A40400", aid)
	pd := defaultPDOLData("28000000")
	resp, s := send(t, c, "80A80000", append([]byte{0x83, byte(len(pd))}, pd...))
	o, _ := emv.DecodeTLV(resp)
	if cid, _ := emv.Find(o[0].Children, 0x9F27); s != 0x9000 || cid.Value[0] != 0x00 {
		t.Errorf("offline-only reader: %04X CID % X", s, cid.Value)
	}
	// A reader without qPBOC gets no cryptogram.
	send(t, c, "00A40400", aid)
	pd = defaultPDOLData("80000000")
	if _, s := send(t, c, "80A80000", append([]byte{0x83, byte(len(pd))}, pd...)); s != 0x6985 {
		t.Errorf("no qPBOC in the TTQ: %04X", s)
	}
}

// TestBrokenCardsAreBrokenAsStated: each broken card fails in exactly one
// place and is sound everywhere else.
func TestBrokenCardsAreBrokenAsStated(t *testing.T) {
	needOpenSSL(t)
	t.Run("bad-icc-cert", func(t *testing.T) {
		r := readCard(t, "bad-icc-cert", "26000000")
		ch, err := recoverIssuer(t, r, 0x81)
		if err != nil {
			t.Fatal(err)
		}
		if err := ch.recoverICC(t, r); err == nil {
			t.Fatal("the ICC certificate verifies")
		}
		// Exactly one byte differs from a sound certificate.
		r.objs[0x9F46][cardsim.ICCCertFlipOffset] ^= 0xFF
		if err := ch.recoverICC(t, r); err != nil {
			t.Fatalf("with the byte restored: %v", err)
		}
	})
	t.Run("expired-issuer-cert", func(t *testing.T) {
		r := readCard(t, "expired-issuer-cert", "26000000")
		ch := fullChain(t, r)
		if exp := hex.EncodeToString(ch.issuerRec[6:8]); exp != "1220" {
			t.Fatalf("issuer certificate expiry %s", exp)
		}
		sound := fullChain(t, readCard(t, "dda", "26000000"))
		if exp := hex.EncodeToString(sound.issuerRec[6:8]); exp != "1249" {
			t.Fatalf("sound issuer certificate expiry %s", exp)
		}
	})
	t.Run("wrong-capk-index", func(t *testing.T) {
		r := readCard(t, "wrong-capk-index", "26000000")
		if !bytes.Equal(r.objs[0x8F], []byte{0x99}) {
			t.Fatalf("8F % X", r.objs[0x8F])
		}
		if _, ok := capk(t, 0x99); ok {
			t.Fatal("hostsim serves CA index 99")
		}
		ch, err := recoverIssuer(t, r, 0x81) // the key that did sign it
		if err != nil {
			t.Fatal(err)
		}
		if err := ch.recoverICC(t, r); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("revoked-issuer-cert", func(t *testing.T) {
		b, err := os.ReadFile(filepath.Join(root, "agent/sim/testca/revoked.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		var crl struct {
			Revoked []struct{ RID, Index, Serial string } `yaml:"revoked"`
		}
		if err := yaml.Unmarshal(b, &crl); err != nil || len(crl.Revoked) == 0 {
			t.Fatalf("revoked.yaml: %v", err)
		}
		listed := func(ch *chain, idx byte) bool {
			for _, e := range crl.Revoked {
				if strings.EqualFold(e.RID, "A000000333") && strings.EqualFold(e.Index, fmt.Sprintf("%02X", idx)) &&
					strings.EqualFold(e.Serial, hex.EncodeToString(ch.issuerRec[8:11])) {
					return true
				}
			}
			return false
		}
		r := readCard(t, "revoked-issuer-cert", "26000000")
		if ch := fullChain(t, r); !listed(ch, 0x81) {
			t.Fatalf("serial %X is not listed", ch.issuerRec[8:11])
		}
		for _, sound := range []string{"sda", "dda", "cda", "qpboc"} {
			ch, err := recoverIssuer(t, readCard(t, sound, "26000000"), 0x81)
			if err != nil {
				t.Fatal(err)
			}
			if listed(ch, 0x81) {
				t.Errorf("%s's issuer certificate is revoked", sound)
			}
		}
	})
	t.Run("dda-bad-signature", func(t *testing.T) {
		r := readCard(t, "dda-bad-signature", "26000000")
		ch := fullChain(t, r)
		un := []byte{9, 8, 7, 6}
		resp, s := send(t, r.card, "00880000", un)
		if s != 0x9000 {
			t.Fatalf("INTERNAL AUTHENTICATE %04X", s)
		}
		o, _ := emv.DecodeTLV(resp)
		if _, err := checkSDAD(t, ch.icc, o[0].Value, un); err == nil {
			t.Fatal("the SDAD verifies with the certified key")
		}
		other, err := cardsim.LoadRSAKey(filepath.Join(root, cardsim.OtherICCKeyFile))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := checkSDAD(t, &other.PublicKey, o[0].Value, un); err != nil {
			t.Fatalf("not signed by the other key either: %v", err)
		}
	})
}

// TestCommittedCertsUpToDate: the committed certificate files are what the
// generator makes from the committed keys and the profiles now — a profile
// whose records changed without a mkcerts run fails here.
func TestCommittedCertsUpToDate(t *testing.T) {
	for _, s := range cardsim.CertSpecs {
		path, out, err := cardsim.MakeCerts(root, s)
		if err != nil {
			t.Fatal(err)
		}
		old, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(old, out) {
			t.Errorf("%s is stale: go run ./agent/sim/cardsim/cmd/mkcerts", path)
		}
	}
}
