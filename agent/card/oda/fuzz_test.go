package oda_test

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/posagent/posagent/agent/card/oda"
	"github.com/posagent/posagent/provisioning"
)

// The fuzz targets run the recovery on the public Mastercard vector's keys
// (vectors_test.go), seeded with that vector's data: whatever the card
// sends, nothing may panic, and every failure must carry its method's
// sentinel, which is what the kernel maps to TVR bits.

func mastercardKeys(tb testing.TB) (mastercardVector, oda.PublicKey, oda.PublicKey) {
	v := mastercard()
	issuer, err := oda.RecoverIssuerKey(v.capk, v.issuerCert, v.issuerRem, v.exp, v.pan, v.valid, nil)
	if err != nil {
		tb.Fatal(err)
	}
	icc, err := oda.RecoverICCKey(issuer, v.iccCert, nil, v.exp, v.static, v.pan, v.valid)
	if err != nil {
		tb.Fatal(err)
	}
	return v, issuer, icc
}

func FuzzRecoverIssuerKey(f *testing.F) {
	v, _, _ := mastercardKeys(f)
	f.Add(v.issuerCert, v.issuerRem, v.exp, v.pan)
	f.Add(v.issuerCert, []byte(nil), v.exp, v.pan)
	f.Add(v.issuerCert[1:], v.issuerRem, []byte{1, 0, 1}, "")
	f.Fuzz(func(t *testing.T, cert, rem, exp []byte, pan string) {
		revoked := []oda.Revocation{{RID: v.capk.RID, Index: v.capk.Index, Serial: []byte{0, 0, 1}}}
		k, err := oda.RecoverIssuerKey(v.capk, cert, rem, exp, pan, v.valid, revoked)
		if err != nil {
			if !errors.Is(err, oda.ErrIssuerCertificate) {
				t.Fatalf("error without ErrIssuerCertificate: %v", err)
			}
			return
		}
		if len(k.Modulus) > len(v.capk.Modulus) || !bytes.Equal(k.Exponent, exp) {
			t.Fatalf("recovered a %d-byte key with exponent %X from exponent %X", len(k.Modulus), k.Exponent, exp)
		}
	})
}

func FuzzRecoverICCKey(f *testing.F) {
	v, issuer, _ := mastercardKeys(f)
	f.Add(v.iccCert, []byte(nil), v.exp, v.static, v.pan)
	f.Add(v.iccCert, []byte{0xBB}, v.exp, v.static[2:], v.pan)
	f.Add(v.issuerCert, v.issuerRem, v.exp, []byte(nil), "5285881254345653F")
	f.Fuzz(func(t *testing.T, cert, rem, exp, static []byte, pan string) {
		k, err := oda.RecoverICCKey(issuer, cert, rem, exp, static, pan, v.valid)
		if err != nil {
			if !errors.Is(err, oda.ErrICCCertificate) {
				t.Fatalf("error without ErrICCCertificate: %v", err)
			}
			return
		}
		if len(k.Modulus) > len(issuer.Modulus) || !bytes.Equal(k.Exponent, exp) {
			t.Fatalf("recovered a %d-byte key with exponent %X from exponent %X", len(k.Modulus), k.Exponent, exp)
		}
	})
}

// FuzzVerifyDDA runs one 9F4B through the three dynamic checks: DDA, fDDA
// (the same frame) and CDA with tdd as the unpredictable number and the
// transaction data.
func FuzzVerifyDDA(f *testing.F) {
	v, _, icc := mastercardKeys(f)
	f.Add(v.ddaSDAD, v.ddol)
	f.Add(v.cdaSDAD, v.un)
	f.Add(v.ddaSDAD[:10], []byte(nil))
	f.Fuzz(func(t *testing.T, sdad, tdd []byte) {
		if idn, err := oda.VerifyDDA(icc, sdad, tdd); err != nil {
			if !errors.Is(err, oda.ErrDDA) {
				t.Fatalf("error without ErrDDA: %v", err)
			}
		} else if len(idn) < 2 || len(idn) > 8 {
			t.Fatalf("ICC dynamic number of %d bytes", len(idn))
		}
		if r, err := oda.RecoverCDA(icc, sdad, tdd, v.cid, tdd); err != nil {
			if !errors.Is(err, oda.ErrCDA) {
				t.Fatalf("error without ErrCDA: %v", err)
			}
		} else if len(r.AC) != 8 || r.CID != v.cid {
			t.Fatalf("RecoverCDA = %+v", r)
		}
	})
}

// FuzzRecoveredLayouts feeds arbitrary recovered blocks to the checks that
// follow the RSA operation (the Table 6, 14, 7 and 17 parsers), seeded with
// well-formed blocks built from Book 2's layouts.
func FuzzRecoveredLayouts(f *testing.F) {
	issuer := dataKey(f, "issuer-1024-e3")
	icc := dataKey(f, "icc-768-e3")
	ip, irem := newCert(0x02, testIssuerID, issuer.pub).build(128)
	cc := newCert(0x04, testAppPAN, icc.pub)
	cc.staticData = testStatic
	cp, crem := cc.build(128)
	f.Add(ip, irem, issuer.pub.Exponent, []byte(nil), testPAN)
	f.Add(cp, crem, icc.pub.Exponent, testStatic, testPAN)
	f.Add(signedData{header: 0x6A, format: 0x03, hashAlgo: 1, trailer: 0xBC, body: []byte{0xDA, 0xC1}, hashed: testStatic}.build(96),
		[]byte(nil), []byte(nil), testStatic, "")
	f.Add(signedData{header: 0x6A, format: 0x05, hashAlgo: 1, trailer: 0xBC, body: dynamicBody([]byte{1, 2}), hashed: []byte{1, 2, 3, 4}}.build(96),
		[]byte(nil), []byte(nil), []byte{1, 2, 3, 4}, "")
	ca := provisioning.CAPK{RID: []byte{0xA0, 0, 0, 3, 0x33}, Index: 0x80}
	now := time.Date(2026, 12, 3, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, b, rem, exp, data []byte, pan string) {
		if k, err := oda.IssuerKeyFromRecovered(b, ca, rem, exp, pan, now, nil); err == nil {
			if len(k.Modulus) > len(b) {
				t.Fatalf("issuer key of %d bytes from a block of %d", len(k.Modulus), len(b))
			}
		} else if !errors.Is(err, oda.ErrIssuerCertificate) {
			t.Fatalf("error without ErrIssuerCertificate: %v", err)
		}
		if k, err := oda.ICCKeyFromRecovered(b, rem, exp, data, pan, now); err == nil {
			if len(k.Modulus) > len(b) {
				t.Fatalf("ICC key of %d bytes from a block of %d", len(k.Modulus), len(b))
			}
		} else if !errors.Is(err, oda.ErrICCCertificate) {
			t.Fatalf("error without ErrICCCertificate: %v", err)
		}
		if dac, err := oda.DACFromRecovered(b, data); err == nil && len(dac) != 2 {
			t.Fatalf("DAC of %d bytes", len(dac))
		} else if err != nil && !errors.Is(err, oda.ErrSDA) {
			t.Fatalf("error without ErrSDA: %v", err)
		}
		if dd, err := oda.DynamicFromRecovered(b, data); err == nil && len(dd) > len(b)-25 {
			t.Fatalf("%d bytes of dynamic data from a block of %d", len(dd), len(b))
		}
	})
}
