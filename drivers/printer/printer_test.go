package printer_test

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/posagent/posagent/drivers/printer"
	"github.com/posagent/posagent/drivers/printer/printertest"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current output")

// samplePage uses every style a page has: justifications, bold, sizes, a
// blank line fed in double height, Chinese and ASCII in one line.
func samplePage() printer.Page {
	return printer.Page{Lines: []printer.Line{
		{Align: printer.Center, Runs: []printer.Run{{Text: "标题 TITLE", Format: printer.Format{Bold: true, Height: 2}}}},
		{Runs: []printer.Run{{Text: "左 left "}, {Text: "粗 bold", Format: printer.Format{Bold: true}}}},
		{Align: printer.Right, Runs: []printer.Run{{Text: "右 right"}}},
		{Empty: printer.Format{Height: 2}},
		{Runs: []printer.Run{{Text: "宽 WIDE", Format: printer.Format{Width: 2, Height: 2}}}},
		{},
		{Runs: []printer.Run{{Text: "plain"}, {Text: ""}, {Text: " again"}}},
	}}
}

func newPrinter(d *printertest.Device) *printer.Printer {
	return printer.New(d, printer.Options{Now: new(printertest.StepClock).Now})
}

// golden compares got with testdata/name. It is this package's own: a
// driver's tests link nothing above drivers/, so the shared helper
// (agent/testkit/golden) is out of reach.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (run with -update after checking):\n got %q\nwant %q", name, got, want)
	}
}

// TestGoldenPage keeps the bytes of a page in every style, and a readable
// twin of them.
func TestGoldenPage(t *testing.T) {
	b := printer.Encode(samplePage(), printer.DefaultFeed)
	golden(t, "page.golden", b)
	golden(t, "page.annotated.golden", []byte(printertest.Annotate(b)))
}

// TestEncodeRoundTrip decodes what Encode sends back into the page it was
// given: same lines, justifications and formats (sizes made explicit, the
// empty run dropped and the runs either side of it merged), then the fed lines
// and the cut.
func TestEncodeRoundTrip(t *testing.T) {
	pages := printer.DecodePages(printer.Encode(samplePage(), 3))
	if len(pages) != 1 || !pages[0].Cut {
		t.Fatalf("%d pages: %+v", len(pages), pages)
	}
	plain := printer.Format{Width: 1, Height: 1}
	want := []printer.Line{
		{Align: printer.Center, Runs: []printer.Run{{Text: "标题 TITLE", Format: printer.Format{Bold: true, Width: 1, Height: 2}}}},
		{Runs: []printer.Run{{"左 left ", plain}, {"粗 bold", printer.Format{Bold: true, Width: 1, Height: 1}}}},
		{Align: printer.Right, Runs: []printer.Run{{"右 right", plain}}},
		{Empty: printer.Format{Width: 1, Height: 2}},
		{Runs: []printer.Run{{"宽 WIDE", printer.Format{Width: 2, Height: 2}}}},
		{Empty: plain},
		{Runs: []printer.Run{{"plain again", plain}}},
		{Empty: plain}, {Empty: plain}, {Empty: plain}, // the feed, in normal text
	}
	if got := pages[0].Lines; !reflect.DeepEqual(got, want) {
		t.Errorf("decoded\n%+v\nwant\n%+v", got, want)
	}
}

func TestEncodeSwitchesOnlyAtChanges(t *testing.T) {
	big := printer.Format{Bold: true, Height: 2}
	p := printer.Page{Lines: []printer.Line{{Runs: []printer.Run{{Text: "a", Format: big}}}, {Runs: []printer.Run{{Text: "b", Format: big}}}, {Runs: []printer.Run{{Text: "c"}}}}}
	want := []byte{printer.ESC, '@', printer.ESC, 'a', 0, printer.ESC, 'E', 1, printer.GS, '!', 0x01, 'a', printer.LF, 'b', printer.LF, printer.ESC, 'E', 0, printer.GS, '!', 0x00, 'c', printer.LF,
		printer.ESC, 'd', 4, printer.GS, 'V', 1}
	if got := printer.Encode(p, 4); !bytes.Equal(got, want) {
		t.Errorf("got  % x\nwant % x", got, want)
	}
	// A page ending in a format returns to normal text before the feed.
	p.Lines = p.Lines[:1]
	if got := printer.Encode(p, 4); !bytes.HasSuffix(got, []byte{'a', printer.LF, printer.ESC, 'E', 0, printer.GS, '!', 0, printer.ESC, 'd', 4, printer.GS, 'V', 1}) {
		t.Errorf("got % x", got)
	}
}

func TestEncoder(t *testing.T) {
	var e printer.Encoder
	got := e.Init().Align(printer.Center).Bold(true).Size(2, 2).Text("银联 A\x1bB").LF().Size(9, 0).Feed(300).Cut().Bytes()
	want := []byte{printer.ESC, '@', printer.ESC, 'a', 1, printer.ESC, 'E', 1, printer.GS, '!', 0x11,
		printer.FS, '&', 0xD2, 0xF8, 0xC1, 0xAA, printer.FS, '.', ' ', 'A', '?', 'B', printer.LF, printer.GS, '!', 0x70,
		printer.ESC, 'd', 255, printer.GS, 'V', 1}
	if !bytes.Equal(got, want) {
		t.Errorf("got  % x\nwant % x", got, want)
	}
}

func TestPrint(t *testing.T) {
	d := &printertest.Device{}
	p := newPrinter(d)
	if err := p.SelfTest(context.Background()); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := p.Print(context.Background(), samplePage()); err != nil {
			t.Fatal(err)
		}
	}
	want := samplePage()
	texts := d.Texts()
	if len(texts) != 2 || texts[0] != texts[1] || !strings.HasPrefix(texts[0], "标题 TITLE\n左 left 粗 bold\n") {
		t.Fatalf("pages: %q (want %d lines each)", texts, len(want.Lines)+printer.DefaultFeed)
	}
	// Each page is framed by status requests (DLE EOT 1, 2, 4) before and after.
	query := string([]byte{printer.DLE, printer.EOT, 1, printer.DLE, printer.EOT, 2, printer.DLE, printer.EOT, 4})
	w := string(d.Written())
	page := string(printer.Encode(samplePage(), printer.DefaultFeed))
	if want := query + query + page + query + query + page + query; w != want {
		t.Errorf("written\n%q\nwant\n%q", w, want)
	}
}

func TestStatusErrors(t *testing.T) {
	tests := []struct {
		name   string
		status printer.Status
		silent bool
		want   error
		code   string
	}{
		{"paper end", printer.Status{PaperEnd: true}, false, printer.ErrPaperEnd, "E_PAPER_END"},
		{"cover open", printer.Status{CoverOpen: true}, false, printer.ErrCoverOpen, "E_COVER_OPEN"},
		{"offline", printer.Status{Offline: true}, false, printer.ErrOffline, "E_PRINTER_OFFLINE"},
		{"fault", printer.Status{Fault: true}, false, printer.ErrFault, "E_PRINTER_FAULT"},
		{"no answer", printer.Status{}, true, printer.ErrNoResponse, "E_PRINTER_NO_ANSWER"},
		{"near end prints", printer.Status{PaperNearEnd: true}, false, nil, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := &printertest.Device{Status: tc.status, Silent: tc.silent}
			err := newPrinter(d).Print(context.Background(), samplePage())
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if tc.want == nil {
				return
			}
			var se *printer.StatusError
			if !errors.As(err, &se) || se.When != "before" || !strings.HasSuffix(err.Error(), "(before printing)") {
				t.Errorf("err = %#v", err)
			}
			var coded interface{ FailureCode() string }
			if !errors.As(err, &coded) || coded.FailureCode() != tc.code {
				t.Errorf("failure code of %v: want %s", err, tc.code)
			}
			if len(d.Pages()) != 0 || bytes.Contains(d.Written(), []byte{printer.GS, 'V'}) {
				t.Errorf("printed with the printer not ready")
			}
		})
	}
}

// TestPaperOutMidPage runs out of paper in the middle of a page: the check
// after it fails, the page is lost, and once paper is loaded the next
// page prints.
func TestPaperOutMidPage(t *testing.T) {
	d := &printertest.Device{PaperOutAfter: 3}
	p := newPrinter(d)
	err := p.Print(context.Background(), samplePage())
	var se *printer.StatusError
	if !errors.As(err, &se) || !errors.Is(err, printer.ErrPaperEnd) || se.When != "after" || !se.Status.PaperEnd {
		t.Fatalf("err = %v", err)
	}
	if len(d.Pages()) != 0 {
		t.Fatalf("a page came out: %q", d.Texts())
	}
	if err := p.Print(context.Background(), samplePage()); !errors.Is(err, printer.ErrPaperEnd) {
		t.Fatalf("no paper, second page: %v", err)
	}
	d.LoadPaper()
	if err := p.Print(context.Background(), samplePage()); err != nil {
		t.Fatal(err)
	}
	if len(d.Pages()) != 1 {
		t.Fatalf("%d pages", len(d.Pages()))
	}
}

// writeFails is a line whose writes fail, as a serial port unplugged.
type writeFails struct{ *printertest.Device }

func (w writeFails) Write(p []byte) (int, error) {
	if bytes.Contains(p, []byte{printer.GS, 'V'}) {
		return 0, os.ErrClosed
	}
	return w.Device.Write(p)
}

func TestPrintWriteError(t *testing.T) {
	d := &printertest.Device{}
	err := printer.New(writeFails{d}, printer.Options{}).Print(context.Background(), samplePage())
	if !errors.Is(err, os.ErrClosed) || !strings.HasPrefix(err.Error(), "printer: write: ") {
		t.Fatalf("err = %v", err)
	}
}

// noisy is a line that sends bytes which are not status answers first.
type noisy struct {
	*printertest.Device
	noise []byte
}

func (n *noisy) Read(p []byte) (int, error) {
	if len(n.noise) > 0 {
		k := copy(p, n.noise)
		n.noise = n.noise[k:]
		return k, nil
	}
	return n.Device.Read(p)
}

func TestStatusSkipsNoise(t *testing.T) {
	d := &printertest.Device{Status: printer.Status{PaperNearEnd: true}}
	s, err := printer.New(&noisy{d, []byte{0xFF, 0x00}}, printer.Options{}).Status(context.Background())
	if err != nil || !s.PaperNearEnd || s.Err() != nil {
		t.Fatalf("%+v %v", s, err)
	}
}

func TestStatusCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := newPrinter(&printertest.Device{}).Status(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
}

func TestDecodeStatus(t *testing.T) {
	tests := []struct {
		n, b byte
		want printer.Status
		err  bool
	}{
		{1, 0x12, printer.Status{}, false},
		{1, 0x1A, printer.Status{Offline: true}, false},
		{2, 0x16, printer.Status{CoverOpen: true}, false},
		{2, 0x32, printer.Status{PaperStop: true}, false},
		{2, 0x52, printer.Status{Fault: true}, false},
		{3, 0x1A, printer.Status{Fault: true}, false},
		{4, 0x1E, printer.Status{PaperNearEnd: true}, false},
		{4, 0x72, printer.Status{PaperEnd: true}, false},
		{4, 0x7E, printer.Status{PaperEnd: true, PaperNearEnd: true}, false},
		{1, 0x00, printer.Status{}, true},
		{1, 0x93, printer.Status{}, true},
		{9, 0x12, printer.Status{}, true},
	}
	for _, tc := range tests {
		var s printer.Status
		err := printer.DecodeStatus(&s, tc.n, tc.b)
		if (err != nil) != tc.err || s != tc.want {
			t.Errorf("DLE EOT %d answer %#x: %+v %v", tc.n, tc.b, s, err)
		}
		if err != nil && !errors.Is(err, printer.ErrBadStatus) {
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
		var s printer.Status
		err := printer.DecodeStatus(&s, n, b)
		valid := b&0x93 == 0x12 && (n >= 1 && n <= 4)
		if (err == nil) != valid {
			t.Fatalf("DLE EOT %d answer %#x: err %v", n, b, err)
		}
		// Every bit of the offline-cause answer means something: it round-trips.
		if err == nil && n == 2 {
			if got := printer.EncodeStatus(s, n); got != b {
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
	f.Add(printer.Encode(samplePage(), printer.DefaultFeed))
	f.Fuzz(func(t *testing.T, b []byte) {
		var pages []string
		var formatted []printer.Page
		d := printer.Decoder{Cut: func(p string) { pages = append(pages, p) }, Query: func(byte) {},
			CutPage: func(p printer.Page) { formatted = append(formatted, p) }}
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
				if l.Align > printer.Right {
					t.Fatalf("bad alignment %d", l.Align)
				}
			}
		}
	})
}

// FuzzEncode prints a line of arbitrary text in an arbitrary format and
// justification and decodes it back: one line, the same format and
// justification, the text as the printer prints it (every character that is
// not a control character as itself, the rest as '?'; private use characters
// as some private use character), then the feed.
func FuzzEncode(f *testing.F) {
	f.Add("银联 UnionPay\x1b@", true, uint8(2), uint8(1), uint8(1))
	f.Fuzz(func(t *testing.T, text string, bold bool, width, height, align uint8) {
		format := printer.Format{Bold: bold, Width: int(width % 10), Height: int(height % 10)}
		line := printer.Line{Align: printer.Align(align % 4), Runs: []printer.Run{{Text: text, Format: format}}}
		pages := printer.DecodePages(printer.Encode(printer.Page{Lines: []printer.Line{line}}, 1))
		if len(pages) != 1 || !pages[0].Cut || len(pages[0].Lines) != 2 {
			t.Fatalf("%q decoded as %+v", text, pages)
		}
		var want []rune
		for _, r := range text {
			if r < 0x20 || r == 0x7F || (r >= 0x80 && r < 0xA0) || r == utf8.RuneError {
				r = '?'
			}
			want = append(want, r)
		}
		got := pages[0].Lines[0]
		printed := []rune(got.Text())
		same := len(printed) == len(want)
		for i := 0; same && i < len(want); i++ {
			// Private use characters have no meaning to agree on: GB18030
			// maps some of them to others' codes.
			same = printed[i] == want[i] || unicode.Is(unicode.Co, want[i])
		}
		if !same {
			t.Fatalf("%q printed as %q", text, got.Text())
		}
		wantAlign := line.Align
		if wantAlign > printer.Right {
			wantAlign = printer.Left
		}
		if text != "" {
			norm := printer.Format{Bold: bold, Width: max(1, min(format.Width, 8)), Height: max(1, min(format.Height, 8))}
			if len(got.Runs) != 1 || got.Runs[0].Format != norm || got.Align != wantAlign {
				t.Fatalf("%q in %+v %v printed as %+v", text, format, line.Align, got)
			}
		}
		if feed := pages[0].Lines[1]; len(feed.Runs) != 0 || feed.Height() != 1 {
			t.Fatalf("feed %+v", feed)
		}
	})
}
