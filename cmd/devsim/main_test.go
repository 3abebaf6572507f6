package main

import (
	"bufio"
	"context"
	"errors"
	"image/png"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/posagent/posagent/agent/receipt"
	"github.com/posagent/posagent/agent/sim/slipimage"
	"github.com/posagent/posagent/drivers/printer"
	"github.com/posagent/posagent/drivers/serialport"
	"github.com/posagent/posagent/provisioning"
)

func TestRun(t *testing.T) {
	var out strings.Builder
	in := strings.NewReader("swipe good\npaper out\nslips\nbogus\nquit\n")
	if err := run([]string{"-dir", t.TempDir(), "-png=false"}, in, &out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"ready", "swiped good", "paper out", "0 slips", "error: devsim: unknown command"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	if err := run(nil, strings.NewReader(""), &out); err == nil {
		t.Error("no -dir accepted")
	}
	// A font asked for by name that cannot be used stops devsim.
	bad := filepath.Join(t.TempDir(), "nosuch.ttc")
	if err := run([]string{"-dir", t.TempDir(), "-font", bad}, strings.NewReader(""), &out); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("-font %s: %v", bad, err)
	}
}

// TestSlipPictures runs devsim as a user does, prints a receipt to its
// printer through tarm/serial, and finds each copy in -slips as text and as
// a PNG picture.
func TestSlipPictures(t *testing.T) {
	if _, err := slipimage.New(slipimage.Options{}); errors.Is(err, slipimage.ErrNoFont) && os.Getenv("POSAGENT_REQUIRE_BENCH") != "1" {
		t.Skipf("%v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	dir, slips := t.TempDir(), filepath.Join(t.TempDir(), "out")
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := run([]string{"-dir", dir, "-slips", slips}, inR, outW)
		outW.CloseWithError(err)
		done <- err
	}()
	lines := make(chan string, 256)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(outR)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	waitFor := func(prefix string) string {
		t.Helper()
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatalf("devsim ended before %q: %v", prefix, <-done)
				}
				if strings.HasPrefix(l, prefix) {
					return l
				}
			case <-ctx.Done():
				t.Fatalf("no %q from devsim", prefix)
			}
		}
	}
	waitFor("ready")

	port, err := serialport.Open(ctx, serialport.Config{Device: filepath.Join(dir, "ttyPRN")}, serialport.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer port.Close()
	r := provisioning.Receipt{
		Merchant: provisioning.Merchant{MID: "898310048160001", Name: "测试商户 TEST MERCHANT"},
		Terminal: provisioning.Terminal{TID: "10000001", MID: "898310048160001"},
		Txn: provisioning.TxnRecord{STAN: 17, Batch: "000001", Amount: 1, RC: "00", RRN: "261127123456",
			AuthCode: "A1B2C3", Time: time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC), Masked: "621790*********0120", Expiry: "3012"},
		Kind: "sale", Test: true,
	}
	if err := (&receipt.Printer{Driver: printer.New(port, printer.Options{})}).PrintReceipt(ctx, r); err != nil {
		t.Fatal(err)
	}
	waitFor("slip 1 picture " + filepath.Join(slips, "slip-001.png"))
	waitFor("slip 2 picture " + filepath.Join(slips, "slip-002.png"))
	for _, name := range []string{"slip-001", "slip-002"} {
		text, err := os.ReadFile(filepath.Join(slips, name+".txt"))
		if err != nil || !strings.Contains(string(text), "银联POS签购单") {
			t.Errorf("%s.txt: %v", name, err)
		}
		f, err := os.Open(filepath.Join(slips, name+".png"))
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := png.DecodeConfig(f)
		f.Close()
		if err != nil || cfg.Width != 464 || cfg.Height < 1000 {
			t.Errorf("%s.png: %v %dx%d", name, err, cfg.Width, cfg.Height)
		}
	}
	if _, err := io.WriteString(inW, "quit\n"); err != nil {
		t.Fatal(err)
	}
	go func() {
		for range lines { // drain so devsim's last words do not block it
		}
	}()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
