package receipt

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/posagent/posagent/agent/testkit/golden"
	"github.com/posagent/posagent/drivers/printer"
	"github.com/posagent/posagent/drivers/printer/printertest"
	"github.com/posagent/posagent/provisioning"
)

// sampleReceipt is a chip test sale as the flow hands it to the printer.
// Its issuer and acquirer are field 44's two institution codes as a host
// pads them (11 characters each): the slip prints them trimmed.
func sampleReceipt() provisioning.Receipt {
	return provisioning.Receipt{
		Merchant: provisioning.Merchant{MID: "898310048160001", Name: "测试商户 TEST MERCHANT"},
		Terminal: provisioning.Terminal{TID: "10000001", MID: "898310048160001"},
		Txn: provisioning.TxnRecord{STAN: 17, Batch: "000001", Amount: 1, RC: "00", RRN: "261127123456",
			AuthCode: "A1B2C3", Masked: "621790*********0120", Time: time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC), Expiry: "3012", AID: "A000000333010101", Label: "UnionPay Debit",
			Issuer: "01040000   ", Acquirer: "48020000   "},
		Kind: "sale", Test: true,
	}
}

// sampleVoid is the void of sampleReceipt's sale, as the flow hands it to
// the printer: its own STAN, RRN and time, the sale's as the original.
func sampleVoid() provisioning.Receipt {
	r := sampleReceipt()
	r.Kind = "void"
	r.Txn.STAN, r.Txn.RRN, r.Txn.Time = 18, "261127123457", r.Txn.Time.Add(2*time.Minute)
	r.Txn.OrigSTAN, r.Txn.OrigRRN = 17, "261127123456"
	return r
}

// TestGoldenESCPOS keeps the bytes the driver sends for each copy of a test
// sale on a 58 mm printer, and a readable twin of the merchant copy's.
func TestGoldenESCPOS(t *testing.T) {
	copies := Copies(sampleReceipt())
	for _, s := range copies {
		golden.Check(t, filepath.Join("testdata", "sale_"+string(s.Copy)+".escpos.golden"), string(printer.Encode(Page(s, 32), 4)))
	}
	r := sampleReceipt()
	r.Duplicate = true
	golden.Check(t, filepath.Join("testdata", "sale_merchant_duplicate.escpos.golden"), string(printer.Encode(Page(Copies(r)[0], 32), 4)))
	golden.Check(t, filepath.Join("testdata", "sale_merchant.escpos.annotated.golden"), printertest.Annotate(printer.Encode(Page(copies[0], 32), 4)))
}

// TestGoldenVoid keeps both copies of the void's slip as paper shows them
// and the merchant copy's bytes, annotated: 交易类型 撤销 VOID, the
// void's own 凭证号 and 参考号, and the sale's as 原凭证号 and 原参考号.
func TestGoldenVoid(t *testing.T) {
	copies := Copies(sampleVoid())
	for _, s := range copies {
		golden.Check(t, filepath.Join("testdata", "void_"+string(s.Copy)+".golden"), Text(s, 32))
	}
	golden.Check(t, filepath.Join("testdata", "void_merchant.escpos.annotated.golden"), printertest.Annotate(printer.Encode(Page(copies[0], 32), 4)))
}

// TestCopiesField44: the issuer and acquirer lines print field 44's codes
// trimmed, and are left out when the host sent none; nothing names
// UnionPay, the network, as the acquiring bank.
func TestCopiesField44(t *testing.T) {
	for _, r := range []provisioning.Receipt{sampleReceipt(), sampleVoid()} {
		text := Text(Copies(r)[0], 32)
		if !strings.Contains(text, "发卡行 ISSUER:          01040000\n") || !strings.Contains(text, "收单行 ACQUIRER:        48020000\n") {
			t.Errorf("%s slip lacks field 44's codes:\n%s", r.Kind, text)
		}
		r.Txn.Issuer, r.Txn.Acquirer = "", " "
		for _, s := range Copies(r) {
			text := Text(s, 32)
			if strings.Contains(text, "发卡行") || strings.Contains(text, "收单行") || strings.Contains(text, "UNIONPAY") {
				t.Errorf("%s %s copy without field 44 prints an issuer or acquirer:\n%s", r.Kind, s.Copy, text)
			}
		}
	}
}

// TestVoidSlip: the void's copies name the sale they cancel and the void's
// own numbers; the card shows first 6 and last 4 only, even when the record
// held more; a sale's slip names no original.
func TestVoidSlip(t *testing.T) {
	r := sampleVoid()
	r.Txn.Masked = "6217900000000000120" // a full PAN by mistake
	copies := Copies(r)
	if len(copies) != 2 || copies[0].Copy != Merchant || copies[1].Copy != Cardholder {
		t.Fatalf("copies %+v", copies)
	}
	for _, s := range copies {
		text := Text(s, 32)
		for _, want := range []string{
			"交易类型 TRANS TYPE:   撤销 VOID\n",
			"凭证号 VOUCHER NO.:       000018\n",
			"参考号 REFER NO.:   261127123457\n",
			"原凭证号 ORIG TRACE:      000017\n",
			"原参考号 ORIG REF:  261127123456\n",
			"RMB 0.01\n",
			"621790*********0120 /I\n",
		} {
			if !strings.Contains(text, want) {
				t.Errorf("%s copy lacks %q:\n%s", s.Copy, want, text)
			}
		}
		if strings.Contains(text, "6217900000000000120") {
			t.Errorf("%s copy prints the full PAN:\n%s", s.Copy, text)
		}
	}
	sale := sampleReceipt()
	sale.Txn.OrigSTAN, sale.Txn.OrigRRN = 3, "261127000003"
	if text := Text(Copies(sale)[0], 32); strings.Contains(text, "原凭证号") || strings.Contains(text, "原参考号") {
		t.Errorf("a sale's slip names an original:\n%s", text)
	}
}

// emphasised lists the text of the page's runs in emphasis and fails on a
// run in any format but emphasis or normal text.
func emphasised(t *testing.T, p printer.Page) []string {
	t.Helper()
	var out []string
	for _, l := range p.Lines {
		for _, r := range l.Runs {
			switch f := r.Format; {
			case f.Bold && max(1, f.Height) == 2 && max(1, f.Width) == 1:
				out = append(out, strings.TrimSpace(r.Text))
			case f.Bold || max(1, f.Height) != 1 || max(1, f.Width) != 1:
				t.Errorf("run %q in %+v", r.Text, r.Format)
			}
		}
	}
	return out
}

// TestPrintedEmphasis decodes each copy as the printer receives it: the
// text is the slip's, and the title and the amount come back bold and double
// height, every other line plain.
func TestPrintedEmphasis(t *testing.T) {
	for _, s := range Copies(sampleReceipt()) {
		pages := printer.DecodePages(printer.Encode(Page(s, 32), 4))
		if len(pages) != 1 || !pages[0].Cut {
			t.Fatalf("%s copy: %d pages", s.Copy, len(pages))
		}
		if want := Text(s, 32) + "\n\n\n\n"; pages[0].Text() != want {
			t.Errorf("%s copy: text\n%s\nwant\n%s", s.Copy, pages[0].Text(), want)
		}
		if got, want := emphasised(t, pages[0]), []string{"银联POS签购单", "POS SALES SLIP", "RMB 0.01"}; !slices.Equal(got, want) {
			t.Errorf("%s copy: emphasised %q, want %q", s.Copy, got, want)
		}
	}
}

// TestEmphasisByMeaning: what stands out is the title and the amount because
// of what they are, not what they say. A reference that reads like the
// amount label followed by an IC line that reads like the amount stays
// plain; a title wrapped on narrow paper stands out on all its lines.
func TestEmphasisByMeaning(t *testing.T) {
	s := sale(Merchant)
	s.Reference = "金额 AMOUNT:"
	s.ICLines = []string{provisioning.FormatRMB(s.Amount), titleEN}
	if got, want := emphasised(t, Page(s, 32)), []string{titleCN, titleEN, "RMB 0.01"}; !slices.Equal(got, want) {
		t.Errorf("emphasised %q, want %q", got, want)
	}
	if got, want := strings.Join(emphasised(t, Page(s, 10)), ""), "银联POS签购单POSSALESSLIPRMB0.01"; strings.ReplaceAll(got, " ", "") != want {
		t.Errorf("at 10 columns: emphasised %q", got)
	}
}

func newPrinter(d *printertest.Device) *Printer {
	return &Printer{Driver: printer.New(d, printer.Options{Now: new(printertest.StepClock).Now}), Width: 32}
}

func TestPrintReceipt(t *testing.T) {
	d := &printertest.Device{}
	p := newPrinter(d)
	if err := p.SelfTest(context.Background()); err != nil {
		t.Fatal(err)
	}
	r := sampleReceipt()
	if err := p.PrintReceipt(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	texts := d.Texts()
	copies := Copies(r)
	if len(texts) != len(copies) {
		t.Fatalf("%d pages", len(texts))
	}
	for i, s := range copies {
		if want := Text(s, 32) + "\n\n\n\n"; texts[i] != want {
			t.Errorf("%s copy printed\n%s\nwant\n%s", s.Copy, texts[i], want)
		}
	}
	if !strings.Contains(texts[0], "商户存根") || !strings.Contains(texts[1], "持卡人存根") {
		t.Errorf("copies out of order: %q", texts)
	}
}

// TestPrintReceiptConditions: a printer that is not ready stops the receipt
// before the first copy, with an error that names the copy and carries the
// driver's failure code for the installer's screen.
func TestPrintReceiptConditions(t *testing.T) {
	for _, tc := range []struct {
		status printer.Status
		silent bool
		code   string
	}{
		{printer.Status{PaperEnd: true}, false, "E_PAPER_END"},
		{printer.Status{CoverOpen: true}, false, "E_COVER_OPEN"},
		{printer.Status{Offline: true}, false, "E_PRINTER_OFFLINE"},
		{printer.Status{Fault: true}, false, "E_PRINTER_FAULT"},
		{printer.Status{}, true, "E_PRINTER_NO_ANSWER"},
	} {
		t.Run(tc.code, func(t *testing.T) {
			d := &printertest.Device{Status: tc.status, Silent: tc.silent}
			p := newPrinter(d)
			if err := p.SelfTest(context.Background()); err == nil {
				t.Error("self test passed")
			}
			err := p.PrintReceipt(context.Background(), sampleReceipt())
			var coded provisioning.CodedError
			if !errors.As(err, &coded) || coded.FailureCode() != tc.code {
				t.Fatalf("err = %v, want code %s", err, tc.code)
			}
			var se *printer.StatusError
			if !errors.As(err, &se) || se.When != "before" || !strings.HasPrefix(err.Error(), "receipt: merchant copy: printer: ") {
				t.Errorf("err = %v", err)
			}
			if len(d.Pages()) != 0 {
				t.Errorf("printed %d pages with the printer not ready", len(d.Pages()))
			}
		})
	}
}

// TestPaperOutMidSlip runs out of paper in the middle of the merchant copy:
// the receipt fails after that copy, and the retry after loading paper prints
// both copies marked as duplicates.
func TestPaperOutMidSlip(t *testing.T) {
	d := &printertest.Device{PaperOutAfter: 10}
	p := newPrinter(d)
	r := sampleReceipt()
	err := p.PrintReceipt(context.Background(), r)
	var se *printer.StatusError
	if !errors.As(err, &se) || !errors.Is(err, printer.ErrPaperEnd) || se.When != "after" ||
		err.Error() != "receipt: merchant copy: printer: paper end: load paper (after printing)" {
		t.Fatalf("err = %v", err)
	}
	if len(d.Pages()) != 0 {
		t.Fatalf("a page came out: %q", d.Texts())
	}
	d.LoadPaper()
	r.Duplicate = true // as the flow sets it on the second attempt
	if err := p.PrintReceipt(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	texts := d.Texts()
	if len(texts) != 2 {
		t.Fatalf("%d pages", len(texts))
	}
	for _, pg := range texts {
		if !strings.Contains(pg, "重打印 DUPLICATED") {
			t.Errorf("reprint not marked:\n%s", pg)
		}
	}
}
