package acquirer

import (
	"errors"
	"fmt"
)

// trackEncoding packs track 2/3 data two characters a byte: digits as BCD,
// the separator '=' as nibble D, and A–F for TDK-encrypted track text;
// left-justified with a 0 nibble after an odd length. moov-io's BCD rejects
// the separator, so the dialect needs its own.
var trackEncoding = trackEncoder{}

type trackEncoder struct{}

var errTrackChar = errors.New("track: character outside 0-9 = A-F")

// Encode packs track characters as nibbles.
func (trackEncoder) Encode(src []byte) ([]byte, error) {
	out := make([]byte, (len(src)+1)/2)
	for i, c := range src {
		var n byte
		switch {
		case c >= '0' && c <= '9':
			n = c - '0'
		case c == '=':
			n = 0xD
		case c >= 'A' && c <= 'F':
			n = c - 'A' + 10
		default:
			return nil, errTrackChar
		}
		if i%2 == 0 {
			out[i/2] = n << 4
		} else {
			out[i/2] |= n
		}
	}
	return out, nil
}

// Decode unpacks length characters; nibble D reads as '='.
func (trackEncoder) Decode(src []byte, length int) ([]byte, int, error) {
	if length < 0 {
		return nil, 0, errors.New("track: negative length")
	}
	read := (length + 1) / 2
	if len(src) < read {
		return nil, 0, fmt.Errorf("track: need %d bytes, have %d", read, len(src))
	}
	out := make([]byte, length)
	for i := range out {
		n := src[i/2] >> 4
		if i%2 == 1 {
			n = src[i/2] & 0x0F
		}
		switch {
		case n <= 9:
			out[i] = '0' + n
		case n == 0xD:
			out[i] = '='
		default:
			out[i] = 'A' + n - 10
		}
	}
	return out, read, nil
}
