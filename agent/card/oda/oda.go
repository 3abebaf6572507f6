// Package oda is the terminal's half of EMV offline data authentication
// (EMV 4.3 Book 2, "Security and Key Management", sections 5 and 6): it
// recovers the issuer public key from the issuer public key certificate with
// the certification authority public key (CAPK) that the IC public key
// download stored, recovers the ICC public key from the ICC public key
// certificate with the issuer key, and verifies what those keys signed: the
// signed static application data of SDA, the signed dynamic application data
// of DDA (the INTERNAL AUTHENTICATE answer), of CDA (inside the GENERATE AC
// answer) and of qPBOC/qVSDC fDDA.
//
// The package does RSA "recovery" only — raw modular exponentiation with a
// public key, then the Book 2 checks on the recovered bytes (header, trailer,
// format, SHA-1 hash, lengths, dates, PAN, revocation). It sends no command
// to a card and chooses no method: the kernel picks CDA, DDA or SDA from the
// AIP and the terminal capabilities, gathers the data objects, calls these
// functions and maps the sentinel errors to TVR bits. All inputs are public
// data read from the card, so nothing here needs to be constant-time; a PAN
// is an input, never part of an error string.
//
// # Recovered layouts (Book 2, the tables a reader checks offsets against)
//
// A recovered block is always as long as the modulus of the key that
// recovered it (N bytes) and has the same frame: byte 0 the header 6A, byte 1
// the format, the last byte the trailer BC, and the 20 bytes before the
// trailer the SHA-1 hash. The hash covers the recovered bytes from the format
// to the last byte before the hash, followed by data that is not in the
// block (remainder, exponent, static or dynamic data).
//
// Issuer public key certificate, tag 90, recovered with the CAPK (Table 6,
// N = N_CA):
//
//	0       header 6A
//	1       format 02
//	2..5    issuer identifier: leftmost 3-8 PAN digits, F padded
//	6..7    certificate expiration date MMYY
//	8..10   certificate serial number
//	11      hash algorithm indicator (01 SHA-1)
//	12      issuer public key algorithm indicator (01 RSA)
//	13      issuer public key length N_I
//	14      issuer public key exponent length
//	15..    issuer public key, or its leftmost N_CA-36 bytes (padded with BB
//	        when N_I < N_CA-36); the rest is the remainder, tag 92
//	N-21..  hash over bytes 1..N-22 || remainder 92 || exponent 9F32
//	N-1     trailer BC
//
// ICC public key certificate, tag 9F46, recovered with the issuer key
// (Table 14, N = N_I):
//
//	0       header 6A
//	1       format 04
//	2..11   application PAN, F padded
//	12..13  certificate expiration date MMYY
//	14..16  certificate serial number
//	17      hash algorithm indicator (01 SHA-1)
//	18      ICC public key algorithm indicator (01 RSA)
//	19      ICC public key length N_IC
//	20      ICC public key exponent length
//	21..    ICC public key, or its leftmost N_I-42 bytes (padded with BB);
//	        the rest is the remainder, tag 9F48
//	N-21..  hash over bytes 1..N-22 || remainder 9F48 || exponent 9F47 ||
//	        static data to be authenticated
//	N-1     trailer BC
//
// Signed static application data, tag 93, recovered with the issuer key
// (Table 7, N = N_I):
//
//	0       header 6A
//	1       format 03
//	2       hash algorithm indicator (01 SHA-1)
//	3..4    data authentication code (9F45)
//	5..     pad pattern BB, N_I-26 bytes
//	N-21..  hash over bytes 1..N-22 || static data to be authenticated
//	N-1     trailer BC
//
// Signed dynamic application data, tag 9F4B, recovered with the ICC key
// (Table 17, N = N_IC):
//
//	0       header 6A
//	1       format 05
//	2       hash algorithm indicator (01 SHA-1)
//	3       ICC dynamic data length L_DD
//	4..     ICC dynamic data, L_DD bytes, then pad pattern BB
//	N-21..  hash over bytes 1..N-22 || terminal dynamic data
//	N-1     trailer BC
//
// The ICC dynamic data starts with the ICC dynamic number's length (2-8)
// and the number (9F4C). For CDA (Table 19 with the dynamic data of Table
// 22) the number is followed by the cryptogram information data (9F27, 1
// byte), the application cryptogram (9F26, 8 bytes) and the transaction
// data hash code (20 bytes), and the terminal dynamic data is the
// unpredictable number 9F37.
//
// # Errors
//
// Every failure wraps exactly one of the certificate or method sentinels
// (ErrNoCAPK, ErrIssuerCertificate, ErrICCCertificate, ErrSDA, ErrDDA,
// ErrCDA, and ErrStaticData of the StaticData helper) and, when it is the
// reason, ErrExpired, ErrRevoked or ErrMissingData as well, so that
// errors.Is finds both: the kernel sets "SDA failed", "DDA failed" or "CDA
// failed" by the method it ran, and "ICC data missing" on ErrMissingData
// (Book 3 §10.3).
//
// StaticData and CDATransactionData build the hashed inputs from what the
// card returned (records per AFL and the 9F4A list; the GENERATE AC answer's
// data objects), so that a kernel need not repeat Book 3's rules.
package oda

import (
	"bytes"
	"crypto/sha1"
	"errors"
	"fmt"
	"math/big"
)

// PublicKey is an RSA public key recovered from a certificate (or a CAPK).
type PublicKey struct{ Modulus, Exponent []byte }

// Revocation lists revoked issuer certificates: RID, CA key index,
// certificate serial (3 bytes), as the EMV CA revocation list names them.
type Revocation struct {
	RID    []byte
	Index  byte
	Serial []byte
}

// Errors (sentinels; the kernel maps them to TVR bits; details are wrapped
// with %w).
var (
	// ErrNoCAPK: no CA public key for the card's RID and index, or the one
	// there is expired or unusable.
	ErrNoCAPK = errors.New("oda: no usable CA public key")
	// ErrIssuerCertificate: the issuer public key certificate (90, 92,
	// 9F32) does not verify.
	ErrIssuerCertificate = errors.New("oda: issuer public key certificate invalid")
	// ErrICCCertificate: the ICC public key certificate (9F46, 9F48, 9F47)
	// does not verify.
	ErrICCCertificate = errors.New("oda: ICC public key certificate invalid")
	// ErrExpired: a certificate (or the CAPK) is past its expiration date.
	ErrExpired = errors.New("oda: expired")
	// ErrRevoked: the issuer certificate is on the revocation list.
	ErrRevoked = errors.New("oda: issuer certificate revoked")
	// ErrSDA: the signed static application data (93) does not verify.
	ErrSDA = errors.New("oda: signed static application data invalid")
	// ErrDDA: the signed dynamic application data (9F4B) of DDA or fDDA
	// does not verify.
	ErrDDA = errors.New("oda: signed dynamic application data invalid")
	// ErrCDA: the signed dynamic application data in the GENERATE AC
	// answer does not verify, or does not match the answer.
	ErrCDA = errors.New("oda: combined DDA/application cryptogram invalid")
	// ErrMissingData: a data object the method needs was not given (ICC
	// data missing, TVR byte 1 bit 6).
	ErrMissingData = errors.New("oda: ICC data missing")
)

// Book 2 constants.
const (
	header  = 0x6A
	trailer = 0xBC

	formatIssuer  = 0x02 // Table 6
	formatSSAD    = 0x03 // Table 7
	formatICC     = 0x04 // Table 14
	formatDynamic = 0x05 // Table 17 (DDA, fDDA) and Table 19 (CDA)

	hashSHA1 = 0x01 // Annex B3, the only hash algorithm Book 2 defines
	algoRSA  = 0x01 // Annex B2, RSA with the public exponent 3 or 2^16+1

	hashLen = sha1.Size

	// maxModulus is 1984 bits, the largest key Book 2 (Annex A2.1 and
	// sections 5.1, 6.1) allows at any level: N_IC <= N_I <= N_CA <= 248.
	maxModulus = 248
)

// failf wraps sentinel with a detail that names what was wrong, never a
// value read from the card; failWith adds a second sentinel, the reason
// (ErrExpired, ErrRevoked, ErrMissingData).
func failf(sentinel error, format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{sentinel}, args...)...)
}

func failWith(sentinel, reason error, format string, args ...any) error {
	return fmt.Errorf("%w: %w: "+format, append([]any{sentinel, reason}, args...)...)
}

// checkKey refuses a key recovery cannot use: a modulus that is empty, too
// long, or even (RSA moduli are odd, and an even one is garbage from a bad
// certificate), an exponent other than 3 or 2^16+1 (Book 2 Annex B2.1).
func checkKey(k PublicKey) error {
	switch {
	case len(k.Modulus) == 0 || len(k.Exponent) == 0:
		return errors.New("key incomplete")
	case len(k.Modulus) > maxModulus:
		return fmt.Errorf("modulus of %d bytes, more than %d", len(k.Modulus), maxModulus)
	case k.Modulus[0] == 0:
		// The key length is the modulus length: a leading zero byte
		// says the length and the value disagree.
		return errors.New("modulus has a leading zero byte")
	case k.Modulus[len(k.Modulus)-1]&1 == 0:
		return errors.New("modulus is even")
	}
	e := new(big.Int).SetBytes(k.Exponent)
	if len(k.Exponent) > 3 || !(e.Cmp(big.NewInt(3)) == 0 || e.Cmp(big.NewInt(65537)) == 0) {
		return errors.New("exponent is neither 3 nor 65537")
	}
	return nil
}

// rsaRecover is the RSA public key operation: sig^e mod n, as many bytes as the
// modulus. The input must be exactly that long and, as an integer, less than
// the modulus (else it is no signature of this key).
func rsaRecover(k PublicKey, sig []byte) ([]byte, error) {
	if err := checkKey(k); err != nil {
		return nil, err
	}
	if len(sig) != len(k.Modulus) {
		return nil, fmt.Errorf("%d bytes for a key of %d", len(sig), len(k.Modulus))
	}
	n := new(big.Int).SetBytes(k.Modulus)
	s := new(big.Int).SetBytes(sig)
	if s.Cmp(n) >= 0 {
		return nil, errors.New("not less than the modulus")
	}
	m := s.Exp(s, new(big.Int).SetBytes(k.Exponent), n)
	return m.FillBytes(make([]byte, len(k.Modulus))), nil
}

// frame checks what every recovered block shares: header, format, trailer,
// and that the block is long enough to hold min bytes before the hash.
func frame(b []byte, format byte, min int) error {
	if len(b) < min+hashLen+1 {
		return fmt.Errorf("%d bytes, too short for format %02X", len(b), format)
	}
	if b[len(b)-1] != trailer {
		return errors.New("recovered trailer is not BC")
	}
	if b[0] != header {
		return errors.New("recovered header is not 6A")
	}
	if b[1] != format {
		return fmt.Errorf("recovered format %02X, want %02X", b[1], format)
	}
	return nil
}

// checkHash compares the hash in block b (the 20 bytes before the trailer)
// with SHA-1 over b's format..last byte before the hash, then extra.
func checkHash(b []byte, extra ...[]byte) error {
	h := sha1.New()
	h.Write(b[1 : len(b)-1-hashLen])
	for _, e := range extra {
		h.Write(e)
	}
	if !bytes.Equal(h.Sum(nil), b[len(b)-1-hashLen:len(b)-1]) {
		return errors.New("hash mismatch")
	}
	return nil
}

func clone(b []byte) []byte { return append([]byte(nil), b...) }
