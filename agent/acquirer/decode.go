package acquirer

import (
	"encoding/hex"
	"errors"
	"strings"
)

// Decoded is what `posctl decode iso8583` prints: the frame header when the
// input was a whole frame, and the described message.
type Decoded struct {
	TPDU   string `json:"tpdu,omitempty"`
	Header string `json:"header,omitempty"`
	Description
}

// ErrHex is returned for input that is not hex; it does not quote the input.
var ErrHex = errors.New("acquirer: input is not hex")

// DecodeHex recognises a whole frame (length + TPDU + header + message) or a
// message from the MTI on, and describes it, masked unless reveal. Spaces and
// newlines in the hex are ignored. A frame whose length prefix matches but
// whose message does not parse is tried as a bare message before failing.
func DecodeHex(s string, reveal bool) (Decoded, error) {
	s = strings.Join(strings.Fields(s), "")
	b, err := hex.DecodeString(s)
	if err != nil {
		return Decoded{}, ErrHex
	}
	if f, ferr := DecodeFrame(b); ferr == nil {
		if m, err := Unpack(f.Message); err == nil {
			d, err := Describe(m, reveal)
			if err != nil {
				return Decoded{}, err
			}
			return Decoded{TPDU: strings.ToUpper(hex.EncodeToString(f.TPDU[:])),
				Header: strings.ToUpper(hex.EncodeToString(f.Header[:])), Description: d}, nil
		}
	}
	m, err := Unpack(b)
	if err != nil {
		return Decoded{}, err
	}
	d, err := Describe(m, reveal)
	if err != nil {
		return Decoded{}, err
	}
	return Decoded{Description: d}, nil
}
