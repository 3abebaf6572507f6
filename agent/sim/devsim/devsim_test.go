package devsim

import (
	"context"
	"errors"
	"fmt"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/posagent/posagent/agent/receipt"
	"github.com/posagent/posagent/agent/sim/slipimage"
	"github.com/posagent/posagent/drivers/magstripe"
	"github.com/posagent/posagent/drivers/printer"
	"github.com/posagent/posagent/drivers/serialport"
	"github.com/posagent/posagent/drivers/serialport/serialporttest"
	"github.com/posagent/posagent/provisioning"
)

var now = time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC)

// open opens link through tarm/serial as the agent does, reporting presence
// changes on the returned channel.
func open(t *testing.T, ctx context.Context, link string) (*serialport.Port, <-chan bool) {
	t.Helper()
	return serialporttest.Open(t, ctx, serialport.Config{Device: link, Baud: 9600})
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestMagReaderThroughSerial(t *testing.T) {
	ctx := testCtx(t)
	dir := t.TempDir()
	emu, err := NewMagReader(filepath.Join(dir, "ttyMSR"), magstripe.MagTek)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { emu.Close() })
	port, present := open(t, ctx, emu.Path())
	var field35 int
	r := magstripe.NewReader(port, magstripe.Config{Framing: magstripe.MagTek, Now: func() time.Time { return now },
		Sensitive: func(s magstripe.Sensitive) { field35 = len(s.Track2) }})

	steps := []struct {
		name  string
		send  func() error
		check func(magstripe.Swipe, error) bool
	}{
		{"good card", func() error { return emu.SwipeNamed("good") },
			func(s magstripe.Swipe, err error) bool {
				return err == nil && s.PAN.Masked() == "621790*********0120" && s.Name == "ZHANG/SAN" && s.Track3 && field35 > 0
			}},
		{"chip card refused", func() error { return emu.SwipeNamed("chip") },
			func(_ magstripe.Swipe, err error) bool { return errors.Is(err, magstripe.ErrChipCard) }},
		{"damaged tracks", func() error { return emu.SwipeNamed("damaged") },
			func(_ magstripe.Swipe, err error) bool { return errors.Is(err, magstripe.ErrBadSwipe) }},
		{"track 2 unreadable", func() error { return emu.SwipeNamed("track2") },
			func(_ magstripe.Swipe, err error) bool { return errors.Is(err, magstripe.ErrBadSwipe) }},
		{"expired", func() error { return emu.SwipeNamed("expired") },
			func(_ magstripe.Swipe, err error) bool { return errors.Is(err, magstripe.ErrExpired) }},
		{"garbage between frames", func() error {
			if err := emu.Send([]byte("\x00\xffnoise\x02\x1b;62179000")); err != nil { // noise and a cut-off frame
				return err
			}
			return emu.SwipeNamed("good")
		}, func(s magstripe.Swipe, err error) bool { return err == nil && !s.PAN.IsZero() }},
	}
	for _, st := range steps {
		if err := st.send(); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		sw, err := r.Swipe(ctx, false)
		if !st.check(sw, err) {
			t.Fatalf("%s: %+v, %v", st.name, sw, err)
		}
	}

	// Unplugged and back: the reader loop keeps going across the gap.
	serialporttest.Replug(t, ctx, emu, present, func() error {
		sw, err := r.Swipe(ctx, false)
		if err == nil && sw.PAN.IsZero() {
			err = errors.New("empty swipe")
		}
		return err
	}, func() error { return emu.SwipeNamed("good") })
}

func sampleReceipt() provisioning.Receipt {
	return provisioning.Receipt{
		Merchant: provisioning.Merchant{MID: "898310048160001", Name: "测试商户 TEST MERCHANT"},
		Terminal: provisioning.Terminal{TID: "10000001", MID: "898310048160001"},
		Txn: provisioning.TxnRecord{STAN: 17, Batch: "000001", Amount: 1, RC: "00", RRN: "261127123456",
			AuthCode: "A1B2C3", Masked: "621790*********0120", Time: now, Expiry: "3012", AID: "A000000333010101",
			Issuer: "01040000", Acquirer: "48020000"},
		Kind: "sale", Test: true,
	}
}

func newPrinter(t *testing.T, ctx context.Context) (*Printer, *receipt.Printer, string) {
	t.Helper()
	dir := t.TempDir()
	emu, err := NewPrinter(filepath.Join(dir, "ttyPRN"), dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { emu.Close() })
	port, _ := open(t, ctx, emu.Path())
	return emu, &receipt.Printer{Driver: printer.New(port, printer.Options{})}, dir
}

// pictures loads the slip renderer, or skips (fails under `make test`, which
// installs the font and sets POSAGENT_REQUIRE_BENCH=1).
func pictures(t *testing.T) *slipimage.Renderer {
	t.Helper()
	r, err := slipimage.New(slipimage.Options{})
	if errors.Is(err, slipimage.ErrNoFont) && os.Getenv("POSAGENT_REQUIRE_BENCH") != "1" {
		t.Skipf("%v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestPrinterPictureThroughSerial prints a receipt through tarm/serial to
// the emulator, which writes each copy as text and as a PNG of the paper.
func TestPrinterPictureThroughSerial(t *testing.T) {
	ctx := testCtx(t)
	r := pictures(t)
	emu, prn, dir := newPrinter(t, ctx)
	emu.SetPictures(r)
	if err := prn.PrintReceipt(ctx, sampleReceipt()); err != nil {
		t.Fatal(err)
	}
	if _, err := emu.WaitSlips(ctx, 2); err != nil {
		t.Fatal(err)
	}
	if err := emu.WaitPictures(ctx); err != nil {
		t.Fatal(err)
	}
	for n := 1; n <= 2; n++ {
		path := emu.Picture(n)
		if want := filepath.Join(dir, fmt.Sprintf("slip-%03d.png", n)); path != want {
			t.Fatalf("picture %d at %q, want %q", n, path, want)
		}
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(f)
		f.Close()
		if err != nil || img.Bounds().Dx() != r.Width() || img.Bounds().Dy() < 40*(slipimage.CellHeight+6) {
			t.Errorf("picture %d: %v, %v", n, err, img.Bounds())
		}
	}
	if emu.Picture(3) != "" || emu.Err() != nil {
		t.Errorf("picture 3 %q, err %v", emu.Picture(3), emu.Err())
	}
}

func TestPrinterThroughSerial(t *testing.T) {
	ctx := testCtx(t)
	emu, prn, dir := newPrinter(t, ctx)
	if err := prn.SelfTest(ctx); err != nil {
		t.Fatal(err)
	}
	r := sampleReceipt()
	if err := prn.PrintReceipt(ctx, r); err != nil {
		t.Fatal(err)
	}
	slips, err := emu.WaitSlips(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range receipt.Copies(r) {
		if want := receipt.Text(s, 32); slips[i] != want {
			t.Errorf("%s copy decoded as\n%s\nwant\n%s", s.Copy, slips[i], want)
		}
	}
	if b, err := os.ReadFile(filepath.Join(dir, "slip-001.txt")); err != nil || string(b) != slips[0] {
		t.Errorf("slip file: %v", err)
	}
	if emu.Picture(1) != "" {
		t.Error("a picture without SetPictures")
	}
	emu.SetCoverOpen(true)
	if err := prn.SelfTest(ctx); !errors.Is(err, printer.ErrCoverOpen) {
		t.Errorf("cover open: %v", err)
	}
}

func TestPrinterPaperOutMidSlip(t *testing.T) {
	ctx := testCtx(t)
	emu, prn, _ := newPrinter(t, ctx)
	emu.PaperOutAfter(12)
	r := sampleReceipt()
	err := prn.PrintReceipt(ctx, r)
	if !errors.Is(err, printer.ErrPaperEnd) {
		t.Fatalf("err = %v", err)
	}
	if n := len(emu.Slips()); n != 0 {
		t.Fatalf("%d slips came out", n)
	}
	// "Paper loaded": the flow retries with the duplicate marking.
	emu.SetPaperOut(false)
	r.Duplicate = true
	if err := prn.PrintReceipt(ctx, r); err != nil {
		t.Fatal(err)
	}
	slips, err := emu.WaitSlips(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range receipt.Copies(r) {
		if slips[i] != receipt.Text(s, 32) || !strings.Contains(slips[i], "重打印 DUPLICATED") {
			t.Errorf("reprint %d:\n%s", i, slips[i])
		}
	}
}

func TestOnSlip(t *testing.T) {
	ctx := testCtx(t)
	emu, prn, _ := newPrinter(t, ctx)
	got := make(chan int, 2)
	emu.OnSlip(func(s PrintedSlip) { got <- s.N })
	if err := prn.PrintReceipt(ctx, sampleReceipt()); err != nil {
		t.Fatal(err)
	}
	if a, b := <-got, <-got; a != 1 || b != 2 {
		t.Errorf("slips %d, %d", a, b)
	}
}

// TestPrinterAtLineSpeed: on a 4800-baud line a copy takes about three
// seconds to cross, so the status request queued behind it is answered late.
// A driver that knows the line's speed waits for it and prints; one that does
// not gives up after its status timeout, as a driver once did on such
// printers. The line time is three times the status timeout, so the two
// cases differ by the baud alone however loaded the machine (under qemu-arm
// with the CI's other jobs, a 300 ms margin once ran out).
func TestPrinterAtLineSpeed(t *testing.T) {
	const lineBaud = 4800
	ctx := testCtx(t)
	r := sampleReceipt()
	for _, tc := range []struct {
		name string
		baud int // what the driver is told
		ok   bool
	}{{"speed known", lineBaud, true}, {"speed unknown", 0, false}} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			emu, err := NewPrinter(filepath.Join(dir, "ttyPRN"), dir)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { emu.Close() })
			emu.SetBaud(lineBaud)
			port, _ := open(t, ctx, emu.Path())
			prn := &receipt.Printer{Driver: printer.New(port, printer.Options{Baud: tc.baud, StatusTimeout: time.Second})}
			err = prn.PrintReceipt(ctx, r)
			if tc.ok != (err == nil) {
				t.Fatalf("PrintReceipt = %v", err)
			}
			if !tc.ok && !errors.Is(err, printer.ErrNoResponse) {
				t.Fatalf("PrintReceipt = %v, want no response", err)
			}
			if tc.ok {
				n := len(printer.Encode(receipt.Page(receipt.Copies(r)[0], 32), printer.DefaultFeed))
				if lt := emu.LineTime(); lt < time.Duration(n)*10*time.Second/lineBaud {
					t.Errorf("line time %v for 2 copies of %d bytes at %d baud", lt, n, lineBaud)
				}
			}
		})
	}
}
