package oda_test

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/posagent/posagent/agent/card/oda"
	"github.com/posagent/posagent/provisioning"
)

// Public known answers: data of real test cards signed under the payment
// schemes' published test CA keys, as the emv-tools project (Dmitry
// Eremin-Solenikov, github.com/lumag/emv-tools, LGPL) carries them in its
// tests. Only the data is taken from there; each CA key's DF03 checksum,
// given alongside it, checks the transcription.
//
// Mastercard: test/cda-test.c and test/dda-test.c — CA key A000000004/05
// (1408 bits), issuer certificate with remainder, ICC certificate, the
// static data to be authenticated, an INTERNAL AUTHENTICATE answer to the
// DDOL data 00000000, and a CDA GENERATE AC answer (UN 12345779, CID 40,
// CDOL1 data and the answer's 9F27, 9F36, 9F10).
//
// Visa: test/sda-test.c — CA key A000000003/01 (1024 bits), issuer
// certificate with remainder, signed static application data, static data
// (the records and the AIP 5C00).
type mastercardVector struct {
	capk                           provisioning.CAPK
	issuerCert, issuerRem, exp     []byte
	iccCert, static                []byte
	pan                            string
	ddaSDAD, ddol                  []byte
	cdaSDAD, un, cdol1, cdaAnswer  []byte
	cid                            byte
	issuerExpiry, iccExpiry, valid time.Time
}

func mastercard() mastercardVector {
	return mastercardVector{
		capk: provisioning.CAPK{RID: mustHex("A000000004"), Index: 0x05, Expiry: "20491231", HashAlgo: 1, KeyAlgo: 1,
			Exponent: []byte{0x03},
			Modulus: mustHex("B8048ABC30C90D976336543E3FD7091C8FE4800DF820ED55E7E94813ED00555B573FECA3D84AF6131A651D66CFF4284F" +
				"B13B635EDD0EE40176D8BF04B7FD1C7BACF9AC7327DFAA8AA72D10DB3B8E70B2DDD811CB4196525EA386ACC33C0D9D45" +
				"75916469C4E4F53E8E1C912CC618CB22DDE7C3568E90022E6BBA770202E4522A2DD623D180E215BD1D1507FE3DC90CA3" +
				"10D27B3EFCCD8F83DE3052CAD1E48938C68D095AAC91B5F37E28BB49EC7ED597"),
			Checksum: mustHex("EBFA0D5D06D8CE702DA3EAE890701D45E274C845")},
		issuerCert: mustHex("1714284F763B8586EE6D319951F7E63FA25076E50DC9D3200BA998D3A052ADBA9AB69AC6AD6ADD3CE09F0278F4074EC4" +
			"EE9B1D2268A3E953575E454E50CD860BF424C51C597712D2AA057089DD8673E51B1E1D7188034892077AC18A6AE23488" +
			"BEA9DF3B1A83F2C0800CD7C5CDF2FDE0496F7BC39FB4BF363299BFA637B2EC33C507E36821EEC2075F0E420D38A1C9F3" +
			"127261BA316C987674FADB20EA7FEB75EE455D12146EA6F02E8B01EC2FA7A115"),
		issuerRem: mustHex("6E63B7BC70ABDD09341B34C03286BA9BD83BA7936C5B7798FB22C5E53FF240A26DBD6415"),
		exp:       []byte{0x03},
		iccCert: mustHex("A42FBEB156B98DCB0554DA062ADCA5309A91F04FA2C7BD7102A8D73F16A3CFADE8AADF4F3FE2A2125CCDD77C6B9F78B5" +
			"B4371CE0805725B0F9C027AF147D91E1FFDB201E9C170CE777053A172AD526DCAFD33895E1A947305C5B167F2E7C6F99" +
			"1581A652EE473154760C2ED774214E50DFECDD4CF294C974B89EBCA25B5AB3C0BEB50DFAF782AFDE1433D90CA2A89D65" +
			"1E75D67EBC7C3E36F5A165EE6132612939C1ECD399E46074B996D93A88E01E0A"),
		static: mustHex("5F25031405015F24031506305A0852858812543456535F3401018E0C00000000000000001E031F039F0702FF009F0D05" +
			"BC50BC00009F0E0500000000009F0F05BC70BC98009F4A01825F280206438C219F02069F03069F1A0295055F2A029A03" +
			"9C019F37049F35019F45029F4C089F34038D0C910A8A0295059F37049F4C083900"),
		pan: "5285881254345653",
		ddaSDAD: mustHex("3D87F31056102D2512CFDE30900627C1263A76D1DAA821F50831E606C54544C258131EAEBE874DCB1A28CF82D3FF9111" +
			"8260BC91113711D3B289FA41BE69C7A7B5C783E6F8F97FCE13F08B13FA44183E3718CEBF0C41473D2B0FF4DE44B6A02D" +
			"75ADB6D4962393FFDF4E69026CDF38FF"),
		ddol: mustHex("00000000"),
		cdaSDAD: mustHex("1C009FC48679157DBFF45F65D33FF78D4FCBF0CF5EA4208D107AE95AA38C546D0E5A18B87403A12BD447A8BBFC1E49CE" +
			"0B2E251389205703C9BB1A88CC79F1DDC2F9841EADF07CE07B62511DDC93DF59F28F0E91F92332D29CDEF2BCCB100885" +
			"0500EF3E470A4CB18CD91AA5C1A108F3"),
		un:        mustHex("12345779"),
		cdol1:     mustHex("000000000000000000000000064300000000000643140925501234577923000000000000000000001E0300"),
		cdaAnswer: mustHex("9F2701409F360200109F10120010904001220000000000000000000000FF"),
		cid:       0x40,
		// The certificates say 12/21 (issuer) and 06/15 (ICC).
		issuerExpiry: time.Date(2022, 1, 1, 0, 0, 0, 0, time.UTC),
		iccExpiry:    time.Date(2015, 7, 1, 0, 0, 0, 0, time.UTC),
		valid:        time.Date(2015, 6, 30, 12, 0, 0, 0, time.UTC),
	}
}

func TestPublicVectorMastercard(t *testing.T) {
	v := mastercard()
	if err := v.capk.Verify(); err != nil {
		t.Fatalf("CA key transcription: %v", err)
	}
	issuer, err := oda.RecoverIssuerKey(v.capk, v.issuerCert, v.issuerRem, v.exp, v.pan, v.valid, nil)
	if err != nil {
		t.Fatalf("RecoverIssuerKey: %v", err)
	}
	if len(issuer.Modulus) != 176 {
		t.Errorf("issuer key of %d bytes, the certificate and its 36-byte remainder make 176", len(issuer.Modulus))
	}
	icc, err := oda.RecoverICCKey(issuer, v.iccCert, nil, v.exp, v.static, v.pan, v.valid)
	if err != nil {
		t.Fatalf("RecoverICCKey: %v", err)
	}
	if len(icc.Modulus) != len(v.ddaSDAD) {
		t.Errorf("ICC key of %d bytes for a 9F4B of %d", len(icc.Modulus), len(v.ddaSDAD))
	}
	idn, err := oda.VerifyDDA(icc, v.ddaSDAD, v.ddol)
	if err != nil || len(idn) != 8 {
		t.Errorf("VerifyDDA = %X, %v", idn, err)
	}
	txn := append(bytes.Clone(v.cdol1), v.cdaAnswer...)
	cda, err := oda.RecoverCDA(icc, v.cdaSDAD, v.un, v.cid, txn)
	if err != nil {
		t.Fatalf("RecoverCDA: %v", err)
	}
	if cda.CID != v.cid || len(cda.AC) != 8 || len(cda.ICCDynamicNumber) != 8 {
		t.Errorf("RecoverCDA = %+v", cda)
	}

	// What the same data must not pass.
	for _, tc := range []struct {
		name string
		err  error
		want []error
	}{
		{"issuer certificate after its month",
			second(oda.RecoverIssuerKey(v.capk, v.issuerCert, v.issuerRem, v.exp, v.pan, v.issuerExpiry, nil)),
			[]error{oda.ErrIssuerCertificate, oda.ErrExpired}},
		{"issuer certificate revoked",
			second(oda.RecoverIssuerKey(v.capk, v.issuerCert, v.issuerRem, v.exp, v.pan, v.valid,
				[]oda.Revocation{{RID: v.capk.RID, Index: v.capk.Index, Serial: hx(t, "006EE2")}})),
			[]error{oda.ErrIssuerCertificate, oda.ErrRevoked}},
		{"issuer certificate for another BIN",
			second(oda.RecoverIssuerKey(v.capk, v.issuerCert, v.issuerRem, v.exp, "5385881254345653", v.valid, nil)),
			[]error{oda.ErrIssuerCertificate}},
		{"ICC certificate after its month",
			second(oda.RecoverICCKey(issuer, v.iccCert, nil, v.exp, v.static, v.pan, v.iccExpiry)),
			[]error{oda.ErrICCCertificate, oda.ErrExpired}},
		{"ICC certificate over other static data",
			second(oda.RecoverICCKey(issuer, v.iccCert, nil, v.exp, v.static[1:], v.pan, v.valid)),
			[]error{oda.ErrICCCertificate}},
		{"ICC certificate of another PAN",
			second(oda.RecoverICCKey(issuer, v.iccCert, nil, v.exp, v.static, "5285881254345654", v.valid)),
			[]error{oda.ErrICCCertificate}},
		{"DDA over other DDOL data", second(oda.VerifyDDA(icc, v.ddaSDAD, hx(t, "00000001"))), []error{oda.ErrDDA}},
		{"DDA signature checked as CDA", second(oda.VerifyCDA(icc, v.ddaSDAD, v.ddol, v.cid, txn)), []error{oda.ErrCDA}},
		{"CDA with another UN", second(oda.VerifyCDA(icc, v.cdaSDAD, hx(t, "12345778"), v.cid, txn)), []error{oda.ErrCDA}},
		{"CDA with another CID", second(oda.VerifyCDA(icc, v.cdaSDAD, v.un, 0x80, txn)), []error{oda.ErrCDA}},
		{"CDA without the CDOL1 data", second(oda.VerifyCDA(icc, v.cdaSDAD, v.un, v.cid, v.cdaAnswer)), []error{oda.ErrCDA}},
	} {
		if tc.err == nil {
			t.Errorf("%s: passed", tc.name)
			continue
		}
		for _, w := range tc.want {
			if !errors.Is(tc.err, w) {
				t.Errorf("%s: %v is not %v", tc.name, tc.err, w)
			}
		}
	}
}

func second[T any](_ T, err error) error { return err }

// visaVector is the Visa data of emv-tools' test/sda-test.c.
func visaVector() (capk provisioning.CAPK, cert, rem, ssad, records, aip []byte, pan string, valid time.Time) {
	capk = provisioning.CAPK{RID: mustHex("A000000003"), Index: 0x01, Expiry: "20491231", HashAlgo: 1, KeyAlgo: 1,
		Exponent: []byte{0x03},
		Modulus: mustHex("C696034213D7D8546984579D1D0F0EA519CFF8DEFFC429354CF3A871A6F7183F1228DA5C7470C055387100CB935A712C" +
			"4E2864DF5D64BA93FE7E63E71F25B1E5F5298575EBE1C63AA617706917911DC2A75AC28B251C7EF40F2365912490B939" +
			"BCA2124A30A28F54402C34AECA331AB67E1E79B285DD5771B5D9FF79EA630B75"),
		Checksum: mustHex("D34A6A776011C7E7CE3AEC5F03AD2F8CFC5503CC")}
	cert = mustHex("3C5FEAD4DD7BCA44F93E90C44F76EDE54A3288ECDC78469FCB1225C03B2C04F2C2F412281A0822DF14649230989FB149" +
		"4070DAF8C9534A7881960148616ACE581788120D3506ACE4CEE564FB27EE53341C22F0B45B31873D05DE545EFE33BCD2" +
		"9B2185D035A806AD08C6976F3505A19999930CA8A03EFA321C486061F7DCEC9F")
	rem = mustHex("1EBCA30F00CE5962A8C6E130544B82891B236C65DE29317F364735DEE63F6598975835D5")
	ssad = mustHex("99A558B62B674AA5E7D2A57E5EF6A6F2258E5DA052D05B54E5C115FF1CECF94AA2DF8F39A01D71C619EB819DA52EF381" +
		"E84979586AEA7855FFBEF40AA3A71CD3B04CFDF270AEC8158A2797F24FD613B748134661135CD290E45B04A8E0CCC711" +
		"AE042F159E73C89C2A7E65A4C2FD1D6106024AA27130B0ECEC0238F91659DE96")
	records = mustHex("5F24030812315A0842765500132345995F3401019F0702FF009F0D05D040ACA8009F0E0500100000009F0F05D068BCF800")
	aip = mustHex("5C00")
	pan = "4276550013234599"
	valid = time.Date(2009, 6, 1, 0, 0, 0, 0, time.UTC) // the certificate says 12/09
	return
}

func TestPublicVectorVisaSDA(t *testing.T) {
	capk, cert, rem, ssad, records, aip, pan, valid := visaVector()
	if err := capk.Verify(); err != nil {
		t.Fatalf("CA key transcription: %v", err)
	}
	issuer, err := oda.RecoverIssuerKey(capk, cert, rem, []byte{0x03}, pan, valid, nil)
	if err != nil {
		t.Fatalf("RecoverIssuerKey: %v", err)
	}
	dac, err := oda.VerifySDA(issuer, ssad, append(bytes.Clone(records), aip...))
	if err != nil || len(dac) != 2 {
		t.Fatalf("VerifySDA = %X, %v", dac, err)
	}
	if _, err := oda.VerifySDA(issuer, ssad, records); !errors.Is(err, oda.ErrSDA) {
		t.Errorf("SDA without the AIP: %v", err)
	}
	if _, err := oda.RecoverIssuerKey(capk, cert, rem, []byte{0x03}, pan, time.Date(2010, 1, 1, 0, 0, 0, 0, time.UTC), nil); !errors.Is(err, oda.ErrExpired) {
		t.Errorf("issuer certificate in 2010: %v", err)
	}
	if _, err := oda.RecoverIssuerKey(capk, cert, nil, []byte{0x03}, pan, valid, nil); !errors.Is(err, oda.ErrMissingData) {
		t.Errorf("issuer certificate without 92: %v", err)
	}
}
