package printer_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/posagent/posagent/drivers/printer"
	"github.com/posagent/posagent/drivers/printer/printertest"
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

// A page of two styled lines as the driver sends it: reset, the centred
// title in bold double height, normal text again for the second line, two
// lines fed and the cut.
func ExampleEncode() {
	p := printer.Page{Lines: []printer.Line{
		{Align: printer.Center, Runs: []printer.Run{{Text: "TITLE", Format: printer.Format{Bold: true, Height: 2}}}},
		{Runs: []printer.Run{{Text: "text"}}},
	}}
	fmt.Printf("% X\n", printer.Encode(p, 2))
	// Output:
	// 1B 40 1B 61 00 1B 61 01 1B 45 01 1D 21 01 54 49 54 4C 45 0A 1B 61 00 1B 45 00 1D 21 00 74 65 78 74 0A 1B 64 02 1D 56 01
}

// Printing a page on a fake printer: the status is checked before and after
// it, and the page comes out fed and cut.
func ExamplePrinter_Print() {
	dev := &printertest.Device{}
	p := printer.New(dev, printer.Options{Feed: 1})
	page := printer.Page{Lines: []printer.Line{{Runs: []printer.Run{{Text: "银联 UnionPay"}}}}}
	if err := p.Print(context.Background(), page); err != nil {
		fmt.Println(err)
	}
	fmt.Printf("%q\n", dev.Texts())

	dev.Status.CoverOpen = true
	err := p.Print(context.Background(), page)
	fmt.Println(err, errors.Is(err, printer.ErrCoverOpen))
	// Output:
	// ["银联 UnionPay\n\n"]
	// printer: cover open: close the cover (before printing) true
}
