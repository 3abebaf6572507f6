package oda_test

import (
	"bytes"
	"crypto/sha1"
	"testing"

	"github.com/posagent/posagent/agent/card/oda"
)

func TestVerifySDA(t *testing.T) {
	needOpenSSL(t)
	issuer := dataKey(t, "issuer-1024-e3")
	dac := []byte{0xDA, 0xC1}
	for _, tc := range []struct {
		name   string
		edit   func(*signedData)
		static []byte
		ssad   func([]byte) []byte
		want   []error
		detail string
	}{
		{name: "verifies"},
		{name: "static data altered", static: flipFirst(testStatic), want: []error{oda.ErrSDA}, detail: "hash mismatch"},
		{name: "AIP left out", static: testStatic[:len(testStatic)-2], want: []error{oda.ErrSDA}, detail: "hash mismatch"},
		{name: "hash", edit: func(s *signedData) { s.hashFix = flipFirst }, want: []error{oda.ErrSDA}, detail: "hash mismatch"},
		{name: "format of dynamic data", edit: func(s *signedData) { s.format = 0x05 }, want: []error{oda.ErrSDA}, detail: "format"},
		{name: "header", edit: func(s *signedData) { s.header = 0x4A }, want: []error{oda.ErrSDA}, detail: "header"},
		{name: "trailer", edit: func(s *signedData) { s.trailer = 0xB0 }, want: []error{oda.ErrSDA}, detail: "trailer"},
		{name: "hash algorithm", edit: func(s *signedData) { s.hashAlgo = 0x02 }, want: []error{oda.ErrSDA}, detail: "SHA-1"},
		{name: "no 93", ssad: func([]byte) []byte { return nil }, want: []error{oda.ErrSDA, oda.ErrMissingData}, detail: "93"},
		{name: "93 of the wrong length", ssad: func(b []byte) []byte { return b[:100] }, want: []error{oda.ErrSDA}, detail: "100 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := signedData{header: 0x6A, format: 0x03, hashAlgo: 1, trailer: 0xBC, body: dac, hashed: testStatic}
			if tc.edit != nil {
				tc.edit(&s)
			}
			ssad := issuer.sign(t, s.build(len(issuer.pub.Modulus)))
			if tc.ssad != nil {
				ssad = tc.ssad(ssad)
			}
			static := testStatic
			if tc.static != nil {
				static = tc.static
			}
			got, err := oda.VerifySDA(issuer.pub, ssad, static)
			wantErr(t, err, tc.want, tc.detail)
			if err == nil && !bytes.Equal(got, dac) {
				t.Errorf("DAC %X, want %X", got, dac)
			}
		})
	}
}

// dynamicBody is L_DD and the ICC dynamic data of DDA/fDDA: the ICC dynamic
// number's length and value.
func dynamicBody(idn []byte, more ...byte) []byte {
	dd := append(append([]byte{byte(len(idn))}, idn...), more...)
	return append([]byte{byte(len(dd))}, dd...)
}

func TestVerifyDDA(t *testing.T) {
	needOpenSSL(t)
	icc := dataKey(t, "icc-768-e3")
	idn := []byte{0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08}
	ddol := []byte{0x11, 0x22, 0x33, 0x44} // a DDOL of 9F37 04: the unpredictable number
	for _, tc := range []struct {
		name   string
		edit   func(*signedData)
		ddol   []byte
		want   []error
		detail string
	}{
		{name: "verifies"},
		{name: "2-byte dynamic number", edit: func(s *signedData) { s.body = dynamicBody(idn[:2]) }},
		{name: "other DDOL data (replayed signature)", ddol: []byte{0x11, 0x22, 0x33, 0x45}, want: []error{oda.ErrDDA}, detail: "hash mismatch"},
		{name: "format of static data", edit: func(s *signedData) { s.format = 0x03 }, want: []error{oda.ErrDDA}, detail: "format"},
		{name: "dynamic number of 9 bytes", edit: func(s *signedData) { s.body = dynamicBody(append(idn, 9)) },
			want: []error{oda.ErrDDA}, detail: "dynamic number length 9"},
		{name: "dynamic number of 1 byte", edit: func(s *signedData) { s.body = dynamicBody(idn[:1]) },
			want: []error{oda.ErrDDA}, detail: "dynamic number length 1"},
		{name: "dynamic data length past the hash", edit: func(s *signedData) { s.body = []byte{0xFF, 0x08} },
			want: []error{oda.ErrDDA}, detail: "does not fit"},
		{name: "hash", edit: func(s *signedData) { s.hashFix = flipFirst }, want: []error{oda.ErrDDA}, detail: "hash mismatch"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := signedData{header: 0x6A, format: 0x05, hashAlgo: 1, trailer: 0xBC, body: dynamicBody(idn), hashed: ddol}
			if tc.edit != nil {
				tc.edit(&s)
			}
			sdad := icc.sign(t, s.build(len(icc.pub.Modulus)))
			d := ddol
			if tc.ddol != nil {
				d = tc.ddol
			}
			got, err := oda.VerifyDDA(icc.pub, sdad, d)
			wantErr(t, err, tc.want, tc.detail)
			if err == nil && !bytes.Equal(got, s.body[2:]) {
				t.Errorf("ICC dynamic number %X, want %X", got, s.body[2:])
			}
		})
	}
	if _, err := oda.VerifyDDA(icc.pub, nil, ddol); err == nil {
		t.Error("no 9F4B verified")
	} else {
		wantErr(t, err, []error{oda.ErrDDA, oda.ErrMissingData}, "9F4B")
	}
}

func TestVerifyFDDA(t *testing.T) {
	needOpenSSL(t)
	icc := dataKey(t, "icc-640-e65537")
	atc := []byte{0x00, 0x2A}
	// 9F37 unpredictable number, 9F02 amount authorised (100.00), 5F2A
	// currency (156, CNY), 9F69 card authentication related data (fDDA
	// version 01, card unpredictable number, card transaction qualifiers).
	terminal := hx(t, "A1B2C3D4 000000010000 0156 01 0A0B0C0D 8000")
	sdad := icc.sign(t, signedData{header: 0x6A, format: 0x05, hashAlgo: 1, trailer: 0xBC,
		body: dynamicBody(atc), hashed: terminal}.build(len(icc.pub.Modulus)))

	got, err := oda.VerifyFDDA(icc.pub, sdad, terminal)
	if err != nil || !bytes.Equal(got, atc) {
		t.Fatalf("VerifyFDDA = %X, %v; want %X", got, err, atc)
	}
	other := bytes.Clone(terminal)
	other[9] = 0x01 // 1.00 more: the card signed another amount
	_, err = oda.VerifyFDDA(icc.pub, sdad, other)
	wantErr(t, err, []error{oda.ErrDDA}, "hash mismatch")
	_, err = oda.VerifyFDDA(icc.pub, sdad, terminal[:12]) // 9F69 left out
	wantErr(t, err, []error{oda.ErrDDA}, "hash mismatch")
}

func TestVerifyCDA(t *testing.T) {
	needOpenSSL(t)
	icc := dataKey(t, "icc-768-e3")
	idn := []byte{0xA1, 0xA2, 0xA3, 0xA4}
	const cid = 0x40 // TC
	ac := []byte{0xAC, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07}
	un := []byte{0x5E, 0xED, 0x12, 0x34}
	// PDOL data, CDOL1 data, then the GENERATE AC answer's TLVs but 9F4B:
	// 9F27 CID, 9F36 ATC, 9F10 issuer application data.
	txn := hx(t, "0156 000000010000 000000000000 0156 0000000000 0156 261203 00 5EED1234 "+
		"9F2701 40 9F3602 0007 9F1007 07010103A00000")
	body := func(c byte, a, hash []byte) []byte {
		return dynamicBody(idn, append(append([]byte{c}, a...), hash...)...)
	}
	h := sha1.Sum(txn)
	for _, tc := range []struct {
		name   string
		edit   func(*signedData)
		un     []byte
		cid    byte
		txn    []byte
		want   []error
		detail string
	}{
		{name: "verifies"},
		{name: "other unpredictable number", un: []byte{0x5E, 0xED, 0x12, 0x35}, want: []error{oda.ErrCDA}, detail: "hash mismatch"},
		{name: "CID of the answer differs", cid: 0x80, want: []error{oda.ErrCDA}, detail: "CID"},
		{name: "answer altered", txn: flipFirst(txn), want: []error{oda.ErrCDA}, detail: "transaction data hash"},
		{name: "answer cut short", txn: txn[:len(txn)-1], want: []error{oda.ErrCDA}, detail: "transaction data hash"},
		{name: "dynamic data without the hash code", edit: func(s *signedData) { s.body = body(cid, ac, nil) },
			want: []error{oda.ErrCDA}, detail: "too short"},
		{name: "format", edit: func(s *signedData) { s.format = 0x95 }, want: []error{oda.ErrCDA}, detail: "format"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := signedData{header: 0x6A, format: 0x05, hashAlgo: 1, trailer: 0xBC, body: body(cid, ac, h[:]), hashed: un}
			if tc.edit != nil {
				tc.edit(&s)
			}
			sdad := icc.sign(t, s.build(len(icc.pub.Modulus)))
			u, c, x := un, byte(cid), txn
			if tc.un != nil {
				u = tc.un
			}
			if tc.cid != 0 {
				c = tc.cid
			}
			if tc.txn != nil {
				x = tc.txn
			}
			got, err := oda.VerifyCDA(icc.pub, sdad, u, c, x)
			wantErr(t, err, tc.want, tc.detail)
			if err != nil {
				return
			}
			if !bytes.Equal(got, ac) {
				t.Errorf("AC %X, want %X", got, ac)
			}
			r, err := oda.RecoverCDA(icc.pub, sdad, u, c, x)
			if err != nil || !bytes.Equal(r.ICCDynamicNumber, idn) || r.CID != cid || !bytes.Equal(r.AC, ac) {
				t.Errorf("RecoverCDA = %+v, %v", r, err)
			}
		})
	}
	_, err := oda.VerifyCDA(icc.pub, nil, un, cid, txn)
	wantErr(t, err, []error{oda.ErrCDA, oda.ErrMissingData}, "9F4B")
	_, err = oda.VerifyCDA(icc.pub, bytes.Repeat([]byte{1}, 96), nil, cid, txn)
	wantErr(t, err, []error{oda.ErrCDA, oda.ErrMissingData}, "9F37")
}
