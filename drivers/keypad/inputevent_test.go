package keypad

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

// rec builds one record; ts is fixed so fixtures are byte-exact.
func rec(t testing.TB, l Layout, typ, code uint16, value int32) []byte {
	t.Helper()
	b, err := AppendEvent(nil, Event{Time: time.Unix(1700000000, 123456000), Type: typ, Code: code, Value: value}, l)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestDecodeFixture pins the byte layout of both ABIs against hand-written
// records: KEY_5 (code 6) pressed at 1700000000.123456.
func TestDecodeFixture(t *testing.T) {
	for _, tt := range []struct {
		l   Layout
		hex string
	}{
		//       tv_sec                     tv_usec                    type code value
		{Layout64, "00f1536500000000" + "40e2010000000000" + "0100" + "0600" + "01000000"},
		{Layout32, "00f15365" + "40e20100" + "0100" + "0600" + "01000000"},
	} {
		b, _ := hex.DecodeString(tt.hex)
		if len(b) != tt.l.Size() {
			t.Fatalf("%d: fixture is %d bytes, want %d", tt.l, len(b), tt.l.Size())
		}
		e, err := DecodeEvent(b, tt.l)
		if err != nil {
			t.Fatal(err)
		}
		want := Event{Time: time.Unix(1700000000, 123456000), Type: EvKey, Code: 6, Value: KeyPress}
		if !e.Time.Equal(want.Time) || e.Type != want.Type || e.Code != want.Code || e.Value != want.Value {
			t.Errorf("%d: decoded %+v, want %+v", tt.l, e, want)
		}
		if got := rec(t, tt.l, EvKey, 6, KeyPress); !bytes.Equal(got, b) {
			t.Errorf("%d: encoded %x, want %x", tt.l, got, b)
		}
	}
	if _, err := DecodeEvent(make([]byte, 24), Layout(7)); !errors.Is(err, ErrLayout) {
		t.Errorf("bad layout: %v", err)
	}
	if _, err := AppendEvent(nil, Event{}, Layout(7)); !errors.Is(err, ErrLayout) {
		t.Errorf("bad layout: %v", err)
	}
	if _, err := DecodeEvent(make([]byte, 15), Layout32); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("short: %v", err)
	}
}

func TestInputEvents(t *testing.T) {
	type r struct {
		typ, code uint16
		value     int32
	}
	press := func(code uint16) []r {
		return []r{{EvKey, code, KeyPress}, {EvSyn, 0, 0}, {EvKey, code, KeyRelease}, {EvSyn, 0, 0}}
	}
	cat := func(rs ...[]r) (out []r) {
		for _, x := range rs {
			out = append(out, x...)
		}
		return out
	}
	tests := []struct {
		name  string
		recs  []r
		trunc int // bytes cut off the end
		want  []string
		end   error
	}{
		{"digits and enter", cat(press(6), press(11), press(28)), 0, []string{"5", "0", "ENTER"}, io.EOF},
		{"keypad digits", cat(press(79), press(82), press(96)), 0, []string{"1", "0", "ENTER"}, io.EOF},
		{"esc is cancel, backspace is clear", cat(press(1), press(14)), 0, []string{"CANCEL", "CLEAR"}, io.EOF},
		{"autorepeat is not a press", []r{{EvKey, 6, KeyPress}, {EvKey, 6, KeyRepeat}, {EvKey, 6, KeyRepeat}, {EvKey, 6, KeyRelease}}, 0, []string{"5"}, io.EOF},
		{"unmapped keys and other types skipped", cat([]r{{EvKey, 30, KeyPress}, {0x04, 4, 458782}}, press(3)), 0, []string{"2"}, io.EOF},
		{"torn last record", cat(press(2), press(3)), 3, []string{"1", "2"}, io.ErrUnexpectedEOF},
		{"torn press is not a press", cat(press(2), press(3))[:5], 3, []string{"1"}, io.ErrUnexpectedEOF},
		{"empty stream", nil, 0, nil, io.EOF},
	}
	for _, l := range []Layout{Layout64, Layout32} {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				var b []byte
				for _, x := range tt.recs {
					b = append(b, rec(t, l, x.typ, x.code, x.value)...)
				}
				b = b[:len(b)-tt.trunc]
				k := NewInputEvents(bytes.NewReader(b), l)
				var got []string
				var err error
				for {
					var name string
					if name, err = k.Key(context.Background()); err != nil {
						break
					}
					got = append(got, name)
				}
				if !reflect.DeepEqual(got, tt.want) || !errors.Is(err, tt.end) {
					t.Errorf("keys %q, end %v; want %q, %v", got, err, tt.want, tt.end)
				}
				// The end is sticky.
				if _, err2 := k.Key(context.Background()); !errors.Is(err2, tt.end) {
					t.Errorf("second end %v", err2)
				}
			})
		}
	}
}

// closeSpy is a caller's reader that notes whether anyone closed it.
type closeSpy struct {
	*io.PipeReader
	closed bool
}

func (c *closeSpy) Close() error { c.closed = true; return nil }

func TestInputEventsContextAndClose(t *testing.T) {
	pr, pw := io.Pipe()
	defer pw.Close()
	spy := &closeSpy{PipeReader: pr}
	k := NewInputEvents(spy, Layout32)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := k.Key(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v", err)
	}
	// A press written while Key waits arrives.
	go func() { _, _ = pw.Write(rec(t, Layout32, EvKey, 28, KeyPress)) }()
	if name, err := k.Key(context.Background()); name != "ENTER" || err != nil {
		t.Fatalf("Key = %q, %v", name, err)
	}
	if err := k.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := k.Key(context.Background()); !errors.Is(err, ErrClosed) {
		t.Fatalf("after Close: %v", err)
	}
	if spy.closed {
		t.Fatal("Close closed the caller's reader")
	}
	if err := k.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func TestOpenInputEvents(t *testing.T) {
	if _, err := OpenInputEvents(filepath.Join(t.TempDir(), "event9")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing device: %v", err)
	}
	path := filepath.Join(t.TempDir(), "event0")
	if err := os.WriteFile(path, rec(t, NativeLayout, EvKey, 59, KeyPress), 0o600); err != nil {
		t.Fatal(err)
	}
	k, err := OpenInputEvents(path)
	if err != nil {
		t.Fatal(err)
	}
	if name, err := k.Key(context.Background()); name != "F1" || err != nil {
		t.Fatalf("Key = %q, %v", name, err)
	}
	if err := k.Close(); err != nil {
		t.Fatal(err)
	}
	if err := k.closer.(*os.File).Close(); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("device not closed by Close: %v", err)
	}
}

// FuzzDecodeEvent feeds arbitrary bytes to the decoder and the reader: no
// panic, and type, code and value survive a re-encode.
func FuzzDecodeEvent(f *testing.F) {
	f.Add(rec(f, Layout64, EvKey, 6, KeyPress), true)
	f.Add(rec(f, Layout32, EvKey, 28, KeyRelease), false)
	f.Add(append(rec(f, Layout32, EvKey, 1, KeyPress), 0xff, 0xff), false)
	f.Add([]byte{}, true)
	f.Fuzz(func(t *testing.T, b []byte, is64 bool) {
		l := Layout32
		if is64 {
			l = Layout64
		}
		for off := 0; off < len(b); off += l.Size() {
			e, err := DecodeEvent(b[off:], l)
			if err != nil {
				if len(b)-off >= l.Size() {
					t.Fatalf("full record at %d: %v", off, err)
				}
				break
			}
			re, _ := AppendEvent(nil, e, l)
			if !bytes.Equal(re[l.Size()-8:], b[off+l.Size()-8:off+l.Size()]) {
				t.Fatalf("type/code/value changed: %x -> %x", b[off:off+l.Size()], re)
			}
		}
		k := NewInputEvents(bytes.NewReader(b), l)
		for i := 0; ; i++ {
			name, err := k.Key(context.Background())
			if err != nil {
				break
			}
			if !ValidKey(name) || i > len(b) {
				t.Fatalf("key %q", name)
			}
		}
	})
}
