package magstripe

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/posagent/posagent/provisioning/pan"
)

// FuzzParseTrack feeds arbitrary bytes to the track parser. Seeds are in
// testdata/fuzz/FuzzParseTrack.
func FuzzParseTrack(f *testing.F) {
	f.Add([]byte(t1Good), false)
	f.Add([]byte(t2Good+"5"), true)
	f.Fuzz(func(t *testing.T, b []byte, lrc bool) {
		tr, err := ParseTrack(b, ParseOptions{LRC: lrc, Now: now})
		if (err == nil) != (len(tr.Failed) == 0) {
			t.Fatalf("err %v with failed %v", err, tr.Failed)
		}
		if err != nil {
			var te *TrackError
			if !errors.As(err, &te) {
				t.Fatalf("not a TrackError: %v", err)
			}
			for _, c := range te.Failed {
				if checkErr[c] == nil || !errors.Is(err, checkErr[c]) {
					t.Fatalf("check %q has no error", c)
				}
			}
		}
		if d := tr.PAN.Reveal(); d != "" && (tr.PAN.String() != pan.Mask(d) || strings.Contains(err0(err), d)) {
			t.Fatal("PAN shown in full")
		}
	})
}

func err0(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// FuzzFrames feeds arbitrary line bytes, cut into arbitrary reads, to a Reader
// of each framing: it must neither panic nor loop, and return only the errors
// it documents. Seeds are in testdata/fuzz/FuzzFrames.
func FuzzFrames(f *testing.F) {
	f.Add(MagTek.Encode('0', t1Good, t2Good, t3Good), uint8(0), uint8(7))
	f.Add(Lines(1, 2, 3).Encode(0, t1Good, "E", t3Good), uint8(1), uint8(3))
	f.Fuzz(func(t *testing.T, b []byte, style, cut uint8) {
		framings := []Framing{MagTek, Lines(1, 2, 3), Lines(2), {End: []byte{CR}, LRC: true, Track3Semicolon: true}}
		fr := framings[int(style)%len(framings)]
		size := int(cut)%32 + 1
		var parts [][]byte
		for len(b) > 0 {
			n := min(size, len(b))
			parts = append(parts, b[:n])
			b = b[n:]
		}
		r := NewReader(&chunks{parts: parts, end: io.EOF}, Config{Framing: fr, Now: func() time.Time { return now },
			Sensitive: func(s Sensitive) {
				if len(s.Track2) == 0 {
					t.Fatal("accepted swipe without track 2 data")
				}
			}})
		for i := 0; ; i++ {
			if i > len(parts)*4+10 {
				t.Fatal("reader does not make progress")
			}
			sw, err := r.Swipe(context.Background(), i%2 == 0)
			switch {
			case err == nil:
				if sw.PAN.IsZero() {
					t.Fatal("accepted swipe without PAN")
				}
			case errors.Is(err, io.EOF):
				return
			case errors.Is(err, ErrBadSwipe), errors.Is(err, ErrChipCard):
			default:
				t.Fatalf("unexpected error %v", err)
			}
		}
	})
}
