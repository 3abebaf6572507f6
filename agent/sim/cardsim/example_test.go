package cardsim_test

import (
	"encoding/hex"
	"fmt"

	"github.com/posagent/posagent/agent/sim/cardsim"
)

// The issuer answers an ARQC with 91 = ARPC || ARC; the card that made the
// ARQC verifies it (EXTERNAL AUTHENTICATE, or 91 in the CDOL2 data).
func ExampleIssuerAuthData() {
	mk, _ := hex.DecodeString(cardsim.DefaultKey)
	arqc, _ := hex.DecodeString("4A43490663343187")
	d91, _ := cardsim.IssuerAuthData(mk, 0x0011, arqc, []byte("00"))
	fmt.Printf("91 %X\n", d91)
	fmt.Println(cardsim.VerifyIssuerAuth(mk, 0x0011, arqc, d91))
	d91[0] ^= 1
	fmt.Println(cardsim.VerifyIssuerAuth(mk, 0x0011, arqc, d91))
	// Output:
	// 91 ADC84C26AF10115E3030
	// <nil>
	// cardsim: ARPC does not verify
}
