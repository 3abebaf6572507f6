package oda_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/posagent/posagent/agent/card/oda"
)

func TestStaticData(t *testing.T) {
	rec1 := mustHex("7009 5F2403291231 5A01 99")
	rec11 := mustHex("7003 9F0801 30")
	long := append(mustHex("708181"), bytes.Repeat([]byte{0xAB}, 0x81)...)
	aip := mustHex("7C00")
	for _, tc := range []struct {
		name    string
		records []oda.Record
		list    []byte
		aip     []byte
		want    []byte
		errs    []error
	}{
		{name: "SFI 1-10: the template's value", records: []oda.Record{{SFI: 1, Data: rec1}},
			want: mustHex("5F2403291231 5A01 99")},
		{name: "SFI 11-30: the whole record", records: []oda.Record{{SFI: 11, Data: rec11}},
			want: rec11},
		{name: "AFL order, then the AIP", records: []oda.Record{{SFI: 11, Data: rec11}, {SFI: 2, Data: rec1}},
			list: []byte{0x82}, aip: aip, want: append(append(bytes.Clone(rec11), rec1[2:]...), aip...)},
		{name: "two-byte length", records: []oda.Record{{SFI: 3, Data: long}}, want: long[3:]},
		{name: "no records, AIP only", list: []byte{0x82}, aip: aip, want: aip},
		{name: "SFI 1-10 record not a 70 template", records: []oda.Record{{SFI: 1, Data: mustHex("7703 9F0801 30")}},
			errs: []error{oda.ErrStaticData}},
		{name: "bytes after the template", records: []oda.Record{{SFI: 1, Data: append(bytes.Clone(rec1), 0x00)}},
			errs: []error{oda.ErrStaticData}},
		{name: "template length past the record", records: []oda.Record{{SFI: 1, Data: rec1[:len(rec1)-1]}},
			errs: []error{oda.ErrStaticData}},
		{name: "SFI 31", records: []oda.Record{{SFI: 31, Data: rec11}}, errs: []error{oda.ErrStaticData}},
		{name: "9F4A naming another tag", list: []byte{0x82, 0x5A}, aip: aip, errs: []error{oda.ErrStaticData}},
		{name: "9F4A naming the AIP, no AIP", list: []byte{0x82}, errs: []error{oda.ErrStaticData, oda.ErrMissingData}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := oda.StaticData(tc.records, tc.list, tc.aip)
			for _, e := range tc.errs {
				if !errors.Is(err, e) {
					t.Fatalf("StaticData: %v, want %v", err, e)
				}
			}
			if len(tc.errs) == 0 && (err != nil || !bytes.Equal(got, tc.want)) {
				t.Fatalf("StaticData = %X, %v; want %X", got, err, tc.want)
			}
		})
	}
}

// The public Visa vector's static data comes out of StaticData when its
// records are wrapped as a card returns them, and its SDA then verifies.
func TestStaticDataVisaVector(t *testing.T) {
	capk, cert, rem, ssad, records, aip, pan, valid := visaVector()
	issuer, err := oda.RecoverIssuerKey(capk, cert, rem, []byte{3}, pan, valid, nil)
	if err != nil {
		t.Fatal(err)
	}
	rec := append([]byte{0x70, byte(len(records))}, records...)
	static, err := oda.StaticData([]oda.Record{{SFI: 2, Data: rec}}, []byte{0x82}, aip)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := oda.VerifySDA(issuer, ssad, static); err != nil {
		t.Fatalf("VerifySDA over StaticData: %v", err)
	}
}

// The public Mastercard vector's CDA answer, as a card sends it in a 77
// template with 9F4B among the other objects, gives back the transaction
// data its signature hashes.
func TestCDATransactionData(t *testing.T) {
	v := mastercard()
	_, _, icc := mastercardKeys(t)
	sdad := append(mustHex("9F4B70"), v.cdaSDAD...)
	body := append(append(bytes.Clone(v.cdaAnswer[:4]), sdad...), v.cdaAnswer[4:]...) // 9F27, 9F4B, 9F36, 9F10
	answer := append([]byte{0x77, 0x81, byte(len(body))}, body...)
	txn, err := oda.CDATransactionData(nil, v.cdol1, answer)
	if err != nil {
		t.Fatal(err)
	}
	if want := append(bytes.Clone(v.cdol1), v.cdaAnswer...); !bytes.Equal(txn, want) {
		t.Fatalf("CDATransactionData = %X, want %X", txn, want)
	}
	if _, err := oda.VerifyCDA(icc, v.cdaSDAD, v.un, v.cid, txn); err != nil {
		t.Fatalf("VerifyCDA: %v", err)
	}

	for _, tc := range []struct {
		name   string
		answer []byte
		errs   []error
	}{
		{"format 1 answer", append([]byte{0x80, byte(len(body))}, body...), []error{oda.ErrCDA}},
		{"no 9F4B", append([]byte{0x77, byte(len(v.cdaAnswer))}, v.cdaAnswer...), []error{oda.ErrCDA, oda.ErrMissingData}},
		{"truncated", answer[:len(answer)-1], []error{oda.ErrCDA}},
		{"object running past the template", append([]byte{0x77, 0x03}, 0x9F, 0x27, 0x05), []error{oda.ErrCDA}},
		{"indefinite length", []byte{0x77, 0x80, 0x00, 0x00}, []error{oda.ErrCDA}},
	} {
		if _, err := oda.CDATransactionData(nil, v.cdol1, tc.answer); err == nil {
			t.Errorf("%s: accepted", tc.name)
		} else {
			for _, e := range tc.errs {
				if !errors.Is(err, e) {
					t.Errorf("%s: %v is not %v", tc.name, err, e)
				}
			}
		}
	}
}

func FuzzStaticData(f *testing.F) {
	f.Add(byte(1), mustHex("7009 5F2403291231 5A01 99"), byte(11), mustHex("7003 9F0801 30"), []byte{0x82}, mustHex("7C00"))
	f.Add(byte(2), mustHex("708181"), byte(0), []byte(nil), []byte(nil), []byte(nil))
	f.Fuzz(func(t *testing.T, sfi1 byte, rec1 []byte, sfi2 byte, rec2, list, aip []byte) {
		recs := []oda.Record{{SFI: sfi1, Data: rec1}, {SFI: sfi2, Data: rec2}}
		out, err := oda.StaticData(recs, list, aip)
		if err != nil {
			if !errors.Is(err, oda.ErrStaticData) {
				t.Fatalf("error without ErrStaticData: %v", err)
			}
			return
		}
		if len(out) > len(rec1)+len(rec2)+len(aip) {
			t.Fatalf("%d bytes of static data from %d of input", len(out), len(rec1)+len(rec2)+len(aip))
		}
	})
}

func FuzzCDATransactionData(f *testing.F) {
	v := mastercard()
	body := append(append(bytes.Clone(v.cdaAnswer), mustHex("9F4B70")...), v.cdaSDAD...)
	f.Add(v.cdol1, append([]byte{0x77, 0x81, byte(len(body))}, body...))
	f.Add([]byte(nil), mustHex("7709 9F4B01 00 DF8101 00 5F00"))
	f.Fuzz(func(t *testing.T, cdol, answer []byte) {
		out, err := oda.CDATransactionData(nil, cdol, answer)
		if err != nil {
			if !errors.Is(err, oda.ErrCDA) {
				t.Fatalf("error without ErrCDA: %v", err)
			}
			return
		}
		if !bytes.HasPrefix(out, cdol) || len(out) > len(cdol)+len(answer) {
			t.Fatalf("transaction data %X from CDOL data %X and answer %X", out, cdol, answer)
		}
	})
}
