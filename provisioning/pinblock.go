package provisioning

import (
	"errors"

	"github.com/posagent/posagent/provisioning/pan"
)

// Errors of FormatPINBlock. Neither repeats its input: the PIN is a secret,
// and the PAN is only ever shown masked.
var (
	ErrPINDigits = errors.New("provisioning: PIN is not 4 to 12 digits")
	// ErrPINBlockPAN is a card number too short to bind a format-0 block
	// to: the block takes 12 digits before the check digit, and a PAN of
	// 12 digits has only 11.
	ErrPINBlockPAN = errors.New("provisioning: PAN shorter than 13 digits for a format-0 PIN block")
)

// PIN lengths ISO 9564-1 format 0 allows: the length nibble goes from 4 to
// C, and the PIN field has room for 14 digits of which 2 stay padding.
const (
	MinPINLen = 4
	MaxPINLen = 12
)

// FormatPINBlock returns the clear ISO 9564-1 format-0 (ANSI X9.8) PIN
// block of pin for card p: the PIN field 0, N, the N digits, F padding,
// XOR the account field 0000 and the 12 rightmost PAN digits before the
// check digit. pin is 4 to 12 ASCII digits (ErrPINDigits), p at least 13
// digits (ErrPINBlockPAN).
//
// A Go string cannot be wiped; callers that hold the digits in a buffer
// they clear afterwards use FormatPINBlockDigits instead.
func FormatPINBlock(pin string, p pan.PAN) (PINBlock, error) {
	digits := []byte(pin)
	defer clear(digits)
	return FormatPINBlockDigits(digits, p)
}

// FormatPINBlockDigits is FormatPINBlock for a PIN held in a byte slice,
// which it only reads: a PIN pad keeps the typed digits there and zeroes
// them once the block is built, so the PIN never becomes an immutable
// string left for the collector. Its own intermediate buffer is wiped
// before it returns.
func FormatPINBlockDigits(pin []byte, p pan.PAN) (PINBlock, error) {
	if len(pin) < MinPINLen || len(pin) > MaxPINLen {
		return nil, ErrPINDigits
	}
	for _, c := range pin {
		if c < '0' || c > '9' {
			return nil, ErrPINDigits
		}
	}
	acct := p.Reveal() // pan.Parse admits digits only
	if len(acct) < 13 {
		return nil, ErrPINBlockPAN
	}
	acct = acct[len(acct)-13 : len(acct)-1]

	// The PIN field, one nibble per byte: control 0, length, digits, F.
	var field [16]byte
	defer clear(field[:])
	field[1] = byte(len(pin))
	for i := 2; i < len(field); i++ {
		if i-2 < len(pin) {
			field[i] = pin[i-2] - '0'
		} else {
			field[i] = 0xF
		}
	}
	// The account field's first four nibbles are zero, so XOR leaves the
	// PIN field's there as they are.
	for i := 4; i < len(field); i++ {
		field[i] ^= acct[i-4] - '0'
	}
	block := make(PINBlock, 8)
	for i := range block {
		block[i] = field[2*i]<<4 | field[2*i+1]
	}
	return block, nil
}
