// Package pan holds the primary account number as a type that masks itself.
//
// A PAN is printed, logged and marshalled as first 6 / last 4 (PCI DSS 3.3), so a
// careless %v or slog attribute cannot leak it; the digits are reachable only
// through Reveal, which makes every unmasking visible in review.
package pan

import (
	"errors"
	"log/slog"
	"strings"
)

// PAN is a card number held in memory only. Its zero value is "no card".
type PAN struct{ digits string }

// Errors callers branch on.
var (
	ErrFormat = errors.New("pan: not 12 to 19 digits")
	ErrLuhn   = errors.New("pan: check digit (Luhn) is wrong")
)

// Parse accepts 12 to 19 ASCII digits (spaces are dropped). It does not check the
// Luhn digit: a card with a bad check digit is still a card to reject by name.
func Parse(s string) (PAN, error) {
	s = strings.ReplaceAll(s, " ", "")
	if len(s) < 12 || len(s) > 19 {
		return PAN{}, ErrFormat
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return PAN{}, ErrFormat
		}
	}
	return PAN{digits: s}, nil
}

// MustParse is Parse for constants in tests and simulators.
func MustParse(s string) PAN {
	p, err := Parse(s)
	if err != nil {
		panic(err)
	}
	return p
}

// IsZero reports whether p holds no number.
func (p PAN) IsZero() bool { return p.digits == "" }

// Reveal returns the full number. Call it only to send the PAN to the host or to
// hash it; never to print, log or persist it.
func (p PAN) Reveal() string { return p.digits }

// Len is the number of digits.
func (p PAN) Len() int { return len(p.digits) }

// HasPrefix reports whether the PAN starts with prefix (a BIN/IIN range).
func (p PAN) HasPrefix(prefix string) bool { return strings.HasPrefix(p.digits, prefix) }

// Masked is the first 6 and last 4 digits with '*' between, the most PCI allows.
func (p PAN) Masked() string { return Mask(p.digits) }

// String masks, so fmt never prints the full number.
func (p PAN) String() string { return p.Masked() }

// GoString masks too (%#v).
func (p PAN) GoString() string { return `pan.PAN("` + p.Masked() + `")` }

// LogValue masks for log/slog.
func (p PAN) LogValue() slog.Value { return slog.StringValue(p.Masked()) }

// MarshalText masks: a PAN that ends up in JSON or YAML is never the full number.
func (p PAN) MarshalText() ([]byte, error) { return []byte(p.Masked()), nil }

// LuhnValid reports whether the last digit is the Luhn (mod 10) check digit.
func (p PAN) LuhnValid() bool { return LuhnValid(p.digits) }

// LuhnValid reports whether digits (ASCII, at least 2) end in a correct Luhn check digit.
func LuhnValid(digits string) bool {
	if len(digits) < 2 {
		return false
	}
	sum := 0
	double := false
	for i := len(digits) - 1; i >= 0; i-- {
		c := digits[i]
		if c < '0' || c > '9' {
			return false
		}
		d := int(c - '0')
		if double {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
		double = !double
	}
	return sum%10 == 0
}

// Mask keeps the first 6 and last 4 characters of s and stars the rest. Strings of
// 10 characters or fewer are starred whole: showing 6+4 of them would show all.
func Mask(s string) string {
	if len(s) <= 10 {
		return strings.Repeat("*", len(s))
	}
	return s[:6] + strings.Repeat("*", len(s)-10) + s[len(s)-4:]
}
