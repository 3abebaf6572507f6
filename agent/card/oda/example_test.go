package oda_test

import (
	"bytes"
	"fmt"
	"time"

	"github.com/posagent/posagent/agent/card/oda"
	"github.com/posagent/posagent/provisioning"
)

// The CDA chain of a kernel, on the public Mastercard test card data of
// vectors_test.go: pick the CA key by RID and 8F, recover the issuer key,
// then the ICC key over the static data, then check the signature in the
// GENERATE AC answer.
func Example() {
	v := mastercard()
	now := time.Date(2015, 6, 30, 12, 0, 0, 0, time.UTC)

	ca, err := oda.FindCAPK([]provisioning.CAPK{v.capk}, v.capk.RID, 0x05, now)
	if err != nil {
		fmt.Println(err)
		return
	}
	issuer, err := oda.RecoverIssuerKey(ca, v.issuerCert, v.issuerRem, v.exp, v.pan, now, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	icc, err := oda.RecoverICCKey(issuer, v.iccCert, nil, v.exp, v.static, v.pan, now)
	if err != nil {
		fmt.Println(err)
		return
	}
	// PDOL data (none here) || CDOL1 data || the answer's TLVs but 9F4B.
	txn := append(bytes.Clone(v.cdol1), v.cdaAnswer...)
	ac, err := oda.VerifyCDA(icc, v.cdaSDAD, v.un, v.cid, txn)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("issuer key %d bytes, ICC key %d bytes, AC %X\n", len(issuer.Modulus), len(icc.Modulus), ac)

	_, err = oda.VerifyCDA(icc, v.cdaSDAD, v.un, 0x80, txn) // the answer said ARQC
	fmt.Println(err)
	// Output:
	// issuer key 176 bytes, ICC key 112 bytes, AC 16AFBA13C52FB173
	// oda: combined DDA/application cryptogram invalid: signed CID 40 differs from the answer's 80
}
