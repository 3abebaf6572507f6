package oda_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/posagent/posagent/agent/card/oda"
	"github.com/posagent/posagent/provisioning"
)

// A made-up 19-digit UnionPay-style PAN and what the certificates carry of
// it: the issuer identifier (6 digits, F padded to 4 bytes) and the
// application PAN (F padded to 10 bytes).
const testPAN = "6228480402564890018"

var (
	testIssuerID = []byte{0x62, 0x28, 0x48, 0xFF}
	testAppPAN   = []byte{0x62, 0x28, 0x48, 0x04, 0x02, 0x56, 0x48, 0x90, 0x01, 0x8F}
	testNow      = time.Date(2026, 12, 3, 16, 0, 0, 0, time.UTC)
	// The static data to be authenticated: the offline records' values
	// and the AIP the 9F4A list names (made up; only its bytes matter).
	testStatic = []byte{0x5F, 0x24, 0x03, 0x29, 0x12, 0x31, 0x5F, 0x25, 0x03, 0x24, 0x01, 0x01, 0x9F, 0x07, 0x02, 0xFF, 0x00, 0x7C, 0x00}
)

type issuerCall struct {
	ca                   provisioning.CAPK
	cert, rem, exp       []byte
	pan                  string
	now                  time.Time
	revoked              []oda.Revocation
	wantModulus, wantExp []byte
}

func TestRecoverIssuerKey(t *testing.T) {
	needOpenSSL(t)
	ca80, ca83 := caKey(t, "80"), caKey(t, "83")
	capk80, capk83 := testCAPK(t, 0x80), testCAPK(t, 0x83)
	if !bytes.Equal(capk80.Modulus, ca80.pub.Modulus) || !bytes.Equal(capk83.Modulus, ca83.pub.Modulus) {
		t.Fatal("capk.yaml and the PEM files disagree")
	}
	issuer1024 := dataKey(t, "issuer-1024-e3")
	issuer704 := dataKey(t, "issuer-704-e65537")
	issuer1984 := dataKey(t, "issuer-1984-e3")

	// signCall builds and signs a certificate for key under ca and
	// returns the call a card would make the kernel do.
	signCall := func(t *testing.T, ca testKey, capk provisioning.CAPK, key testKey, edit func(*cert)) issuerCall {
		c := newCert(0x02, testIssuerID, key.pub)
		if edit != nil {
			edit(&c)
		}
		plain, rem := c.build(len(ca.pub.Modulus))
		return issuerCall{ca: capk, cert: ca.sign(t, plain), rem: rem, exp: key.pub.Exponent,
			pan: testPAN, now: testNow, wantModulus: key.pub.Modulus, wantExp: key.pub.Exponent}
	}
	revoke := func(rid string, index byte, serial string) []oda.Revocation {
		return []oda.Revocation{{RID: hx(t, rid), Index: index, Serial: hx(t, serial)}}
	}

	for _, tc := range []struct {
		name   string
		issuer testKey
		ca83   bool
		edit   func(*cert)
		call   func(*issuerCall)
		want   []error
		detail string
	}{
		{name: "key longer than the certificate holds, remainder 92", issuer: issuer1024},
		{name: "key that fits, BB padded, no remainder", issuer: issuer704},
		{name: "1984-bit key under the 1984-bit CA", issuer: issuer1984, ca83: true},
		{name: "8-digit issuer identifier", issuer: issuer1024,
			edit: func(c *cert) { c.owner = []byte{0x62, 0x28, 0x48, 0x04} }},
		{name: "PAN given F padded", issuer: issuer1024, call: func(c *issuerCall) { c.pan = testPAN + "F" }},
		{name: "valid through the last minute of its month", issuer: issuer1024,
			edit: func(c *cert) { c.expiry = []byte{0x12, 0x26} },
			call: func(c *issuerCall) { c.now = time.Date(2026, 12, 31, 23, 59, 59, 0, time.UTC) }},
		{name: "revocation of another CA index does not apply", issuer: issuer1024,
			call: func(c *issuerCall) { c.revoked = revoke("A000000333", 0x81, "000001") }},
		{name: "revocation of another serial does not apply", issuer: issuer1024,
			call: func(c *issuerCall) { c.revoked = revoke("A000000333", 0x80, "000002") }},

		{name: "header", issuer: issuer1024, edit: func(c *cert) { c.header = 0x6B },
			want: []error{oda.ErrIssuerCertificate}, detail: "header"},
		{name: "trailer", issuer: issuer1024, edit: func(c *cert) { c.trailer = 0xBD },
			want: []error{oda.ErrIssuerCertificate}, detail: "trailer"},
		{name: "format of an ICC certificate", issuer: issuer1024, edit: func(c *cert) { c.format = 0x04 },
			want: []error{oda.ErrIssuerCertificate}, detail: "format"},
		{name: "hash", issuer: issuer1024, edit: func(c *cert) { c.hashFix = flipFirst },
			want: []error{oda.ErrIssuerCertificate}, detail: "hash mismatch"},
		{name: "hash algorithm other than SHA-1", issuer: issuer1024, edit: func(c *cert) { c.hashAlgo = 0x02 },
			want: []error{oda.ErrIssuerCertificate}, detail: "SHA-1"},
		{name: "key algorithm other than RSA", issuer: issuer1024, edit: func(c *cert) { c.keyAlgo = 0x02 },
			want: []error{oda.ErrIssuerCertificate}, detail: "RSA"},
		{name: "expired last month", issuer: issuer1024, edit: func(c *cert) { c.expiry = []byte{0x11, 0x26} },
			want: []error{oda.ErrIssuerCertificate, oda.ErrExpired}, detail: "expired"},
		{name: "expired at the turn of the month", issuer: issuer1024,
			edit: func(c *cert) { c.expiry = []byte{0x12, 0x26} },
			call: func(c *issuerCall) { c.now = time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC) },
			want: []error{oda.ErrIssuerCertificate, oda.ErrExpired}, detail: "expired"},
		{name: "month 13", issuer: issuer1024, edit: func(c *cert) { c.expiry = []byte{0x13, 0x49} },
			want: []error{oda.ErrIssuerCertificate}, detail: "month"},
		{name: "expiry not BCD", issuer: issuer1024, edit: func(c *cert) { c.expiry = []byte{0x12, 0x4A} },
			want: []error{oda.ErrIssuerCertificate}, detail: "BCD"},
		{name: "revoked", issuer: issuer1024,
			call: func(c *issuerCall) { c.revoked = revoke("A000000333", 0x80, "000001") },
			want: []error{oda.ErrIssuerCertificate, oda.ErrRevoked}, detail: "serial 000001"},
		{name: "issuer identifier of another BIN", issuer: issuer1024,
			call: func(c *issuerCall) { c.pan = "6228490402564890018" },
			want: []error{oda.ErrIssuerCertificate}, detail: "issuer identifier"},
		{name: "issuer identifier of 2 digits", issuer: issuer1024,
			edit: func(c *cert) { c.owner = []byte{0x62, 0xFF, 0xFF, 0xFF} },
			want: []error{oda.ErrIssuerCertificate}, detail: "issuer identifier"},
		{name: "certificate shorter than the CA key", issuer: issuer1024,
			call: func(c *issuerCall) { c.cert = c.cert[1:] },
			want: []error{oda.ErrIssuerCertificate}, detail: "127 bytes"},
		{name: "certificate not less than the CA modulus", issuer: issuer1024,
			call: func(c *issuerCall) { c.cert = bytes.Repeat([]byte{0xFF}, len(c.cert)) },
			want: []error{oda.ErrIssuerCertificate}, detail: "modulus"},
		{name: "no certificate", issuer: issuer1024, call: func(c *issuerCall) { c.cert = nil },
			want: []error{oda.ErrIssuerCertificate, oda.ErrMissingData}, detail: "90"},
		{name: "no exponent", issuer: issuer1024, call: func(c *issuerCall) { c.exp = nil },
			want: []error{oda.ErrIssuerCertificate, oda.ErrMissingData}, detail: "9F32"},
		{name: "no remainder", issuer: issuer1024, call: func(c *issuerCall) { c.rem = nil },
			want: []error{oda.ErrIssuerCertificate, oda.ErrMissingData}, detail: "remainder"},
		{name: "remainder for a key that fits", issuer: issuer704,
			call: func(c *issuerCall) { c.rem = []byte{0x01} },
			want: []error{oda.ErrIssuerCertificate}, detail: "remainder given"},
		{name: "remainder a byte short", issuer: issuer1024,
			call: func(c *issuerCall) { c.rem = c.rem[:len(c.rem)-1] },
			want: []error{oda.ErrIssuerCertificate}, detail: "remainder length"},
		{name: "remainder altered", issuer: issuer1024,
			call: func(c *issuerCall) { c.rem = flipFirst(c.rem) },
			want: []error{oda.ErrIssuerCertificate}, detail: "hash mismatch"},
		{name: "exponent other than the signed one", issuer: issuer1024,
			call: func(c *issuerCall) { c.exp = []byte{0x05} },
			want: []error{oda.ErrIssuerCertificate}, detail: "hash mismatch"},
		{name: "exponent length other than the certificate's", issuer: issuer1024,
			call: func(c *issuerCall) { c.exp = []byte{0x01, 0x00, 0x01} },
			want: []error{oda.ErrIssuerCertificate}, detail: "exponent length"},
		{name: "certificate for another CA key", issuer: issuer1024,
			call: func(c *issuerCall) { c.ca = testCAPK(t, 0x81) },
			want: []error{oda.ErrIssuerCertificate}, detail: "128 bytes for a CA key of 144"},
		{name: "CA key with an even modulus", issuer: issuer1024,
			call: func(c *issuerCall) {
				c.ca.Modulus = bytes.Clone(c.ca.Modulus)
				c.ca.Modulus[len(c.ca.Modulus)-1] &^= 1
			},
			want: []error{oda.ErrNoCAPK}, detail: "even"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ca, capk := ca80, capk80
			if tc.ca83 {
				ca, capk = ca83, capk83
			}
			c := signCall(t, ca, capk, tc.issuer, tc.edit)
			if tc.call != nil {
				tc.call(&c)
			}
			got, err := oda.RecoverIssuerKey(c.ca, c.cert, c.rem, c.exp, c.pan, c.now, c.revoked)
			wantErr(t, err, tc.want, tc.detail)
			if err != nil {
				return
			}
			if !bytes.Equal(got.Modulus, c.wantModulus) || !bytes.Equal(got.Exponent, c.wantExp) {
				t.Errorf("recovered key %X/%X, want %X/%X", got.Modulus, got.Exponent, c.wantModulus, c.wantExp)
			}
		})
	}
}

type iccCall struct {
	issuer                     oda.PublicKey
	cert, rem, exp, staticData []byte
	pan                        string
	now                        time.Time
	wantModulus                []byte
}

func TestRecoverICCKey(t *testing.T) {
	needOpenSSL(t)
	issuer1024 := dataKey(t, "issuer-1024-e3")
	issuer704 := dataKey(t, "issuer-704-e65537")
	icc768 := dataKey(t, "icc-768-e3")
	icc640 := dataKey(t, "icc-640-e65537")

	for _, tc := range []struct {
		name        string
		issuer, icc testKey
		edit        func(*cert)
		call        func(*iccCall)
		want        []error
		detail      string
	}{
		{name: "key longer than the certificate holds, remainder 9F48", issuer: issuer1024, icc: icc768},
		{name: "key that fits, no remainder", issuer: issuer1024, icc: icc640},
		{name: "under a 704-bit issuer key", issuer: issuer704, icc: icc640},
		{name: "PAN given F padded", issuer: issuer1024, icc: icc768, call: func(c *iccCall) { c.pan += "F" }},
		{name: "16-digit PAN", issuer: issuer1024, icc: icc768,
			edit: func(c *cert) { c.owner = hx(t, "6228480402564890FFFF") },
			call: func(c *iccCall) { c.pan = "6228480402564890" }},

		{name: "format of an issuer certificate", issuer: issuer1024, icc: icc768,
			edit: func(c *cert) { c.format = 0x02 }, want: []error{oda.ErrICCCertificate}, detail: "format"},
		{name: "static data altered", issuer: issuer1024, icc: icc768,
			call: func(c *iccCall) { c.staticData = flipFirst(c.staticData) },
			want: []error{oda.ErrICCCertificate}, detail: "hash mismatch"},
		{name: "static data missing", issuer: issuer1024, icc: icc768,
			call: func(c *iccCall) { c.staticData = nil },
			want: []error{oda.ErrICCCertificate}, detail: "hash mismatch"},
		{name: "another card's PAN", issuer: issuer1024, icc: icc768,
			call: func(c *iccCall) { c.pan = "6228480402564890019" },
			want: []error{oda.ErrICCCertificate}, detail: "PAN"},
		{name: "PAN prefix only", issuer: issuer1024, icc: icc768,
			call: func(c *iccCall) { c.pan = "622848040256489001" },
			want: []error{oda.ErrICCCertificate}, detail: "PAN"},
		{name: "expired", issuer: issuer1024, icc: icc768,
			edit: func(c *cert) { c.expiry = []byte{0x10, 0x26} },
			want: []error{oda.ErrICCCertificate, oda.ErrExpired}, detail: "expired"},
		{name: "trailer", issuer: issuer1024, icc: icc768, edit: func(c *cert) { c.trailer = 0x00 },
			want: []error{oda.ErrICCCertificate}, detail: "trailer"},
		{name: "hash algorithm other than SHA-1", issuer: issuer1024, icc: icc768,
			edit: func(c *cert) { c.hashAlgo = 0x00 }, want: []error{oda.ErrICCCertificate}, detail: "SHA-1"},
		{name: "no remainder", issuer: issuer1024, icc: icc768, call: func(c *iccCall) { c.rem = nil },
			want: []error{oda.ErrICCCertificate, oda.ErrMissingData}, detail: "remainder"},
		{name: "certificate a byte long", issuer: issuer1024, icc: icc768,
			call: func(c *iccCall) { c.cert = append(c.cert, 0) },
			want: []error{oda.ErrICCCertificate}, detail: "129 bytes"},
		{name: "no certificate", issuer: issuer1024, icc: icc768, call: func(c *iccCall) { c.cert = nil },
			want: []error{oda.ErrICCCertificate, oda.ErrMissingData}, detail: "9F46"},
		{name: "ICC key longer than the issuer key", issuer: issuer1024, icc: icc768,
			edit: func(c *cert) {
				// A 200-byte "key": Book 2 §6.1 wants N_IC <= N_I.
				c.key.Modulus = append(bytes.Repeat([]byte{0xC1}, 199), 0x01)
			},
			call: func(c *iccCall) { c.wantModulus = nil },
			want: []error{oda.ErrICCCertificate}, detail: "longer than the issuer key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newCert(0x04, testAppPAN, tc.icc.pub)
			c.staticData = testStatic
			if tc.edit != nil {
				tc.edit(&c)
			}
			plain, rem := c.build(len(tc.issuer.pub.Modulus))
			call := iccCall{issuer: tc.issuer.pub, cert: tc.issuer.sign(t, plain), rem: rem,
				exp: tc.icc.pub.Exponent, staticData: testStatic, pan: testPAN, now: testNow,
				wantModulus: tc.icc.pub.Modulus}
			if tc.call != nil {
				tc.call(&call)
			}
			got, err := oda.RecoverICCKey(call.issuer, call.cert, call.rem, call.exp, call.staticData, call.pan, call.now)
			wantErr(t, err, tc.want, tc.detail)
			if err != nil {
				return
			}
			if !bytes.Equal(got.Modulus, call.wantModulus) || !bytes.Equal(got.Exponent, tc.icc.pub.Exponent) {
				t.Errorf("recovered key %X/%X, want %X/%X", got.Modulus, got.Exponent, call.wantModulus, tc.icc.pub.Exponent)
			}
		})
	}
}
