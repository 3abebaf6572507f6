package printer_test

import (
	"fmt"

	"github.com/posagent/posagent/drivers/printer"
)

// Bold double-height Chinese and ASCII, then a partial cut: the Chinese run is
// sent in GB18030 between FS & and FS .
func ExampleEncoder() {
	var e printer.Encoder
	b := e.Init().Align(printer.Center).Bold(true).Size(1, 2).Line("签购单 SLIP").Feed(3).Cut().Bytes()
	fmt.Printf("% X\n", b)
	// Output:
	// 1B 40 1B 61 01 1B 45 01 1D 21 01 1C 26 C7 A9 B9 BA B5 A5 1C 2E 20 53 4C 49 50 0A 1B 64 03 1D 56 01
}

// A printer's answer to DLE EOT 4 (roll paper sensor) with the paper out.
func ExampleDecodeStatus() {
	var s printer.Status
	err := printer.DecodeStatus(&s, 4, 0x72)
	fmt.Println(s.PaperEnd, err, s.Err())
	// Output:
	// true <nil> printer: paper end: load paper
}
