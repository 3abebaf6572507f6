package acquirer

import (
	"errors"
	"fmt"
)

// bcdEncoding packs decimal digits two a byte. Right-justified (a leading 0
// nibble for an odd count) is ISO's default; left-justified (a trailing 0
// nibble) is what UnionPay wants for field 22 and variable numerics.
//
// moov-io's encoding.BCD/LBCD do the same but build lookup tables on every
// call (github.com/yerden/go-util/bcd), which was 90 % of a sale's pack+unpack
// time; these are plain loops.
type bcdEncoding struct{ left bool }

var (
	bcdRight = bcdEncoding{}
	bcdLeft  = bcdEncoding{left: true}
)

var errBCDDigit = errors.New("bcd: not a decimal digit")

// Encode packs ASCII digits.
func (e bcdEncoding) Encode(src []byte) ([]byte, error) {
	n := len(src)
	out := make([]byte, (n+1)/2)
	shift := 0 // nibble index of src[0]
	if n%2 == 1 && !e.left {
		shift = 1
	}
	for i, c := range src {
		if c < '0' || c > '9' {
			return nil, errBCDDigit
		}
		j := i + shift
		if j%2 == 0 {
			out[j/2] |= (c - '0') << 4
		} else {
			out[j/2] |= c - '0'
		}
	}
	return out, nil
}

// Decode unpacks length digits; the pad nibble of an odd count is skipped.
func (e bcdEncoding) Decode(src []byte, length int) ([]byte, int, error) {
	if length < 0 {
		return nil, 0, errors.New("bcd: negative length")
	}
	read := (length + 1) / 2
	if len(src) < read {
		return nil, 0, fmt.Errorf("bcd: need %d bytes, have %d", read, len(src))
	}
	shift := 0
	if length%2 == 1 && !e.left {
		shift = 1
	}
	out := make([]byte, length)
	for i := range out {
		j := i + shift
		d := src[j/2] >> 4
		if j%2 == 1 {
			d = src[j/2] & 0x0F
		}
		if d > 9 {
			return nil, 0, errBCDDigit
		}
		out[i] = '0' + d
	}
	return out, read, nil
}
