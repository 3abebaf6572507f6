package magstripe

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

// Test cards. The PANs are Luhn-valid test numbers, not real cards.
const (
	testPAN = "6217900000000000120"
	t1Good  = "%B6217900000000000120^ZHANG/SAN^30121010000000000000?"
	t2Good  = ";6217900000000000120=30121010000000000?"
	t2Chip  = ";6217900000000000120=30122200000000000?"
	t2Fall6 = ";6217900000000000120=30126200000000000?"
	t3Good  = "+996217900000000000120=15615600000000000000030000000000000000000000=000000000000=0000000000000?"
)

var now = time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC)

func TestTestPANIsLuhnValid(t *testing.T) {
	tr, err := ParseTrack([]byte(t2Good), ParseOptions{Now: now})
	if err != nil || !tr.PAN.LuhnValid() {
		t.Fatalf("test track 2 does not parse: %v", err)
	}
}

func TestParseTrack(t *testing.T) {
	withLRC := func(track int, s string) string { return s + string(LRC(track, []byte(s))) }
	tests := []struct {
		name   string
		in     string
		opts   ParseOptions
		number int
		failed []Check
	}{
		{"track 1", t1Good, ParseOptions{Now: now}, 1, nil},
		{"track 2", t2Good, ParseOptions{Now: now}, 2, nil},
		{"track 3", t3Good, ParseOptions{}, 3, nil},
		{"track 3 with ;", ";" + t3Good[1:], ParseOptions{Track3: true}, 3, nil},
		{"track 2 with LRC", withLRC(2, t2Good), ParseOptions{LRC: true, Now: now}, 2, nil},
		{"track 1 with LRC", withLRC(1, t1Good), ParseOptions{LRC: true, Now: now}, 1, nil},
		{"LRC wrong", t2Good + "0", ParseOptions{LRC: true, Now: now}, 2, []Check{CheckLRC}},
		{"LRC missing", t2Good, ParseOptions{LRC: true, Now: now}, 2, []Check{CheckLRC}},
		{"byte after end sentinel", t2Good + "1", ParseOptions{Now: now}, 2, []Check{CheckSentinel}},
		{"no end sentinel", strings.TrimSuffix(t2Good, "?"), ParseOptions{Now: now}, 2, []Check{CheckSentinel}},
		{"no start sentinel", t2Good[1:], ParseOptions{}, 0, []Check{CheckSentinel}},
		{"empty", "", ParseOptions{}, 0, []Check{CheckSentinel}},
		{"track 2 too long", ";6217900000000000120=3012101" + strings.Repeat("0", 20) + "?", ParseOptions{Now: now}, 2, []Check{CheckLength}},
		{"track 2 letter", ";62179000000000001A5=30121010000000000?", ParseOptions{Now: now}, 2, []Check{CheckCharset, CheckPAN}},
		{"track 1 lower case", "%B6217900000000000120^zhang^30121010000000000000?", ParseOptions{Now: now}, 1, []Check{CheckCharset}},
		{"Luhn", ";6217900000000000126=30121010000000000?", ParseOptions{Now: now}, 2, []Check{CheckLuhn}},
		{"expired", ";6217900000000000120=26101010000000000?", ParseOptions{Now: now}, 2, []Check{CheckExpiry}},
		{"expires this month", ";6217900000000000120=26111010000000000?", ParseOptions{Now: now}, 2, nil},
		{"month 13", ";6217900000000000120=30131010000000000?", ParseOptions{Now: now}, 2, []Check{CheckExpiry}},
		{"no separator", ";62179000000000001203012101?", ParseOptions{Now: now}, 2, []Check{CheckPAN, CheckFormat}},
		{"short PAN", ";62179000=30121010000000000?", ParseOptions{Now: now}, 2, []Check{CheckPAN}},
		{"no service code", ";6217900000000000120=3012?", ParseOptions{Now: now}, 2, []Check{CheckServiceCode}},
		{"track 1 format code", "%A6217900000000000120^ZHANG/SAN^30121010000000000000?", ParseOptions{Now: now}, 1, []Check{CheckFormat}},
		{"track 1 one separator", "%B6217900000000000120^ZHANG/SAN 30121010000000000000?", ParseOptions{Now: now}, 1, []Check{CheckFormat}},
		{"track 1 name too long", "%B6217900000000000120^" + strings.Repeat("A", 27) + "^3012101?", ParseOptions{Now: now}, 1, []Check{CheckName}},
		{"track 3 letter", "+99A?", ParseOptions{}, 3, []Check{CheckCharset}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr, err := ParseTrack([]byte(tc.in), tc.opts)
			if tr.Number != tc.number {
				t.Errorf("track number %d, want %d", tr.Number, tc.number)
			}
			if !slices.Equal(tr.Failed, tc.failed) {
				t.Errorf("failed %v, want %v", tr.Failed, tc.failed)
			}
			if (err == nil) != (tc.failed == nil) {
				t.Fatalf("err = %v", err)
			}
			if err != nil {
				var te *TrackError
				if !errors.As(err, &te) || !errors.Is(err, checkErr[tc.failed[0]]) {
					t.Errorf("error %v does not match %v", err, checkErr[tc.failed[0]])
				}
				if strings.Contains(err.Error(), testPAN[6:15]) {
					t.Errorf("error leaks the PAN: %v", err)
				}
			}
		})
	}
}

func TestParseTrackFields(t *testing.T) {
	tr, err := ParseTrack([]byte(t1Good), ParseOptions{Now: now})
	if err != nil {
		t.Fatal(err)
	}
	if tr.PAN.Reveal() != testPAN || tr.Name != "ZHANG/SAN" || tr.Expiry != "3012" || tr.ServiceCode != "101" || tr.Chip() {
		t.Errorf("got %+v", tr)
	}
	if s := strings.Join([]string{tr.PAN.String(), tr.PAN.GoString()}, " "); strings.Contains(s, testPAN) {
		t.Errorf("PAN prints in full: %s", s)
	}
	tr, _ = ParseTrack([]byte(t2Chip), ParseOptions{Now: now})
	if !tr.Chip() {
		t.Error("service code 220 is not a chip card")
	}
}

// chunks is a reader that hands out its parts one Read at a time and then
// times out (as a serial port with a read timeout does), or ends.
type chunks struct {
	parts [][]byte
	end   error // returned when the parts are used up; nil means time out
}

type timeoutErr struct{}

func (timeoutErr) Error() string { return "timeout" }
func (timeoutErr) Timeout() bool { return true }

func (c *chunks) Read(p []byte) (int, error) {
	if len(c.parts) == 0 {
		if c.end != nil {
			return 0, c.end
		}
		return 0, timeoutErr{}
	}
	n := copy(p, c.parts[0])
	c.parts[0] = c.parts[0][n:]
	if len(c.parts[0]) == 0 {
		c.parts = c.parts[1:]
	}
	return n, nil
}

func stream(parts ...[]byte) *chunks { return &chunks{parts: parts, end: io.EOF} }

func reader(r io.Reader, f Framing) *Reader {
	return NewReader(r, Config{Framing: f, Now: func() time.Time { return now }})
}

func TestMagTekSwipes(t *testing.T) {
	ctx := context.Background()
	good := MagTek.Encode('0', t1Good, t2Good, t3Good)
	var partial = good[:20]
	in := stream(
		[]byte("noise\x00\xff"), partial, // a swipe cut off by a line glitch
		good[:7], good[7:], // one swipe split across reads
		[]byte("\r\x03\x02\x1b\r\x03"),           // framing without tracks
		MagTek.Encode('0', "%E?", t2Good, "+E?"), // MagTek's bad-track form
		MagTek.Encode('0', "E", t2Good),
	)
	r := reader(in, MagTek)
	for i := range 3 {
		sw, err := r.Swipe(ctx, false)
		if err != nil {
			t.Fatalf("swipe %d: %v", i, err)
		}
		if sw.PAN.Reveal() != testPAN || sw.Expiry != "3012" || sw.ServiceCode != "101" || sw.Fallback || sw.Field605() != "0" {
			t.Errorf("swipe %d: %+v", i, sw)
		}
		if i == 0 && (sw.Name != "ZHANG/SAN" || !sw.Track3 || sw.Status != '0') {
			t.Errorf("swipe 0: %+v", sw)
		}
	}
	if _, err := r.Swipe(ctx, false); !errors.Is(err, io.EOF) {
		t.Errorf("at the end: %v", err)
	}
	if r.Skipped() < 2 {
		t.Errorf("skipped %d frames, want at least 2", r.Skipped())
	}
}

func TestRefusals(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name     string
		frame    []byte
		fallback bool
		want     error
		also     error
	}{
		{"chip card", MagTek.Encode('0', t1Good, t2Chip), false, ErrChipCard, nil},
		{"chip card 6xx", MagTek.Encode('0', t2Fall6), false, ErrChipCard, nil},
		{"track 2 unreadable", MagTek.Encode('0', t1Good, "E", t3Good), false, ErrBadSwipe, nil},
		{"track 2 missing", MagTek.Encode('0', t1Good), false, ErrBadSwipe, nil},
		{"expired", MagTek.Encode('0', ";6217900000000000120=24011010000000000?"), false, ErrBadSwipe, ErrExpired},
		{"expired chip card with fallback", MagTek.Encode('0', ";6217900000000000120=24012010000000000?"), true, ErrBadSwipe, ErrExpired},
		{"Luhn", MagTek.Encode('0', ";6217900000000000121=30121010000000000?"), false, ErrBadSwipe, ErrLuhn},
		{"tracks disagree", MagTek.Encode('0', "%B6217900000000000138^ZHANG/SAN^30121010000000000000?", t2Good), false, ErrBadSwipe, nil},
		{"truncated track", MagTek.Encode('0', ";621790000"), false, ErrBadSwipe, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := reader(stream(tc.frame, MagTek.Encode('0', t2Good)), MagTek)
			_, err := r.Swipe(ctx, tc.fallback)
			if !errors.Is(err, tc.want) || (tc.also != nil && !errors.Is(err, tc.also)) {
				t.Fatalf("err = %v, want %v / %v", err, tc.want, tc.also)
			}
			if strings.Contains(err.Error(), testPAN) {
				t.Errorf("error leaks the PAN: %v", err)
			}
			// The reader goes on with the next swipe.
			if sw, err := r.Swipe(ctx, false); err != nil || sw.PAN.Reveal() != testPAN {
				t.Errorf("next swipe: %+v, %v", sw, err)
			}
		})
	}
}

func TestFallback(t *testing.T) {
	r := reader(stream(MagTek.Encode('0', t1Good, t2Chip)), MagTek)
	sw, err := r.Swipe(context.Background(), true)
	if err != nil || !sw.Fallback || sw.Field605() != "2" || sw.ServiceCode != "220" {
		t.Fatalf("%+v, %v", sw, err)
	}
	var ce *ChipCardError
	_, err = reader(stream(MagTek.Encode('0', t2Chip)), MagTek).Swipe(context.Background(), false)
	if !errors.As(err, &ce) || ce.PAN.Reveal() != testPAN || !strings.Contains(err.Error(), "621790*********0120") {
		t.Errorf("chip card error: %v", err)
	}
}

func TestLineFraming(t *testing.T) {
	f := Lines(1, 2, 3)
	in := stream(
		[]byte("\r\n"), []byte("%B6217900000000000120^ZHA\r\n"), // cut off by a new swipe
		f.Encode(0, t1Good, t2Good, t3Good),
		[]byte("garbage line\n"),
		f.Encode(0, "E", t2Good, "E"),
		f.Encode(0, t1Good, "E", "E"),
		[]byte(t1Good+"\n"+t2Good+"\n"), // the last swipe never completes
	)
	r := reader(in, f)
	ctx := context.Background()
	sw, err := r.Swipe(ctx, false)
	if err != nil || sw.Name != "ZHANG/SAN" || !sw.Track3 {
		t.Fatalf("first: %+v %v", sw, err)
	}
	if sw, err = r.Swipe(ctx, false); err != nil || sw.Name != "" || sw.Track3 {
		t.Fatalf("second: %+v %v", sw, err)
	}
	var se *SwipeError
	if _, err = r.Swipe(ctx, false); !errors.As(err, &se) || !slices.Equal(se.Unreadable, []int{2, 3}) {
		t.Fatalf("third: %v", err)
	}
	if _, err = r.Swipe(ctx, false); err != io.EOF {
		t.Fatalf("end: %v", err)
	}
}

func TestLRCFraming(t *testing.T) {
	f := MagTek
	f.LRC = true
	good := f.Encode('0', t1Good, t2Good)
	bad := bytes.Clone(good)
	bad[bytes.IndexByte(bad, ';')+len(t2Good)] ^= 1 // the LRC byte of track 2
	r := reader(stream(bad, good), f)
	if _, err := r.Swipe(context.Background(), false); !errors.Is(err, ErrLRC) {
		t.Fatalf("bad LRC: %v", err)
	}
	if sw, err := r.Swipe(context.Background(), false); err != nil || sw.Name == "" {
		t.Fatalf("good LRC: %+v %v", sw, err)
	}
}

// TestSensitiveLent checks that track data reaches the callback in the form of
// fields 35/36 and is zeroed when the callback returns.
func TestSensitiveLent(t *testing.T) {
	var lent Sensitive
	var got35, got36 string
	r := NewReader(stream(MagTek.Encode('0', t1Good, t2Good, t3Good)), Config{
		Framing: MagTek, Now: func() time.Time { return now },
		Sensitive: func(s Sensitive) {
			lent = s
			got35, got36 = string(s.Track2), string(s.Track3)
		},
	})
	if _, err := r.Swipe(context.Background(), false); err != nil {
		t.Fatal(err)
	}
	if got35 != t2Good[1:len(t2Good)-1] || got36 != t3Good[1:len(t3Good)-1] {
		t.Errorf("field 35 %q, field 36 %q", got35, got36)
	}
	if bytes.ContainsFunc(lent.Track2, func(r rune) bool { return r != 0 }) ||
		bytes.ContainsFunc(lent.Track3, func(r rune) bool { return r != 0 }) {
		t.Error("lent track data was not zeroed after the callback")
	}
	if bytes.Contains(r.sc.buf[:cap(r.sc.buf)], []byte("6217900000")) || bytes.Contains(r.read[:], []byte("6217900000")) {
		t.Error("track data left in the reader's buffers")
	}
}

func TestCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	in := &chunks{parts: [][]byte{[]byte("\x02\x1b;62179")}} // then timeouts
	r := reader(in, MagTek)
	cancel()
	if _, err := r.Swipe(ctx, false); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
	// A deadline error from an os.File or net.Conn counts as a timeout too.
	if !isTimeout(os.ErrDeadlineExceeded) || isTimeout(io.ErrUnexpectedEOF) {
		t.Error("isTimeout")
	}
}

func TestReadError(t *testing.T) {
	boom := errors.New("boom")
	_, err := reader(&chunks{end: boom}, MagTek).Swipe(context.Background(), false)
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v", err)
	}
}

func TestOversizedNoise(t *testing.T) {
	noise := bytes.Repeat([]byte{STX, ESC, ';', '1'}, 600)
	r := reader(stream(noise, bytes.Repeat([]byte("x"), 5000), MagTek.Encode('0', t2Good)), MagTek)
	if sw, err := r.Swipe(context.Background(), false); err != nil || sw.PAN.Reveal() != testPAN {
		t.Fatalf("%+v %v", sw, err)
	}
}

// TestLineGaps: a track line lost to noise leaves a gap; the tracks after it
// keep their places and the swipe still completes.
func TestLineGaps(t *testing.T) {
	f := Lines(1, 2, 3)
	in := stream([]byte("\x00junk;6217"), f.Encode(0, t1Good, t2Good, t3Good))
	sw, err := reader(in, f).Swipe(context.Background(), false)
	if err != nil || sw.Name != "" || sw.PAN.Reveal() != testPAN || !sw.Track3 {
		t.Fatalf("%+v %v", sw, err)
	}
	// Readers that start track 3 with ';' too.
	in = stream(f.Encode(0, t1Good, t2Good, ";"+t3Good[1:]))
	if sw, err := reader(in, f).Swipe(context.Background(), false); err != nil || !sw.Track3 || sw.Name == "" {
		t.Fatalf("%+v %v", sw, err)
	}
}

func TestInspect(t *testing.T) {
	tests := []struct {
		in     string
		track  int
		valid  bool
		failed []Check
	}{
		{t1Good, 1, true, []Check{}},
		{t1Good[1 : len(t1Good)-1], 1, true, []Check{}},
		{" " + t2Good + " ", 2, true, []Check{}},
		{"6217900000000000121=2401101", 2, false, []Check{CheckLuhn, CheckExpiry}},
		{"hello", 0, false, []Check{CheckSentinel}},
	}
	for _, tc := range tests {
		got := Inspect(tc.in, ParseOptions{Now: now})
		if got.Track != tc.track || got.Valid != tc.valid || !slices.Equal(got.Failed, tc.failed) {
			t.Errorf("%q: %+v", tc.in, got)
		}
	}
}
