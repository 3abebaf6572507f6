package slipimage_test

import (
	"fmt"

	"github.com/posagent/posagent/agent/receipt"
	"github.com/posagent/posagent/agent/sim/slipimage"
)

// A slip copy laid out for the paper's width, drawn as the paper shows it
// once the printer driver has printed it.
// (No Output: the picture needs the system's CJK font.)
func Example() {
	r, err := slipimage.New(slipimage.Options{}) // or FontPath: "/path/to/font.ttc"
	if err != nil {
		fmt.Println(err) // says which Debian package to install
		return
	}
	s := receipt.Slip{Copy: receipt.Merchant, MerchantName: "测试商户", CardMasked: "621790*********0120", Amount: 1}
	if err := r.WritePage("slip.png", receipt.Page(s, r.Columns())); err != nil {
		fmt.Println(err)
	}
}
