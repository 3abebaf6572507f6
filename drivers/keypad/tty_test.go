package keypad

import (
	"context"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
)

func TestTTYDecoder(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []string
	}{
		{"digits and enter", "1234\r", []string{"1", "2", "3", "4", "ENTER"}},
		{"LF is enter too", "5\n", []string{"5", "ENTER"}},
		{"CRLF is one enter", "\r\n\r\n", []string{"ENTER", "ENTER"}},
		{"backspace both ways", "\x7f\x08", []string{"CLEAR", "CLEAR"}},
		{"lone esc at the end", "\x1b", []string{"CANCEL"}},
		{"esc esc", "\x1b\x1b", []string{"CANCEL", "CANCEL"}},
		{"esc then a digit", "\x1b7", []string{"CANCEL", "7"}},
		{"xterm F1-F4", "\x1bOP\x1bOQ\x1bOR\x1bOS", []string{"F1", "F2", "F3", "F4"}},
		{"vt220 F1", "\x1b[11~", []string{"F1"}},
		{"linux console F1", "\x1b[[A", []string{"F1"}},
		{"f stands for F1", "fF", []string{"F1", "F1"}},
		{"arrows", "\x1b[A\x1b[B\x1bOA", []string{"UP", "DOWN", "UP"}},
		{"unmapped sequence is skipped whole", "\x1b[15~1", []string{"1"}},
		{"unmapped arrow is skipped", "\x1b[C2", []string{"2"}},
		{"letters and controls are ignored", "abc\x00\t ", nil},
		{"star and hash", "*#", []string{"*", "#"}},
		{"garbage sequence is bounded", "\x1b[" + strings.Repeat(";", 40) + "3", []string{"3"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var d TTYDecoder
			got := d.Feed([]byte(tt.in), true)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Feed(%q) = %q, want %q", tt.in, got, tt.want)
			}
			// The same bytes one at a time decode the same: a sequence may
			// be cut anywhere by a read.
			var d2 TTYDecoder
			var split []string
			for i := 0; i < len(tt.in); i++ {
				split = append(split, d2.Feed([]byte{tt.in[i]}, false)...)
			}
			split = append(split, d2.Feed(nil, true)...)
			if !reflect.DeepEqual(split, tt.want) {
				t.Errorf("byte by byte: %q, want %q", split, tt.want)
			}
		})
	}
}

func FuzzTTYDecoder(f *testing.F) {
	for _, s := range []string{"1234\r", "\x1bOP", "\x1b[11~", "\x1b[[A", "\x1b\x1b1", "\r\n", "\x1b[" + strings.Repeat("9", 20)} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var d TTYDecoder
		whole := d.Feed(b, true)
		for _, k := range whole {
			if !ValidKey(k) {
				t.Fatalf("%q decoded to unknown key %q", b, k)
			}
		}
		if len(whole) > len(b) {
			t.Fatalf("%d keys from %d bytes", len(whole), len(b))
		}
		var d2 TTYDecoder
		var split []string
		for i := range b {
			split = append(split, d2.Feed(b[i:i+1], false)...)
		}
		split = append(split, d2.Feed(nil, true)...)
		if !reflect.DeepEqual(whole, split) {
			t.Fatalf("%q: whole %q, split %q", b, whole, split)
		}
	})
}

func TestTTYKey(t *testing.T) {
	k := NewTTY(strings.NewReader("1\x1bOP\r"))
	ctx := context.Background()
	for _, want := range []string{"1", "F1", "ENTER"} {
		if got, err := k.Key(ctx); err != nil || got != want {
			t.Fatalf("Key = %q, %v; want %q", got, err, want)
		}
	}
	for i := 0; i < 2; i++ {
		if _, err := k.Key(ctx); !errors.Is(err, io.EOF) {
			t.Fatalf("Key at end = %v, want io.EOF", err)
		}
	}
	if err := k.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := k.Key(ctx); !errors.Is(err, ErrClosed) {
		t.Fatalf("Key after Close = %v", err)
	}
}

func TestTTYKeyContext(t *testing.T) {
	r, w := io.Pipe()
	defer w.Close()
	k := NewTTY(r)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { _, err := k.Key(ctx); done <- err }()
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Key = %v, want context.Canceled", err)
	}
	// A key typed afterwards still reaches the next Key.
	go func() { _, _ = w.Write([]byte("9")) }()
	if got, err := k.Key(context.Background()); err != nil || got != "9" {
		t.Fatalf("Key = %q, %v", got, err)
	}
	_ = k.Close()
}
