package keypad

import (
	"context"
	"fmt"
	"io"
	"sync"
)

// TTY is the development keypad: keys typed on a terminal, or bytes from any
// io.Reader (a pipe, a file, a test). It maps a PC keyboard onto the
// terminal's keys:
//
//	0-9                      digits
//	Enter (CR or LF)         ENTER, the terminal's OK key
//	Backspace (DEL or BS)    CLEAR
//	Esc                      CANCEL
//	F1-F4 (xterm, vt and linux-console sequences), or f/F  F1 … F4 (f is F1)
//	arrow up / down          UP / DOWN
//	* #                      * #
//
// f stands in for F1 because terminal emulators often keep F1 for their own
// help. Anything else is ignored, as a stray press on the real keypad is. For
// single keys to arrive without Enter the terminal must be in raw mode
// (MakeRaw); a pipe needs nothing.
//
// Unlike the matrix, keys typed while no Key call waits are not lost: they
// wait in the reader, so piped input works. Close does not close the reader,
// which belongs to the caller.
type TTY struct {
	r io.Reader

	start  sync.Once
	keys   chan string
	err    error // set before keys is closed
	done   chan struct{}
	closed sync.Once
}

var _ Keypad = (*TTY)(nil)

// NewTTY reads keys from r. Reading starts with the first Key call, in a
// goroutine that ends when r returns an error (io.EOF included).
func NewTTY(r io.Reader) *TTY {
	return &TTY{r: r, keys: make(chan string), done: make(chan struct{})}
}

func (t *TTY) read() {
	defer close(t.keys)
	var d TTYDecoder
	buf := make([]byte, 64)
	for {
		n, err := t.r.Read(buf)
		// A terminal writes an escape sequence in one go, so the end of a
		// read is where a lone Esc is known to be the Esc key.
		for _, k := range d.Feed(buf[:n], true) {
			select {
			case t.keys <- k:
			case <-t.done:
				return
			}
		}
		if err != nil {
			t.err = fmt.Errorf("keypad: tty: %w", err)
			return
		}
	}
}

// Key returns the next key typed, ctx's error, ErrClosed, or the error that
// ended the reader (wrapping io.EOF at the end of a pipe) on this and every
// later call.
func (t *TTY) Key(ctx context.Context) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", fmt.Errorf("keypad: %w", err)
	}
	t.start.Do(func() { go t.read() })
	select {
	case <-t.done:
		return "", ErrClosed
	default:
	}
	select {
	case <-ctx.Done():
		return "", fmt.Errorf("keypad: %w", ctx.Err())
	case <-t.done:
		return "", ErrClosed
	case k, ok := <-t.keys:
		if !ok {
			return "", t.err
		}
		return k, nil
	}
}

// Close makes Key return ErrClosed. A read in progress on the caller's
// reader finishes when the reader returns; its key is dropped.
func (t *TTY) Close() error {
	t.closed.Do(func() { close(t.done) })
	return nil
}

// TTYDecoder turns terminal bytes into key names. It keeps an escape
// sequence cut between two Feed calls; its zero value is ready to use.
type TTYDecoder struct {
	pending []byte // an unfinished escape sequence, starting with ESC
	cr      bool   // the last byte was CR: a following LF is the same Enter
}

// escKeys maps the escape sequences of F1-F4 and the arrows (without the
// leading ESC) in xterm, vt220 and Linux console flavours.
var escKeys = map[string]string{
	"OP": "F1", "OQ": "F2", "OR": "F3", "OS": "F4",
	"[11~": "F1", "[12~": "F2", "[13~": "F3", "[14~": "F4",
	"[[A": "F1", "[[B": "F2", "[[C": "F3", "[[D": "F4",
	"[A": "UP", "[B": "DOWN", "OA": "UP", "OB": "DOWN",
}

// maxEsc bounds a pending sequence: a longer one is garbage, not a key.
const maxEsc = 16

// Feed decodes b and returns the keys it completes. With flush, a lone ESC
// left at the end is the Esc key (CANCEL) rather than the start of a
// sequence still to come.
func (d *TTYDecoder) Feed(b []byte, flush bool) []string {
	var keys []string
	for _, c := range b {
		if len(d.pending) > 0 {
			seq := string(d.pending[1:]) + string(rune(c))
			switch {
			case len(d.pending) == 1 && c != '[' && c != 'O':
				// Esc followed by anything but a sequence introducer (Esc
				// again, or typing): that Esc was the key, and c is read
				// on its own below.
				d.pending = d.pending[:0]
				keys = append(keys, "CANCEL")
			case escKeys[seq] != "":
				d.pending = d.pending[:0]
				keys = append(keys, escKeys[seq])
				continue
			case len(d.pending) > 1 && seq != "[[" && c >= 0x40 && c <= 0x7e,
				len(d.pending)+1 >= maxEsc:
				// The final byte of a CSI or SS3 sequence ("[[" is the
				// Linux console's F-key prefix and needs one more), or
				// garbage too long to be a key: a key we do not map.
				d.pending = d.pending[:0]
				continue
			default:
				d.pending = append(d.pending, c)
				continue
			}
		}
		cr := d.cr
		d.cr = false
		switch {
		case c >= '0' && c <= '9':
			keys = append(keys, string(rune(c)))
		case c == '\r':
			d.cr = true
			keys = append(keys, "ENTER")
		case c == '\n':
			if !cr {
				keys = append(keys, "ENTER")
			}
		case c == 0x7f || c == 0x08:
			keys = append(keys, "CLEAR")
		case c == 0x1b:
			d.pending = append(d.pending[:0], c)
		case c == 'f' || c == 'F':
			keys = append(keys, "F1")
		case c == '*' || c == '#':
			keys = append(keys, string(rune(c)))
		}
	}
	if flush && len(d.pending) > 0 {
		if len(d.pending) == 1 {
			keys = append(keys, "CANCEL")
		}
		d.pending = d.pending[:0]
	}
	return keys
}
