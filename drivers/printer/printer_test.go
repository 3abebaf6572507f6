package printer

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/posagent/posagent/agent/receipt"
	"github.com/posagent/posagent/agent/testkit/golden"
	"github.com/posagent/posagent/provisioning"
)

func sampleReceipt() provisioning.Receipt {
	return provisioning.Receipt{
		Merchant: provisioning.Merchant{MID: "898310048160001", Name: "测试商户 TEST MERCHANT"},
		Terminal: provisioning.Terminal{TID: "10000001", MID: "898310048160001"},
		Txn: provisioning.TxnRecord{STAN: 17, Batch: "000001", Amount: 1, RC: "00", RRN: "261127123456",
			AuthCode: "A1B2C3", Masked: "621790*********0120", Time: time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC), Expiry: "3012", AID: "A000000333010101", Label: "UnionPay Debit"},
		Kind: "sale", Test: true,
	}
}

// line is a fake printer on the other end of the line: it decodes what is
// written, answers status requests from its state, and loses what is printed
// while the paper is out.
type line struct {
	mu      sync.Mutex
	dec     Decoder
	status  Status
	answers []byte
	pages   []string
	// outAfter, when > 0, runs the paper out after that many LFs.
	outAfter int
	lfs      int
	silent   bool // answers nothing
}

func newLine() *line {
	l := &line{}
	l.dec.Query = func(n byte) {
		if !l.silent {
			l.answers = append(l.answers, EncodeStatus(l.status, n))
		}
	}
	l.dec.Cut = func(page string) {
		if !l.status.PaperEnd {
			l.pages = append(l.pages, page)
		}
	}
	return l
}

func (l *line) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, c := range p {
		if c == LF && l.outAfter > 0 {
			if l.lfs++; l.lfs == l.outAfter {
				l.status.PaperEnd = true
			}
		}
		l.dec.Write([]byte{c})
	}
	return len(p), nil
}

type timeout struct{}

func (timeout) Error() string { return "timeout" }
func (timeout) Timeout() bool { return true }

func (l *line) Read(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.answers) == 0 {
		return 0, timeout{}
	}
	n := copy(p, l.answers)
	l.answers = l.answers[n:]
	return n, nil
}

func (l *line) setPaper(in bool) {
	l.mu.Lock()
	l.status.PaperEnd = !in
	l.outAfter = 0
	l.mu.Unlock()
}

// stepClock advances a step on every reading, so a timeout passes without waiting.
type stepClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *stepClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(100 * time.Millisecond)
	return c.t
}

func newPrinter(l *line) *Printer {
	c := &stepClock{t: time.Unix(0, 0)}
	return New(l, Options{Now: c.now})
}

func TestGoldenSlip(t *testing.T) {
	for _, s := range receipt.Copies(sampleReceipt()) {
		golden.Check(t, filepath.Join("testdata", "sale_"+string(s.Copy)+".golden"), Encode(s, 32, 4))
	}
	r := sampleReceipt()
	r.Duplicate = true
	golden.Check(t, filepath.Join("testdata", "sale_merchant_duplicate.golden"), Encode(receipt.Copies(r)[0], 32, 4))
}

func TestEncoder(t *testing.T) {
	var e Encoder
	got := e.Init().Align(Center).Bold(true).Size(2, 2).Text("银联 A\x1bB").LF().Size(9, 0).Feed(300).Cut().Bytes()
	want := []byte{ESC, '@', ESC, 'a', 1, ESC, 'E', 1, GS, '!', 0x11,
		FS, '&', 0xD2, 0xF8, 0xC1, 0xAA, FS, '.', ' ', 'A', '?', 'B', LF, GS, '!', 0x70,
		ESC, 'd', 255, GS, 'V', 1}
	if !bytes.Equal(got, want) {
		t.Errorf("got  % x\nwant % x", got, want)
	}
}

// TestRoundTrip decodes a slip's ESC/POS back to the text agent/slip renders.
func TestRoundTrip(t *testing.T) {
	for _, s := range receipt.Copies(sampleReceipt()) {
		var pages []string
		d := Decoder{Cut: func(p string) { pages = append(pages, p) }}
		d.Write(Encode(s, 32, 4))
		want := receipt.Text(s, 32) + "\n\n\n\n"
		if len(pages) != 1 || pages[0] != want {
			t.Errorf("%s copy decodes to\n%s\nwant\n%s", s.Copy, pages, want)
		}
	}
}

func TestEmphasis(t *testing.T) {
	b := Encode(receipt.Copies(sampleReceipt())[0], 32, 4)
	on := string([]byte{ESC, 'E', 1, GS, '!', 0x01})
	if n := strings.Count(string(b), on); n != 2 {
		t.Errorf("%d emphasised blocks, want 2 (the title and the amount)", n)
	}
	if !strings.Contains(string(b), on+strings.Repeat(" ", 24)+"RMB 0.01\n") {
		t.Error("amount not emphasised")
	}
}

func TestPrintReceipt(t *testing.T) {
	l := newLine()
	p := newPrinter(l)
	if err := p.SelfTest(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := p.PrintReceipt(context.Background(), sampleReceipt()); err != nil {
		t.Fatal(err)
	}
	if len(l.pages) != 2 || !strings.Contains(l.pages[0], "商户存根") || !strings.Contains(l.pages[1], "持卡人存根") {
		t.Fatalf("pages: %q", l.pages)
	}
}

func TestStatusErrors(t *testing.T) {
	tests := []struct {
		name   string
		status Status
		silent bool
		want   error
	}{
		{"paper end", Status{PaperEnd: true}, false, ErrPaperEnd},
		{"cover open", Status{CoverOpen: true}, false, ErrCoverOpen},
		{"offline", Status{Offline: true}, false, ErrOffline},
		{"fault", Status{Fault: true}, false, ErrFault},
		{"no answer", Status{}, true, ErrNoResponse},
		{"near end prints", Status{PaperNearEnd: true}, false, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l := newLine()
			l.status, l.silent = tc.status, tc.silent
			err := newPrinter(l).PrintReceipt(context.Background(), sampleReceipt())
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			var se *StatusError
			if tc.want != nil && (!errors.As(err, &se) || se.Copy != receipt.Merchant || se.When != "before") {
				t.Errorf("err = %#v", err)
			}
			if tc.want != nil && len(l.pages) != 0 {
				t.Errorf("printed %d pages with the printer not ready", len(l.pages))
			}
		})
	}
}

// TestPaperOutMidSlip runs out of paper in the middle of the merchant copy:
// the job fails after that copy, and the retry after loading paper prints both
// copies marked as duplicates.
func TestPaperOutMidSlip(t *testing.T) {
	l := newLine()
	l.outAfter = 10
	p := newPrinter(l)
	r := sampleReceipt()
	err := p.PrintReceipt(context.Background(), r)
	var se *StatusError
	if !errors.As(err, &se) || !errors.Is(err, ErrPaperEnd) || se.Copy != receipt.Merchant || se.When != "after" {
		t.Fatalf("err = %v", err)
	}
	if len(l.pages) != 0 {
		t.Fatalf("a page came out: %q", l.pages)
	}
	l.setPaper(true)
	r.Duplicate = true // as the flow sets it on the second attempt
	if err := p.PrintReceipt(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	if len(l.pages) != 2 {
		t.Fatalf("%d pages", len(l.pages))
	}
	for _, pg := range l.pages {
		if !strings.Contains(pg, "重打印 DUPLICATED") {
			t.Errorf("reprint not marked:\n%s", pg)
		}
	}
}

func TestStatusSkipsNoise(t *testing.T) {
	l := newLine()
	l.answers = []byte{0xFF, 0x00} // not status bytes: skipped
	l.status.PaperNearEnd = true
	s, err := newPrinter(l).Status(context.Background())
	if err != nil || !s.PaperNearEnd || s.Err() != nil {
		t.Fatalf("%+v %v", s, err)
	}
}

func TestStatusCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	l := newLine()
	if _, err := newPrinter(l).Status(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
}

func TestDecodeStatus(t *testing.T) {
	tests := []struct {
		n, b byte
		want Status
		err  bool
	}{
		{1, 0x12, Status{}, false},
		{1, 0x1A, Status{Offline: true}, false},
		{2, 0x16, Status{CoverOpen: true}, false},
		{2, 0x32, Status{PaperStop: true}, false},
		{2, 0x52, Status{Fault: true}, false},
		{3, 0x1A, Status{Fault: true}, false},
		{4, 0x1E, Status{PaperNearEnd: true}, false},
		{4, 0x72, Status{PaperEnd: true}, false},
		{4, 0x7E, Status{PaperEnd: true, PaperNearEnd: true}, false},
		{1, 0x00, Status{}, true},
		{1, 0x93, Status{}, true},
		{9, 0x12, Status{}, true},
	}
	for _, tc := range tests {
		var s Status
		err := DecodeStatus(&s, tc.n, tc.b)
		if (err != nil) != tc.err || s != tc.want {
			t.Errorf("DLE EOT %d answer %#x: %+v %v", tc.n, tc.b, s, err)
		}
		if err != nil && !errors.Is(err, ErrBadStatus) {
			t.Errorf("error %v is not ErrBadStatus", err)
		}
	}
}

// FuzzDecodeStatus checks that status decoding never panics, accepts exactly
// the bytes with ESC/POS's fixed bits, and agrees with EncodeStatus. Seeds are
// in testdata/fuzz/FuzzDecodeStatus.
func FuzzDecodeStatus(f *testing.F) {
	f.Add(byte(4), byte(0x72))
	f.Fuzz(func(t *testing.T, n, b byte) {
		var s Status
		err := DecodeStatus(&s, n, b)
		valid := b&0x93 == 0x12 && (n >= 1 && n <= 4)
		if (err == nil) != valid {
			t.Fatalf("DLE EOT %d answer %#x: err %v", n, b, err)
		}
		// Every bit of the offline-cause answer means something: it round-trips.
		if err == nil && n == 2 {
			if got := EncodeStatus(s, n); got != b {
				t.Fatalf("round trip %#x -> %+v -> %#x", b, s, got)
			}
		}
		_ = s.Err()
	})
}

// FuzzDecoder feeds arbitrary bytes to the ESC/POS decoder the emulator uses:
// it must not panic, its pages are valid UTF-8, and the formatted lines hold
// the same text as the plain pages, with sizes in range. Seeds are in
// testdata/fuzz/FuzzDecoder.
func FuzzDecoder(f *testing.F) {
	f.Add(Encode(receipt.Copies(sampleReceipt())[0], 32, 4))
	f.Fuzz(func(t *testing.T, b []byte) {
		var pages []string
		var formatted []Page
		d := Decoder{Cut: func(p string) { pages = append(pages, p) }, Query: func(byte) {},
			CutPage: func(p Page) { formatted = append(formatted, p) }}
		d.Write(b)
		pages = append(pages, d.Page())
		formatted = append(formatted, d.Lines())
		for i, p := range pages {
			if !utf8.ValidString(p) {
				t.Fatalf("page is not UTF-8: %q", p)
			}
			if got := formatted[i].Text(); got != p {
				t.Fatalf("page %d: lines hold %q, text is %q", i, got, p)
			}
			for _, l := range formatted[i].Lines {
				for _, r := range l.Runs {
					if r.Width < 1 || r.Width > 8 || r.Height < 1 || r.Height > 8 || r.Text == "" {
						t.Fatalf("bad run %+v", r)
					}
				}
				if l.Align > Right {
					t.Fatalf("bad alignment %d", l.Align)
				}
			}
		}
	})
}
