package cardsim

import (
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"

	"gopkg.in/yaml.v3"
)

// The card's half of offline data authentication, written from EMV 4.x
// Book 2 (Security and Key Management) and not from any terminal's
// verifier:
//   - §5.1/Annex A2.1: every signature is "digital signature with message
//     recovery" per ISO/IEC 9796-2 with the EMV framing — a recovered
//     message is header 6A || data || SHA-1 hash (20) || trailer BC, the
//     same length as the signer's modulus, signed with raw RSA (no other
//     padding): S = M^d mod n.
//   - §5.3 Table 6: issuer public key certificate (90), format 02.
//   - §5.4 Table 7: signed static application data (93), format 03.
//   - §6.4 Table 14: ICC public key certificate (9F46), format 04; its hash
//     covers the static data to be authenticated (Book 3 §10.3).
//   - §6.5.1 Table 17: signed dynamic application data (9F4B), format 05.
//   - §6.6.1 Tables 18/19: the CDA variant of format 05.
// Public cross-checks: the field offsets match what openemv/libopenemv's
// emv_pki.c (RfidResearchGroup/proxmark3 client/src/emv/emv_pki.c)
// recovers: issuer identifier 4 bytes and ICC PAN 10 bytes, hash over the
// recovered data from the format byte up to the hash, then remainder,
// exponent and (for the ICC certificate) the static data.

// ErrPKI is certificate material that is missing or does not fit.
var ErrPKI = errors.New("cardsim: ODA certificate material")

// Hash and public key algorithm indicators (Book 2 Annex B2/B3).
const (
	hashSHA1 = 0x01
	pkRSA    = 0x01
)

// sign produces the EMV signature of the recovered message m (len(m) must
// equal the modulus length, m[0] = 6A so that m < n).
func sign(k *rsa.PrivateKey, m []byte) ([]byte, error) {
	n := (k.N.BitLen() + 7) / 8
	if len(m) != n {
		return nil, fmt.Errorf("%w: message of %d bytes for a %d-byte key", ErrPKI, len(m), n)
	}
	x := new(big.Int).SetBytes(m)
	if x.Cmp(k.N) >= 0 {
		return nil, fmt.Errorf("%w: message not below the modulus", ErrPKI)
	}
	return new(big.Int).Exp(x, k.D, k.N).FillBytes(make([]byte, n)), nil
}

// frame builds 6A || body || SHA-1(body || extra...) || BC. body starts with
// the format byte; the hash covers exactly body and the extra data, which
// is what Book 2 lists in each "hash input" step.
func frame(body []byte, extra ...[]byte) []byte {
	h := sha1.New()
	h.Write(body)
	for _, e := range extra {
		h.Write(e)
	}
	return cat([]byte{0x6A}, body, h.Sum(nil), []byte{0xBC})
}

func modLen(k *rsa.PublicKey) int { return (k.N.BitLen() + 7) / 8 }

// expBytes is the public exponent as the card stores it (9F32, 9F47): 1
// byte for 3, 3 bytes for 65537 (Book 2: exponent 3 or 2^16+1).
func expBytes(e int) []byte {
	if e < 256 {
		return []byte{byte(e)}
	}
	return []byte{byte(e >> 16), byte(e >> 8), byte(e)}
}

// splitModulus cuts a modulus into the part that fits in a certificate of
// room bytes (padded with BB when shorter, Book 2 Table 6 note) and the
// remainder (92, 9F48) that does not.
func splitModulus(mod []byte, room int) (field, rem []byte) {
	if len(mod) <= room {
		field = append([]byte(nil), mod...)
		for len(field) < room {
			field = append(field, 0xBB)
		}
		return field, nil
	}
	return append([]byte(nil), mod[:room]...), append([]byte(nil), mod[room:]...)
}

// CertPlan is what a certificate says besides the key it certifies.
type CertPlan struct {
	Expiry string // MMYY
	Serial []byte // 3 bytes, binary
}

// IssuerCertificate is the issuer public key certificate (90) signed by
// the CA key, with the issuer public key remainder (92) and exponent
// (9F32). Book 2 §5.3 Table 6: format 02, issuer identifier = the leftmost
// 3-8 PAN digits padded with F (we certify the 6-digit BIN), expiry MMYY,
// serial, hash and key algorithm 01, key length, exponent length, the
// leftmost NCA-36 bytes of the modulus; hash over those || remainder ||
// exponent.
func IssuerCertificate(ca *rsa.PrivateKey, issuer *rsa.PublicKey, pan string, plan CertPlan) (cert, rem, exp []byte, err error) {
	nca, ni := modLen(&ca.PublicKey), modLen(issuer)
	if ni > nca || len(plan.Serial) != 3 || len(plan.Expiry) != 4 || len(pan) < 6 {
		return nil, nil, nil, fmt.Errorf("%w: issuer certificate plan", ErrPKI)
	}
	id := bcdPadF(pan[:6] + "FF")
	expiry, _ := hex.DecodeString(plan.Expiry)
	exp = expBytes(issuer.E)
	field, rem := splitModulus(issuer.N.Bytes(), nca-36)
	body := cat([]byte{0x02}, id, expiry, plan.Serial, []byte{hashSHA1, pkRSA, byte(ni), byte(len(exp))}, field)
	cert, err = sign(ca, frame(body, rem, exp))
	return cert, rem, exp, err
}

// ICCCertificate is the ICC public key certificate (9F46) signed by the
// issuer key, with remainder (9F48) and exponent (9F47). Book 2 §6.4 Table
// 14: format 04, the application PAN (10 bytes, padded with F), expiry,
// serial, algorithms, lengths, the leftmost NI-42 bytes of the ICC modulus;
// hash over those || remainder || exponent || static data to be
// authenticated.
func ICCCertificate(issuer *rsa.PrivateKey, icc *rsa.PublicKey, pan string, plan CertPlan, static []byte) (cert, rem, exp []byte, err error) {
	ni, nic := modLen(&issuer.PublicKey), modLen(icc)
	if nic > ni || len(plan.Serial) != 3 || len(plan.Expiry) != 4 || len(pan) > 19 {
		return nil, nil, nil, fmt.Errorf("%w: ICC certificate plan", ErrPKI)
	}
	p := bcdPadF(pan)
	for len(p) < 10 {
		p = append(p, 0xFF)
	}
	expiry, _ := hex.DecodeString(plan.Expiry)
	exp = expBytes(icc.E)
	field, rem := splitModulus(icc.N.Bytes(), ni-42)
	body := cat([]byte{0x04}, p, expiry, plan.Serial, []byte{hashSHA1, pkRSA, byte(nic), byte(len(exp))}, field)
	cert, err = sign(issuer, frame(body, rem, exp, static))
	return cert, rem, exp, err
}

// SignedStaticData is 93: Book 2 §5.4 Table 7, format 03, hash algorithm,
// the 2-byte data authentication code, BB padding to NI-26 bytes; hash
// over those || the static data to be authenticated.
func SignedStaticData(issuer *rsa.PrivateKey, dac [2]byte, static []byte) ([]byte, error) {
	ni := modLen(&issuer.PublicKey)
	body := cat([]byte{0x03, hashSHA1}, dac[:], pad(ni-26))
	return sign(issuer, frame(body, static))
}

func pad(n int) []byte {
	b := make([]byte, max(n, 0))
	for i := range b {
		b[i] = 0xBB
	}
	return b
}

// SignDynamicData is 9F4B: Book 2 §6.5.1 Table 17 (and §6.6.1 Table 19 for
// CDA, whose ICC dynamic data is longer): format 05, hash algorithm, LDD,
// the ICC dynamic data, BB padding to NIC-LDD-25 bytes; hash over those ||
// the terminal's dynamic data (the DDOL data for DDA, the unpredictable
// number for CDA, 9F37||9F02||5F2A||9F69 for fDDA).
func SignDynamicData(icc *rsa.PrivateKey, dynamic, terminal []byte) ([]byte, error) {
	nic := modLen(&icc.PublicKey)
	if len(dynamic) > nic-25 {
		return nil, fmt.Errorf("%w: %d bytes of ICC dynamic data for a %d-byte key", ErrPKI, len(dynamic), nic)
	}
	body := cat([]byte{0x05, hashSHA1, byte(len(dynamic))}, dynamic, pad(nic-len(dynamic)-25))
	return sign(icc, frame(body, terminal))
}

// CertFile is a generated certificate set (testdata/pki/NAME.yaml): the
// values of 90, 92, 9F32, 9F46, 9F48, 9F47 and 93 in hex and the ICC private
// key file (relative to the certificate file) the card signs dynamic data
// with.
type CertFile struct {
	CAIndex         string `yaml:"ca_index"`
	IssuerCert      string `yaml:"issuer_cert"`
	IssuerRemainder string `yaml:"issuer_remainder,omitempty"`
	IssuerExponent  string `yaml:"issuer_exponent"`
	ICCCert         string `yaml:"icc_cert,omitempty"`
	ICCRemainder    string `yaml:"icc_remainder,omitempty"`
	ICCExponent     string `yaml:"icc_exponent,omitempty"`
	SSAD            string `yaml:"ssad,omitempty"`
	ICCKey          string `yaml:"icc_key,omitempty"`
}

// LoadRSAKey reads a PKCS#8 or PKCS#1 RSA private key PEM file (text before
// the PEM block, such as the TEST ONLY line, is skipped).
func LoadRSAKey(path string) (*rsa.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ParseRSAKey(b)
}

// ParseRSAKey decodes the first PEM block of b as an RSA private key.
func ParseRSAKey(b []byte) (*rsa.PrivateKey, error) {
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, fmt.Errorf("%w: no PEM block", ErrPKI)
	}
	if k, err := x509.ParsePKCS1PrivateKey(blk.Bytes); err == nil {
		return k, nil
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrPKI, err)
	}
	rk, ok := k.(*rsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%w: not an RSA key", ErrPKI)
	}
	return rk, nil
}

// odaData is what a card with ODA carries, loaded from its files.
type odaData struct {
	objects map[string][]byte // 8F 90 92 9F32 9F46 9F47 9F48 93 9F49 9F4A
	key     *rsa.PrivateKey   // signs 9F4B; nil for SDA-only cards
}

func (p *Profile) loadODA() (*odaData, error) {
	o := p.ODA
	if o == nil {
		return nil, nil
	}
	d := &odaData{objects: map[string][]byte{}}
	idx, _ := unhex(o.CAPKIndex)
	d.objects["8F"] = idx
	ddol, _ := unhex(o.DDOL)
	d.objects["9F49"] = ddol
	d.objects["9F4A"] = []byte{0x82}
	if o.Certs == "" {
		return d, nil // a profile the certificate generator has not reached yet
	}
	path := p.resolve(o.Certs)
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrPKI, err)
	}
	var f CertFile
	if err := yaml.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrPKI, path, err)
	}
	for tag, v := range map[string]string{"90": f.IssuerCert, "92": f.IssuerRemainder, "9F32": f.IssuerExponent,
		"9F46": f.ICCCert, "9F48": f.ICCRemainder, "9F47": f.ICCExponent, "93": f.SSAD} {
		if v == "" {
			continue
		}
		x, err := unhex(v)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %s is not hex", ErrPKI, path, tag)
		}
		d.objects[tag] = x
	}
	keyPath := o.SignKey
	if keyPath == "" && f.ICCKey != "" {
		keyPath = filepath.Join(filepath.Dir(path), f.ICCKey)
	} else if keyPath != "" {
		keyPath = p.resolve(keyPath)
	}
	if keyPath != "" && o.Method != ODASDA {
		if d.key, err = LoadRSAKey(keyPath); err != nil {
			return nil, err
		}
	}
	return d, nil
}

// resolve makes a profile's relative path relative to the profile file.
func (p *Profile) resolve(path string) string {
	if filepath.IsAbs(path) || p.dir == "" {
		return path
	}
	return filepath.Join(p.dir, path)
}

// StaticData is the static data to be authenticated of the card (EMV
// Book 3 §10.3): for each AFL entry, the first "records for offline data
// authentication" records in order — of SFI 1-10 the record's value
// without the 70 tag and length — then the value of each tag in the static
// data authentication tag list 9F4A (only 82, the AIP, is allowed there).
// The certificate generator and the card both call it, so the ICC
// certificate and 93 cover exactly what the card answers.
func (c *Card) StaticData() ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.p.ODA == nil {
		return nil, fmt.Errorf("%w: the profile has no oda section", ErrPKI)
	}
	saved := c.app
	c.app = 0
	defer func() { c.app = saved }()
	var out []byte
	for _, r := range c.sortedRecords() {
		if !r.ODA {
			continue
		}
		body := c.recordBody(r)
		out = append(out, body...)
	}
	return append(out, c.aipFor(0)...), nil
}

// recordBody is a record's value inside its 70 template.
func (c *Card) recordBody(r Record) []byte {
	var body []byte
	for _, t := range r.Tags {
		if v, ok := c.dataObject(t); ok {
			body = cat(body, tlv(strings.ToUpper(t), v))
		}
	}
	return body
}
