package acquirer

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// TPDU is the 5-byte transport header: an id byte, then the destination and
// source addresses (2 bytes each). It is per acquirer.
type TPDU [5]byte

// Swap returns the TPDU of the answer: the host swaps the two addresses.
func (t TPDU) Swap() TPDU {
	return TPDU{t[0], t[3], t[4], t[1], t[2]}
}

// Header is the 6-byte application header ("60 31 00" + software version is
// common). Its third byte's high nibble is the terminal status: 1 = test mode.
type Header [6]byte

// WithTestMode returns h with the terminal-status nibble set to 1 (test) or 0.
func (h Header) WithTestMode(on bool) Header {
	h[2] &^= 0xF0
	if on {
		h[2] |= 0x10
	}
	return h
}

// Defaults seen in public captures (PROTOCOLS.md §1); configure per acquirer.
var (
	DefaultTPDU   = TPDU{0x60, 0x00, 0x03, 0x00, 0x00}
	DefaultHeader = Header{0x60, 0x31, 0x00, 0x31, 0x07, 0x00}
)

// Frame is one TCP message: TPDU, header and the ISO 8583 message from the
// MTI on. On the wire it is preceded by its 2-byte big-endian length.
type Frame struct {
	TPDU    TPDU
	Header  Header
	Message []byte
}

// frameOverhead is TPDU + header.
const frameOverhead = 5 + 6

// MaxFrame is the largest length a 2-byte prefix can announce.
const MaxFrame = 0xFFFF

// Frame errors.
var (
	ErrFrameShort = errors.New("acquirer: frame shorter than TPDU and header")
	ErrFrameLen   = errors.New("acquirer: frame length does not match its prefix")
	ErrFrameLarge = errors.New("acquirer: frame too large")
)

// Encode renders the frame with its length prefix.
func (f Frame) Encode() ([]byte, error) {
	n := frameOverhead + len(f.Message)
	if n > MaxFrame {
		return nil, ErrFrameLarge
	}
	out := make([]byte, 0, 2+n)
	out = binary.BigEndian.AppendUint16(out, uint16(n))
	out = append(out, f.TPDU[:]...)
	out = append(out, f.Header[:]...)
	return append(out, f.Message...), nil
}

// DecodeFrame parses one whole frame, length prefix included; the prefix must
// announce exactly the bytes that follow.
func DecodeFrame(b []byte) (Frame, error) {
	if len(b) < 2 {
		return Frame{}, ErrFrameShort
	}
	n := int(binary.BigEndian.Uint16(b))
	if n != len(b)-2 {
		return Frame{}, ErrFrameLen
	}
	return decodeBody(b[2:])
}

func decodeBody(b []byte) (Frame, error) {
	if len(b) < frameOverhead {
		return Frame{}, ErrFrameShort
	}
	var f Frame
	copy(f.TPDU[:], b[:5])
	copy(f.Header[:], b[5:11])
	f.Message = append([]byte(nil), b[11:]...)
	return f, nil
}

// ReadFrame reads one frame from r. max bounds the length a peer can make
// the reader allocate (0 means MaxFrame).
func ReadFrame(r io.Reader, max int) (Frame, error) {
	if max <= 0 || max > MaxFrame {
		max = MaxFrame
	}
	var lb [2]byte
	if _, err := io.ReadFull(r, lb[:]); err != nil {
		return Frame{}, fmt.Errorf("acquirer: read frame length: %w", err)
	}
	n := int(binary.BigEndian.Uint16(lb[:]))
	if n > max {
		return Frame{}, ErrFrameLarge
	}
	if n < frameOverhead {
		return Frame{}, ErrFrameShort
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		return Frame{}, fmt.Errorf("acquirer: read frame body: %w", err)
	}
	return decodeBody(body)
}

// WriteFrame writes f to w in one Write, so a frame is never interleaved.
func WriteFrame(w io.Writer, f Frame) error {
	b, err := f.Encode()
	if err != nil {
		return err
	}
	if _, err := w.Write(b); err != nil {
		return fmt.Errorf("acquirer: write frame: %w", err)
	}
	return nil
}
