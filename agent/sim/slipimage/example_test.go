package slipimage_test

import (
	"fmt"

	"github.com/posagent/posagent/agent/receipt"
	"github.com/posagent/posagent/agent/sim/slipimage"
	"github.com/posagent/posagent/drivers/printer"
)

// A slip copy as the printer driver sends it, drawn as the paper shows it.
// (No Output: the picture needs the system's CJK font.)
func Example() {
	r, err := slipimage.New(slipimage.Options{}) // or FontPath: "/path/to/font.ttc"
	if err != nil {
		fmt.Println(err) // says which Debian package to install
		return
	}
	s := receipt.Slip{Copy: receipt.Merchant, MerchantName: "测试商户", CardMasked: "621790*********0120", Amount: 1}
	for i, img := range r.ESCPOS(printer.Encode(receipt.Page(s, r.Columns()), printer.DefaultFeed)) {
		if err := slipimage.WritePNG(fmt.Sprintf("slip-%d.png", i+1), img); err != nil {
			fmt.Println(err)
		}
	}
}
