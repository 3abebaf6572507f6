package cardreader

import (
	"context"
	"errors"
	"fmt"
)

// Command is a short command APDU (ISO 7816-4 cases 1–4; EMV uses no extended
// lengths).
type Command struct {
	CLA, INS, P1, P2 byte
	Data             []byte // at most 255 bytes
	// Ne is the number of response bytes expected: 0 means no Le field, 1–256
	// are sent as the Le byte (256 as 00, which EMV uses for "all there is").
	Ne int
}

// ErrCommand reports a Command that cannot be encoded as a short APDU.
var ErrCommand = errors.New("cardreader: command APDU out of range")

// Bytes encodes the command.
func (c Command) Bytes() ([]byte, error) {
	if len(c.Data) > 255 || c.Ne < 0 || c.Ne > 256 {
		return nil, ErrCommand
	}
	b := make([]byte, 0, 6+len(c.Data))
	b = append(b, c.CLA, c.INS, c.P1, c.P2)
	if len(c.Data) > 0 {
		b = append(b, byte(len(c.Data)))
		b = append(b, c.Data...)
	}
	if c.Ne > 0 {
		b = append(b, byte(c.Ne)) // 256 wraps to 00 on purpose
	}
	return b, nil
}

// String names the command by its header only: the data field may hold
// cardholder or transaction data.
func (c Command) String() string {
	return fmt.Sprintf("%02X %02X %02X %02X (Lc=%d Ne=%d)", c.CLA, c.INS, c.P1, c.P2, len(c.Data), c.Ne)
}

// SW is the status word SW1 SW2 that ends every response APDU.
type SW uint16

// Status words the EMV flow branches on.
const (
	SWOK                  SW = 0x9000
	SWWarnSelectedInvalid SW = 0x6283 // selected file (application) invalidated / blocked
	SWWrongLength         SW = 0x6700
	SWSecurityNotSatisfy  SW = 0x6982
	SWConditionsNotSatisf SW = 0x6985 // GPO: conditions of use not satisfied
	SWFuncNotSupported    SW = 0x6A81 // SELECT PSE: card blocked or command not supported
	SWFileNotFound        SW = 0x6A82
	SWRecordNotFound      SW = 0x6A83
	SWWrongP1P2           SW = 0x6B00
	SWINSNotSupported     SW = 0x6D00
	SWCLANotSupported     SW = 0x6E00
)

// SW1 is the high byte.
func (s SW) SW1() byte { return byte(s >> 8) }

// SW2 is the low byte.
func (s SW) SW2() byte { return byte(s) }

// OK reports 9000.
func (s SW) OK() bool { return s == SWOK }

// Warning reports 62XX/63XX: processing completed with a warning.
func (s SW) Warning() bool { return s.SW1() == 0x62 || s.SW1() == 0x63 }

// String is the four hex digits.
func (s SW) String() string { return fmt.Sprintf("%04X", uint16(s)) }

// Error is a status word the caller did not expect, as an error, so it can be
// wrapped with where it happened and tested with errors.As. (fmt prefers
// Error over String, so %v prints "SW 6A82"; use String for the bare hex.)
func (s SW) Error() string { return "SW " + s.String() }

// Response is a parsed response APDU.
type Response struct {
	Data []byte
	SW   SW
}

// ParseResponse splits a raw response APDU. Fewer than two bytes is
// ErrBadResponse. Data aliases b.
func ParseResponse(b []byte) (Response, error) {
	if len(b) < 2 {
		return Response{}, fmt.Errorf("%w: %d bytes", ErrBadResponse, len(b))
	}
	n := len(b) - 2
	return Response{Data: b[:n:n], SW: SW(uint16(b[n])<<8 | uint16(b[n+1]))}, nil
}

// maxT0Rounds bounds GET RESPONSE chains: a card that keeps answering 61XX must
// not keep the reader busy forever (ISO 7816 responses are ≤ 256 bytes per
// round; 16 rounds is far beyond any EMV response).
const maxT0Rounds = 16

// T0 wraps a Card so that its Transmit resolves the T=0 procedure status words
// transparently, as pcscd does not: 61XX → GET RESPONSE (00 C0 00 00 XX),
// concatenating the data; 6CXX → the same command again with Le = XX. It works
// over any backend and is harmless on T=1 cards, which never send them.
type T0 struct{ Card }

var _ Card = T0{}

// Transmit sends cmd and returns the final response APDU.
func (t T0) Transmit(ctx context.Context, cmd []byte) ([]byte, error) {
	raw, err := t.Card.Transmit(ctx, cmd)
	if err != nil {
		return nil, err
	}
	var data []byte
	resent := false
	for round := 0; ; round++ {
		r, err := ParseResponse(raw)
		if err != nil {
			return nil, err
		}
		if round >= maxT0Rounds {
			return nil, fmt.Errorf("%w: T=0 exchange did not settle after %d rounds", ErrBadResponse, round)
		}
		switch r.SW.SW1() {
		case 0x61:
			data = append(data, r.Data...)
			raw, err = t.Card.Transmit(ctx, []byte{0x00, 0xC0, 0x00, 0x00, r.SW.SW2()})
		case 0x6C:
			if resent {
				// A second 6CXX for the same command: the card contradicts
				// itself; re-sending again would loop.
				return nil, fmt.Errorf("%w: repeated 6CXX", ErrBadResponse)
			}
			resent = true
			raw, err = t.Card.Transmit(ctx, withLe(cmd, r.SW.SW2()))
		default:
			out := make([]byte, 0, len(data)+len(raw))
			out = append(out, data...)
			return append(out, raw...), nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// withLe returns cmd with its Le byte set to le: replaced for cases 2 and 4,
// appended for cases 1 and 3.
func withLe(cmd []byte, le byte) []byte {
	out := append([]byte(nil), cmd...)
	switch {
	case len(cmd) == 5: // case 2: header + Le
		out[4] = le
	case len(cmd) > 5 && len(cmd) == 5+int(cmd[4])+1: // case 4: header Lc data Le
		out[len(out)-1] = le
	default: // case 1 (header only) or 3 (header Lc data)
		out = append(out, le)
	}
	return out
}

// Exchange encodes cmd, transmits it through T0 handling and parses the answer.
// A non-9000 status word is not an error here: callers branch on it.
func Exchange(ctx context.Context, c Card, cmd Command) (Response, error) {
	b, err := cmd.Bytes()
	if err != nil {
		return Response{}, err
	}
	if _, ok := c.(T0); !ok {
		c = T0{c}
	}
	raw, err := c.Transmit(ctx, b)
	if err != nil {
		return Response{}, err
	}
	return ParseResponse(raw)
}
