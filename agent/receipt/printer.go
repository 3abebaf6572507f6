package receipt

import (
	"context"
	"fmt"

	"github.com/posagent/posagent/drivers/printer"
	"github.com/posagent/posagent/provisioning"
)

// Driver is what Printer needs of a receipt printer: drivers/printer's
// *Printer (and, in tests, one over printertest.Device).
type Driver interface {
	// Print prints a page, feeds and cuts, or says why it could not: a
	// *printer.StatusError carrying a printer.Condition.
	Print(ctx context.Context, p printer.Page) error
	SelfTest(ctx context.Context) error
}

var _ Driver = (*printer.Printer)(nil)

// Printer prints the flow's receipts on a printer driver: each copy of the
// slip (Copies) laid out at Width (Page) and printed as a page of its own.
type Printer struct {
	Driver Driver
	// Width is the paper's width in display columns; 0 means DefaultWidth.
	Width int
}

var (
	_ provisioning.Printer    = (*Printer)(nil)
	_ provisioning.SelfTester = (*Printer)(nil)
)

// PrintReceipt prints the merchant and cardholder copies of r's slip, in
// that order, and stops at the first copy the driver could not print. The
// driver checks the printer before and after each copy, so no copy starts
// without paper and a copy that lost its bottom half to the paper running
// out is an error. The error names the copy and wraps the driver's, whose
// printer.Condition gives the flow the failure code to show (E_PAPER_END …).
// The flow then asks for the fault to be fixed and calls again with
// r.Duplicate set, which prints both copies marked 重打印 DUPLICATED.
func (p *Printer) PrintReceipt(ctx context.Context, r provisioning.Receipt) error {
	for _, s := range Copies(r) {
		if err := p.Driver.Print(ctx, Page(s, p.Width)); err != nil {
			return fmt.Errorf("receipt: %s copy: %w", s.Copy, err)
		}
	}
	return nil
}

// SelfTest is the driver's: the flow runs it before the install starts.
func (p *Printer) SelfTest(ctx context.Context) error { return p.Driver.SelfTest(ctx) }
