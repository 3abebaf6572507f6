package oda

import (
	"bytes"
	"encoding/hex"
	"errors"
	"strings"
	"time"

	"github.com/posagent/posagent/provisioning"
)

// RecoverIssuerKey recovers and checks the issuer public key (Book 2 §5.3,
// Table 6; the same steps §6.3, Table 13): issuer PK certificate 90,
// remainder 92, exponent 9F32; pan (digits) for the issuer identifier
// (leftmost 3-8 digits, F padded) check; now for the expiry (MMYY, valid
// through the end of that month); revoked checked by (ca.RID, ca.Index,
// serial). Header 6A, format 02, trailer BC, hash algorithm 01 SHA-1 over
// format..exponent, issuer PK algorithm 01.
//
// ca is the key the card's RID and 8F name (FindCAPK picks it and refuses an
// expired one; this does not look at ca.Expiry). The certificate must be as
// long as ca's modulus; the remainder must be given exactly when the issuer
// key is longer than the N_CA-36 bytes the certificate holds.
func RecoverIssuerKey(ca provisioning.CAPK, cert, remainder, exponent []byte, pan string, now time.Time, revoked []Revocation) (PublicKey, error) {
	bad := func(format string, args ...any) error { return failf(ErrIssuerCertificate, format, args...) }
	caKey := PublicKey{Modulus: ca.Modulus, Exponent: ca.Exponent}
	if err := checkKey(caKey); err != nil {
		return PublicKey{}, failf(ErrNoCAPK, "CA key %X/%02X: %v", ca.RID, ca.Index, err)
	}
	switch {
	case len(cert) == 0:
		return PublicKey{}, failWith(ErrIssuerCertificate, ErrMissingData, "no certificate (90)")
	case len(exponent) == 0:
		return PublicKey{}, failWith(ErrIssuerCertificate, ErrMissingData, "no exponent (9F32)")
	case len(cert) != len(ca.Modulus):
		return PublicKey{}, bad("certificate of %d bytes for a CA key of %d", len(cert), len(ca.Modulus))
	}
	b, err := rsaRecover(caKey, cert)
	if err != nil {
		return PublicKey{}, bad("%v", err)
	}
	return issuerKey(b, ca, remainder, exponent, pan, now, revoked)
}

// issuerKey is RecoverIssuerKey after the RSA operation: the checks of
// §5.3 steps 2 to 12 on the recovered certificate b.
func issuerKey(b []byte, ca provisioning.CAPK, remainder, exponent []byte, pan string, now time.Time, revoked []Revocation) (PublicKey, error) {
	bad := func(format string, args ...any) error { return failf(ErrIssuerCertificate, format, args...) }
	const fixed = 15 // header .. exponent length
	if err := frame(b, formatIssuer, fixed); err != nil {
		return PublicKey{}, bad("%v", err)
	}
	key, err := keyFields(b, fixed, remainder, exponent)
	if errors.Is(err, errNoRemainder) {
		return PublicKey{}, failWith(ErrIssuerCertificate, ErrMissingData, "%v", err)
	}
	if err != nil {
		return PublicKey{}, bad("%v", err)
	}
	if err := checkHash(b, remainder, exponent); err != nil {
		return PublicKey{}, bad("%v", err)
	}
	if !issuerIDMatches(b[2:6], pan) {
		return PublicKey{}, bad("issuer identifier does not match the PAN")
	}
	if err := checkExpiry(b[6:8], now); err != nil {
		if errors.Is(err, ErrExpired) {
			return PublicKey{}, failWith(ErrIssuerCertificate, ErrExpired, "issuer certificate")
		}
		return PublicKey{}, bad("%v", err)
	}
	serial := b[8:11]
	for _, r := range revoked {
		if bytes.Equal(r.RID, ca.RID) && r.Index == ca.Index && bytes.Equal(r.Serial, serial) {
			return PublicKey{}, failWith(ErrIssuerCertificate, ErrRevoked, "serial %X under %X/%02X", serial, ca.RID, ca.Index)
		}
	}
	if len(key.Modulus) > len(b) {
		// Book 2 §5.1: N_I <= N_CA.
		return PublicKey{}, bad("issuer key of %d bytes is longer than the CA key", len(key.Modulus))
	}
	if err := checkKey(key); err != nil {
		return PublicKey{}, bad("issuer key: %v", err)
	}
	return key, nil
}

// RecoverICCKey recovers and checks the ICC public key (Book 2 §6.4, Table
// 14): ICC PK certificate 9F46, remainder 9F48, exponent 9F47; staticData
// is the static data to be authenticated (records per AFL + the 9F4A-listed
// values, i.e. AIP), included in the hash; pan must equal the certificate's
// application PAN (F padded). Format 04.
func RecoverICCKey(issuer PublicKey, cert, remainder, exponent, staticData []byte, pan string, now time.Time) (PublicKey, error) {
	bad := func(format string, args ...any) error { return failf(ErrICCCertificate, format, args...) }
	switch {
	case len(cert) == 0:
		return PublicKey{}, failWith(ErrICCCertificate, ErrMissingData, "no certificate (9F46)")
	case len(exponent) == 0:
		return PublicKey{}, failWith(ErrICCCertificate, ErrMissingData, "no exponent (9F47)")
	case len(cert) != len(issuer.Modulus):
		return PublicKey{}, bad("certificate of %d bytes for an issuer key of %d", len(cert), len(issuer.Modulus))
	}
	b, err := rsaRecover(issuer, cert)
	if err != nil {
		return PublicKey{}, bad("%v", err)
	}
	return iccKey(b, remainder, exponent, staticData, pan, now)
}

// iccKey is RecoverICCKey after the RSA operation: the checks of §6.4
// steps 2 to 10 on the recovered certificate b.
func iccKey(b, remainder, exponent, staticData []byte, pan string, now time.Time) (PublicKey, error) {
	bad := func(format string, args ...any) error { return failf(ErrICCCertificate, format, args...) }
	const fixed = 21 // header .. exponent length
	if err := frame(b, formatICC, fixed); err != nil {
		return PublicKey{}, bad("%v", err)
	}
	key, err := keyFields(b, fixed, remainder, exponent)
	if errors.Is(err, errNoRemainder) {
		return PublicKey{}, failWith(ErrICCCertificate, ErrMissingData, "%v", err)
	}
	if err != nil {
		return PublicKey{}, bad("%v", err)
	}
	if err := checkHash(b, remainder, exponent, staticData); err != nil {
		return PublicKey{}, bad("%v", err)
	}
	if !panMatches(b[2:12], pan) {
		return PublicKey{}, bad("application PAN does not match the card's")
	}
	if err := checkExpiry(b[12:14], now); err != nil {
		if errors.Is(err, ErrExpired) {
			return PublicKey{}, failWith(ErrICCCertificate, ErrExpired, "ICC certificate")
		}
		return PublicKey{}, bad("%v", err)
	}
	if len(key.Modulus) > len(b) {
		// Book 2 §6.1: N_IC <= N_I.
		return PublicKey{}, bad("ICC key of %d bytes is longer than the issuer key", len(key.Modulus))
	}
	if err := checkKey(key); err != nil {
		return PublicKey{}, bad("ICC key: %v", err)
	}
	return key, nil
}

// errNoRemainder is keyFields' missing remainder: ICC data missing, not a
// bad certificate.
var errNoRemainder = errors.New("no remainder for a key longer than the certificate holds")

// keyFields reads the key a certificate carries: b[fixed-2] is its length,
// b[fixed-1] its exponent's, and from b[fixed] up to the hash the key or its
// leftmost digits, the rest in remainder. The algorithm indicators sit just
// before the lengths.
func keyFields(b []byte, fixed int, remainder, exponent []byte) (PublicKey, error) {
	if b[fixed-4] != hashSHA1 {
		return PublicKey{}, errors.New("hash algorithm is not SHA-1")
	}
	if b[fixed-3] != algoRSA {
		return PublicKey{}, errors.New("public key algorithm is not RSA")
	}
	n, elen := int(b[fixed-2]), int(b[fixed-1])
	if elen != len(exponent) {
		return PublicKey{}, errors.New("exponent length differs from the certificate's")
	}
	if n == 0 {
		return PublicKey{}, errors.New("public key length 0")
	}
	room := len(b) - fixed - hashLen - 1
	mod := make([]byte, 0, n)
	if n <= room {
		if len(remainder) != 0 {
			return PublicKey{}, errors.New("remainder given for a key that fits in the certificate")
		}
		mod = append(mod, b[fixed:fixed+n]...)
	} else {
		switch {
		case len(remainder) == 0:
			return PublicKey{}, errNoRemainder
		case len(remainder) != n-room:
			return PublicKey{}, errors.New("remainder length does not complete the key")
		}
		mod = append(append(mod, b[fixed:fixed+room]...), remainder...)
	}
	return PublicKey{Modulus: mod, Exponent: clone(exponent)}, nil
}

// issuerIDMatches checks Book 2 §5.3 step 8: the issuer identifier is the
// leftmost 3 to 8 PAN digits, padded on the right with F.
func issuerIDMatches(id []byte, pan string) bool {
	digits := strings.TrimRight(strings.ToUpper(hex.EncodeToString(id)), "F")
	if len(digits) < 3 || !isDigits(digits) {
		return false
	}
	p := cleanPAN(pan)
	return isDigits(p) && strings.HasPrefix(p, digits)
}

// panMatches checks Book 2 §6.4 step 8: the certificate's application PAN
// (up to 19 digits, F padded to 10 bytes) is the card's PAN.
func panMatches(field []byte, pan string) bool {
	digits := strings.TrimRight(strings.ToUpper(hex.EncodeToString(field)), "F")
	p := cleanPAN(pan)
	return len(p) > 0 && isDigits(digits) && digits == p
}

// cleanPAN drops the F padding a PAN read from 5A in hex carries.
func cleanPAN(pan string) string { return strings.TrimRight(strings.ToUpper(pan), "F") }

func isDigits(s string) bool {
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// checkExpiry reads a certificate expiration date, MMYY in BCD, and tells
// ErrExpired once now is past the end of that month (Book 2 §5.3 step 9:
// "the certificate expiration date is earlier than today's date" fails; the
// date has no day, so the whole month is valid). Years are 20YY: Book 2
// gives two digits, and no certificate in use expires in the 1900s.
func checkExpiry(mmyy []byte, now time.Time) error {
	s := hex.EncodeToString(mmyy)
	if len(s) != 4 || !isDigits(s) {
		return errors.New("expiration date is not BCD")
	}
	month := int(s[0]-'0')*10 + int(s[1]-'0')
	year := 2000 + int(s[2]-'0')*10 + int(s[3]-'0')
	if month < 1 || month > 12 {
		return errors.New("expiration date has no valid month")
	}
	if now.Year()*12+int(now.Month()) > year*12+month {
		return ErrExpired
	}
	return nil
}
