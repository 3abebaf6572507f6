package keypad

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"os"
	"sync"
	"time"
)

// Layout is the size of struct input_event's timeval, which follows the
// kernel's long: 16 bytes on 64-bit, 8 on 32-bit (armv7, including 32-bit
// processes on an arm64 kernel, which the compat layer serves 32-bit
// records).
type Layout int

const (
	// Layout64 is timeval as two 64-bit words: 24-byte records.
	Layout64 Layout = 64
	// Layout32 is timeval as two 32-bit words: 16-byte records.
	Layout32 Layout = 32
)

// NativeLayout is the layout of the running process.
const NativeLayout = Layout(bits.UintSize)

// Size returns the size of one record, or 0 for an unknown layout.
func (l Layout) Size() int {
	switch l {
	case Layout64:
		return 24
	case Layout32:
		return 16
	}
	return 0
}

// Event types and values of struct input_event that the keypad uses
// (linux/input-event-codes.h).
const (
	EvSyn = 0x00
	EvKey = 0x01

	KeyRelease = 0
	KeyPress   = 1
	KeyRepeat  = 2
)

// Event is one decoded struct input_event.
type Event struct {
	Time  time.Time
	Type  uint16
	Code  uint16
	Value int32
}

// ErrLayout is returned for a Layout that is neither Layout64 nor Layout32.
var ErrLayout = errors.New("keypad: unknown input_event layout")

// DecodeEvent decodes one record of layout l from the start of b. It
// returns io.ErrUnexpectedEOF when b is shorter than a record. Records are
// little-endian, as on every target posagent is built for (arm, arm64,
// amd64).
func DecodeEvent(b []byte, l Layout) (Event, error) {
	size := l.Size()
	if size == 0 {
		return Event{}, ErrLayout
	}
	if len(b) < size {
		return Event{}, io.ErrUnexpectedEOF
	}
	le := binary.LittleEndian
	var sec, usec int64
	if l == Layout64 {
		sec, usec = int64(le.Uint64(b[0:])), int64(le.Uint64(b[8:]))
	} else {
		// The 32-bit kernel ABI keeps these unsigned, which also makes it
		// last past 2038.
		sec, usec = int64(le.Uint32(b[0:])), int64(le.Uint32(b[4:]))
	}
	b = b[size-8:]
	return Event{
		Time:  time.Unix(sec, 0).Add(time.Duration(usec) * time.Microsecond),
		Type:  le.Uint16(b[0:]),
		Code:  le.Uint16(b[2:]),
		Value: int32(le.Uint32(b[4:])),
	}, nil
}

// AppendEvent appends e as a record of layout l; it is DecodeEvent's
// inverse for times after 1970 (and for the 32-bit layout, before 2106).
func AppendEvent(b []byte, e Event, l Layout) ([]byte, error) {
	if l.Size() == 0 {
		return b, ErrLayout
	}
	le := binary.LittleEndian
	sec, usec := e.Time.Unix(), int64(e.Time.Nanosecond()/1000)
	if l == Layout64 {
		b = le.AppendUint64(b, uint64(sec))
		b = le.AppendUint64(b, uint64(usec))
	} else {
		b = le.AppendUint32(b, uint32(sec))
		b = le.AppendUint32(b, uint32(usec))
	}
	b = le.AppendUint16(b, e.Type)
	b = le.AppendUint16(b, e.Code)
	return le.AppendUint32(b, uint32(e.Value)), nil
}

// InputKeys maps Linux key codes to key names. It covers the top-row and
// keypad digits, so both a USB numeric keypad and a full keyboard work on
// the bench.
var InputKeys = map[uint16]string{
	11: "0", 2: "1", 3: "2", 4: "3", 5: "4", 6: "5", 7: "6", 8: "7", 9: "8", 10: "9",
	82: "0", 79: "1", 80: "2", 81: "3", 75: "4", 76: "5", 77: "6", 71: "7", 72: "8", 73: "9",
	28: "ENTER", 96: "ENTER", // KEY_ENTER, KEY_KPENTER
	1:  "CANCEL", // KEY_ESC
	14: "CLEAR",  // KEY_BACKSPACE
	59: "F1", 60: "F2", 61: "F3", 62: "F4",
	103: "UP", 108: "DOWN",
	55: "*", // KEY_KPASTERISK
}

// InputEvents is a keypad read from a Linux input device (/dev/input/event*)
// or any stream of its records. Only key presses count: releases, autorepeat
// (a held key must not type "5555") and unmapped keys are skipped.
type InputEvents struct {
	r      io.Reader
	layout Layout
	closer io.Closer // only for a device OpenInputEvents opened itself

	start  sync.Once
	keys   chan string
	err    error // set before keys is closed
	done   chan struct{}
	closed sync.Once
}

// NewInputEvents reads records of layout l from r. Close does not close r:
// r belongs to the caller. Reading starts on the first Key call, in a
// goroutine that ends when r returns an error.
func NewInputEvents(r io.Reader, l Layout) *InputEvents {
	return &InputEvents{r: r, layout: l, keys: make(chan string), done: make(chan struct{})}
}

// OpenInputEvents opens an input device such as /dev/input/event0 in the
// process's native layout. Close closes the device, which also ends the
// reading goroutine.
func OpenInputEvents(path string) (*InputEvents, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("keypad: %w", err)
	}
	k := NewInputEvents(f, NativeLayout)
	k.closer = f
	return k, nil
}

func (k *InputEvents) read() {
	defer close(k.keys)
	buf := make([]byte, k.layout.Size())
	if len(buf) == 0 {
		k.err = ErrLayout
		return
	}
	for {
		if _, err := io.ReadFull(k.r, buf); err != nil {
			k.err = fmt.Errorf("keypad: input events: %w", err)
			return
		}
		e, _ := DecodeEvent(buf, k.layout) // cannot fail: buf is one record
		name, ok := InputKeys[e.Code]
		if e.Type != EvKey || e.Value != KeyPress || !ok {
			continue
		}
		select {
		case k.keys <- name:
		case <-k.done:
			return
		}
	}
}

// Key returns the next key pressed, ctx's error, ErrClosed, or the error
// that ended the stream (wrapping io.EOF, io.ErrUnexpectedEOF for a torn
// record, or the device's error) on this and every later call.
func (k *InputEvents) Key(ctx context.Context) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", fmt.Errorf("keypad: %w", err)
	}
	k.start.Do(func() { go k.read() })
	select {
	case <-k.done:
		return "", ErrClosed
	default:
	}
	select {
	case <-ctx.Done():
		return "", fmt.Errorf("keypad: %w", ctx.Err())
	case <-k.done:
		return "", ErrClosed
	case name, ok := <-k.keys:
		if !ok {
			return "", k.err
		}
		return name, nil
	}
}

// Close makes Key return ErrClosed and, for a device opened by
// OpenInputEvents, closes it.
func (k *InputEvents) Close() error {
	var err error
	k.closed.Do(func() {
		close(k.done)
		if k.closer != nil {
			err = k.closer.Close()
		}
	})
	return err
}
