package oda_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/posagent/posagent/agent/card/oda"
	"github.com/posagent/posagent/provisioning"
)

func TestFindCAPK(t *testing.T) {
	rid := hx(t, "A000000333")
	list := testCAPKs(t) // expiry 20491231 each
	with := func(edit func(*provisioning.CAPK)) []provisioning.CAPK {
		out := make([]provisioning.CAPK, len(list))
		copy(out, list)
		for i := range out {
			if out[i].Index == 0x81 {
				edit(&out[i])
			}
		}
		return out
	}
	day := func(y int, m time.Month, d, h int) time.Time { return time.Date(y, m, d, h, 0, 0, 0, time.UTC) }
	expiry := func(s string) func(*provisioning.CAPK) { return func(k *provisioning.CAPK) { k.Expiry = s } }

	for _, tc := range []struct {
		name   string
		capks  []provisioning.CAPK
		rid    []byte
		index  byte
		now    time.Time
		want   []error
		detail string
		expiry string // of the key found, when it matters
	}{
		{name: "found", capks: list, index: 0x81, now: testNow},
		{name: "valid through its last day (YYYYMMDD)", capks: with(expiry("20261203")), index: 0x81, now: day(2026, 12, 3, 23)},
		{name: "valid through its last day (YYMMDD, BCD)", capks: with(expiry("261203")), index: 0x81, now: day(2026, 12, 3, 23)},
		{name: "expired the day after (YYYYMMDD)", capks: with(expiry("20261203")), index: 0x81, now: day(2026, 12, 4, 0),
			want: []error{oda.ErrNoCAPK, oda.ErrExpired}, detail: "A000000333/81 expired"},
		{name: "expired the day after (YYMMDD)", capks: with(expiry("261203")), index: 0x81, now: day(2026, 12, 4, 0),
			want: []error{oda.ErrNoCAPK, oda.ErrExpired}, detail: "expired"},
		{name: "expired years ago", capks: with(expiry("20151231")), index: 0x81, now: testNow,
			want: []error{oda.ErrNoCAPK, oda.ErrExpired}, detail: "expired"},
		{name: "no such index", capks: list, index: 0x99, now: testNow,
			want: []error{oda.ErrNoCAPK}, detail: "none for A000000333/99"},
		{name: "no such RID", capks: list, rid: hx(t, "A000000003"), index: 0x81, now: testNow,
			want: []error{oda.ErrNoCAPK}, detail: "none for A000000003/81"},
		{name: "empty list", index: 0x81, now: testNow, want: []error{oda.ErrNoCAPK}, detail: "none"},
		{name: "no expiry", capks: with(expiry("")), index: 0x81, now: testNow, want: []error{oda.ErrNoCAPK}, detail: "neither"},
		{name: "expiry of 7 digits", capks: with(expiry("2049123")), index: 0x81, now: testNow, want: []error{oda.ErrNoCAPK}, detail: "neither"},
		{name: "expiry not a date", capks: with(expiry("20491331")), index: 0x81, now: testNow, want: []error{oda.ErrNoCAPK}, detail: "not a date"},
		{name: "expiry not digits", capks: with(expiry("2049+231")), index: 0x81, now: testNow, want: []error{oda.ErrNoCAPK}, detail: "not a date"},
		{name: "damaged since the download", capks: with(func(k *provisioning.CAPK) {
			k.Modulus = bytes.Clone(k.Modulus)
			k.Modulus[10] ^= 0x10
		}), index: 0x81, now: testNow, want: []error{oda.ErrNoCAPK, provisioning.ErrCAPKChecksum}, detail: "checksum"},
		{name: "not an RSA key", capks: with(func(k *provisioning.CAPK) { k.KeyAlgo = 0x04 }), index: 0x81, now: testNow,
			want: []error{oda.ErrNoCAPK}, detail: "key algorithm 04"},
		{name: "not SHA-1", capks: with(func(k *provisioning.CAPK) { k.HashAlgo = 0x07 }), index: 0x81, now: testNow,
			want: []error{oda.ErrNoCAPK}, detail: "hash algorithm 07"},
		{name: "an expired copy before the renewed key", capks: append(with(expiry("20151231")), list...), index: 0x81, now: testNow, expiry: "20491231"},
		{name: "only expired copies", capks: append(with(expiry("20151231")), with(expiry("20201231"))...), index: 0x81, now: testNow,
			want: []error{oda.ErrNoCAPK, oda.ErrExpired}, detail: "expired"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := rid
			if tc.rid != nil {
				r = tc.rid
			}
			got, err := oda.FindCAPK(tc.capks, r, tc.index, tc.now)
			wantErr(t, err, tc.want, tc.detail)
			if err == nil && (got.Index != tc.index || !bytes.Equal(got.RID, r)) {
				t.Errorf("found %X/%02X", got.RID, got.Index)
			}
			if tc.expiry != "" && got.Expiry != tc.expiry {
				t.Errorf("found the copy expiring %s, want %s", got.Expiry, tc.expiry)
			}
		})
	}
}

// FindCAPK hands back the key RecoverIssuerKey needs: the chain from the
// test CA list as hostsim serves it.
func TestFindCAPKThenRecover(t *testing.T) {
	needOpenSSL(t)
	ca := caKey(t, "80")
	issuer := dataKey(t, "issuer-1024-e3")
	capk, err := oda.FindCAPK(testCAPKs(t), hx(t, "A000000333"), 0x80, testNow)
	if err != nil {
		t.Fatal(err)
	}
	plain, rem := newCert(0x02, testIssuerID, issuer.pub).build(len(ca.pub.Modulus))
	got, err := oda.RecoverIssuerKey(capk, ca.sign(t, plain), rem, issuer.pub.Exponent, testPAN, testNow, nil)
	if err != nil || !bytes.Equal(got.Modulus, issuer.pub.Modulus) {
		t.Fatalf("RecoverIssuerKey = %X, %v", got.Modulus, err)
	}
}
