package oda

import (
	"bytes"
	"crypto/sha1"
	"errors"
	"fmt"
)

// VerifySDA verifies the signed static application data 93 with the issuer
// key (Book 2 §5.4, Table 7; format 03) over staticData, the static data to
// be authenticated, and returns the data authentication code (9F45), which
// the kernel keeps for the host.
func VerifySDA(issuer PublicKey, ssad, staticData []byte) (dac []byte, err error) {
	if len(ssad) == 0 {
		return nil, failWith(ErrSDA, ErrMissingData, "no signed static application data (93)")
	}
	if len(ssad) != len(issuer.Modulus) {
		return nil, failf(ErrSDA, "93 of %d bytes for an issuer key of %d", len(ssad), len(issuer.Modulus))
	}
	b, err := rsaRecover(issuer, ssad)
	if err != nil {
		return nil, failf(ErrSDA, "%v", err)
	}
	return sdaDAC(b, staticData)
}

// sdaDAC is VerifySDA after the RSA operation: the checks of §5.4 steps 2
// to 7 on the recovered data b.
func sdaDAC(b, staticData []byte) ([]byte, error) {
	const fixed = 5 // header, format, hash algorithm, DAC
	if err := frame(b, formatSSAD, fixed); err != nil {
		return nil, failf(ErrSDA, "%v", err)
	}
	if b[2] != hashSHA1 {
		return nil, failf(ErrSDA, "hash algorithm is not SHA-1")
	}
	if err := checkHash(b, staticData); err != nil {
		return nil, failf(ErrSDA, "%v", err)
	}
	return clone(b[3:5]), nil
}

// VerifyDDA verifies the signed dynamic application data 9F4B (Book 2
// §6.5.2, Table 17; format 05) that the card returned to INTERNAL
// AUTHENTICATE, over ddolData, the DDOL data the terminal sent in that
// command; it returns the ICC dynamic number (9F4C).
func VerifyDDA(icc PublicKey, sdad, ddolData []byte) (iccDynamicNumber []byte, err error) {
	dd, err := recoverDynamic(icc, sdad, ddolData)
	if err != nil {
		return nil, wrapDynamic(ErrDDA, err)
	}
	idn, _, err := splitIDN(dd)
	if err != nil {
		return nil, failf(ErrDDA, "%v", err)
	}
	return idn, nil
}

// VerifyFDDA verifies the signed dynamic application data 9F4B of fDDA, the
// contactless offline authentication of qPBOC (JR/T 0025.12, PBOC 3.0 part
// 12) and Visa's qVSDC: the frame and format are DDA's (Table 17), but
// there is no INTERNAL AUTHENTICATE (the card hands 9F4B over with the data
// of its GET PROCESSING OPTIONS answer and records), and the terminal
// dynamic data is fixed rather than a DDOL, by the fDDA version the card
// names in 9F69's first byte: for version 01, terminalData = 9F37
// (unpredictable number, 4) || 9F02 (amount authorised, 6) || 5F2A
// (transaction currency code, 2) || 9F69 (card authentication related
// data, as the card gave it) — the list public kernels hash, e.g.
// proxmark3's client/src/emv/emv_pki.c (emv_pki_recover_atc_ex, the qVSDC
// fDDA check of `emv reader`); for version 00, whose cards carry no 9F69,
// the unpredictable number alone (the PBOC write-up
// e-com-net.com/article/3810417.htm contrasts the two). The kernel builds
// it (agent/card/emv contactless.go). It returns the ICC dynamic number;
// a failure is ErrDDA (fDDA is the contactless DDA, and the kernel reports
// it as DDA failed).
func VerifyFDDA(icc PublicKey, sdad, terminalData []byte) (iccDynamicNumber []byte, err error) {
	return VerifyDDA(icc, sdad, terminalData)
}

// CDA is what a verified CDA signature holds besides the check itself
// (Book 2 Table 22).
type CDA struct {
	ICCDynamicNumber []byte // 9F4C
	CID              byte   // 9F27, equal to the one in the answer
	AC               []byte // 9F26, the application cryptogram
}

// VerifyCDA verifies CDA (Book 2 §6.6.2, Tables 19 and 22): 9F4B from the
// GENERATE AC response (format 05, ICC dynamic data = ICC dynamic number
// length+value, CID, AC, transaction data hash). un is the terminal's 9F37
// (the hashed "terminal dynamic data"); txnData = PDOL data || CDOL data ||
// the GENERATE AC response's TLV objects except 9F4B, in the order received;
// cid must match. Returns the AC.
func VerifyCDA(icc PublicKey, sdad, un []byte, cid byte, txnData []byte) (ac []byte, err error) {
	r, err := RecoverCDA(icc, sdad, un, cid, txnData)
	if err != nil {
		return nil, err
	}
	return r.AC, nil
}

// RecoverCDA is VerifyCDA returning everything the signature carries: the
// kernel keeps the ICC dynamic number too. For the second GENERATE AC,
// txnData is PDOL data || CDOL1 data || CDOL2 data || that answer's TLV
// objects except 9F4B (Book 2 §6.6.2 step 9). Every check of §6.6.2 is
// made (frame, hash over the dynamic data and un, CID, transaction data
// hash); the failure of any is ErrCDA.
func RecoverCDA(icc PublicKey, sdad, un []byte, cid byte, txnData []byte) (CDA, error) {
	if len(un) == 0 {
		return CDA{}, failWith(ErrCDA, ErrMissingData, "no unpredictable number (9F37)")
	}
	dd, err := recoverDynamic(icc, sdad, un)
	if err != nil {
		return CDA{}, wrapDynamic(ErrCDA, err)
	}
	idn, rest, err := splitIDN(dd)
	if err != nil {
		return CDA{}, failf(ErrCDA, "%v", err)
	}
	// CID, AC (8), transaction data hash code (20).
	if len(rest) < 1+8+hashLen {
		return CDA{}, failf(ErrCDA, "ICC dynamic data of %d bytes, too short for CDA", len(dd))
	}
	if rest[0] != cid {
		return CDA{}, failf(ErrCDA, "signed CID %02X differs from the answer's %02X", rest[0], cid)
	}
	h := sha1.Sum(txnData)
	if !bytes.Equal(h[:], rest[9:9+hashLen]) {
		return CDA{}, failf(ErrCDA, "transaction data hash mismatch")
	}
	return CDA{ICCDynamicNumber: idn, CID: rest[0], AC: clone(rest[1:9])}, nil
}

// errDynamicHash marks recoverDynamic's hash mismatch; errNoSDAD its
// missing input.
var (
	errDynamicHash = errors.New("hash mismatch")
	errNoSDAD      = errors.New("no signed dynamic application data (9F4B)")
)

// recoverDynamic recovers 9F4B with the ICC key and checks Table 17's frame
// and hash over the recovered data and tdd, the terminal dynamic data; it
// returns the ICC dynamic data.
func recoverDynamic(icc PublicKey, sdad, tdd []byte) ([]byte, error) {
	if len(sdad) == 0 {
		return nil, errNoSDAD
	}
	if len(sdad) != len(icc.Modulus) {
		return nil, fmt.Errorf("9F4B of %d bytes for an ICC key of %d", len(sdad), len(icc.Modulus))
	}
	b, err := rsaRecover(icc, sdad)
	if err != nil {
		return nil, err
	}
	return dynamicData(b, tdd)
}

// dynamicData is recoverDynamic after the RSA operation: Table 17's frame
// and hash on the recovered data b.
func dynamicData(b, tdd []byte) ([]byte, error) {
	const fixed = 4 // header, format, hash algorithm, L_DD
	if err := frame(b, formatDynamic, fixed); err != nil {
		return nil, err
	}
	if b[2] != hashSHA1 {
		return nil, errors.New("hash algorithm is not SHA-1")
	}
	ldd := int(b[3])
	if fixed+ldd > len(b)-hashLen-1 {
		return nil, fmt.Errorf("ICC dynamic data length %d does not fit", ldd)
	}
	if err := checkHash(b, tdd); err != nil {
		return nil, errDynamicHash
	}
	return clone(b[fixed : fixed+ldd]), nil
}

func wrapDynamic(sentinel, err error) error {
	if errors.Is(err, errNoSDAD) {
		return failWith(sentinel, ErrMissingData, "%v", err)
	}
	return failf(sentinel, "%v", err)
}

// splitIDN reads the ICC dynamic number at the start of the ICC dynamic
// data: a length byte (2 to 8, Book 2 Table 18/22) and the number; it
// returns the number and what follows it.
func splitIDN(dd []byte) (idn, rest []byte, err error) {
	if len(dd) == 0 {
		return nil, nil, errors.New("empty ICC dynamic data")
	}
	n := int(dd[0])
	if n < 2 || n > 8 || 1+n > len(dd) {
		return nil, nil, fmt.Errorf("ICC dynamic number length %d invalid", n)
	}
	return clone(dd[1 : 1+n]), dd[1+n:], nil
}
