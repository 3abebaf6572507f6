package provisioning_test

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/posagent/posagent/provisioning"
	"github.com/posagent/posagent/provisioning/pan"
)

// TestFormatPINBlockKnownAnswers checks published format-0 examples, each
// also worked by hand (PIN field XOR account field) before it went in:
//
//   - ID TECH, "PIN Block Format 0 (ISO-0)", the encrypt/decode example
//     (https://atlassian.idtechproducts.com/confluence/plugins/viewsource/viewpagesrc.action?pageId=50529496):
//     a 17-digit PAN, so the account field skips a leading digit as well
//     as the check digit;
//   - moov-io/pinblock, formats/iso0_test.go, TestISO0 "Encode";
//   - knovichikhin/psec, tests/test_pinblock.py, test_encode_pinblock_iso_0
//     and test_decode_pinblock_iso_0: lengths 9, 10 and 12, which give the
//     length nibbles 9, A and C.
func TestFormatPINBlockKnownAnswers(t *testing.T) {
	for _, tc := range []struct{ source, pin, pan, block string }{
		{"ID TECH", "1234", "43219876543210987", "0412AC89ABCDEF67"},
		{"moov-io/pinblock", "1234", "5432101234567891", "041215FEDCBA9876"},
		{"psec", "1234", "5555555551234567", "041261AAAAEDCBA9"},
		{"psec", "123456789", "5555555551234567", "091261032D8DCBA9"},
		{"psec", "1234567890", "5555555551234567", "0A1261032D82CBA9"},
		{"psec", "123456789012", "5555555551234567", "0C1261032D8226A9"},
	} {
		p := pan.MustParse(tc.pan)
		got, err := provisioning.FormatPINBlock(tc.pin, p)
		if err != nil {
			t.Errorf("%s: %d-digit PIN: %v", tc.source, len(tc.pin), err)
			continue
		}
		want, _ := hex.DecodeString(tc.block)
		if !bytes.Equal(got, want) {
			t.Errorf("%s: %d-digit PIN for %s: block %X, want %s", tc.source, len(tc.pin), p.Masked(), []byte(got), tc.block)
		}
		// The byte-slice form is the same function, and only reads its
		// input.
		digits := []byte(tc.pin)
		again, err := provisioning.FormatPINBlockDigits(digits, p)
		if err != nil || !bytes.Equal(again, want) {
			t.Errorf("%s: FormatPINBlockDigits = %X, %v", tc.source, []byte(again), err)
		}
		if string(digits) != tc.pin {
			t.Errorf("%s: FormatPINBlockDigits changed its input", tc.source)
		}
	}
}

func TestFormatPINBlockRefuses(t *testing.T) {
	card := pan.MustParse("6222021234567890128")
	for _, pin := range []string{"", "123", "1234567890123", "12a4", "12 45", "１２３４", "1234\x00"} {
		b, err := provisioning.FormatPINBlock(pin, card)
		if !errors.Is(err, provisioning.ErrPINDigits) || b != nil {
			t.Errorf("PIN of %d bytes: %v, %v; want ErrPINDigits and no block", len(pin), b, err)
			continue
		}
		if pin != "" && strings.Contains(err.Error(), pin) {
			t.Errorf("the error repeats the PIN: %v", err)
		}
	}
	// A 12-digit PAN has 11 digits before its check digit; the zero PAN
	// none.
	for _, p := range []pan.PAN{pan.MustParse("622202123456"), {}} {
		b, err := provisioning.FormatPINBlock("1234", p)
		if !errors.Is(err, provisioning.ErrPINBlockPAN) || b != nil {
			t.Errorf("PAN of %d digits: %v, %v; want ErrPINBlockPAN", p.Len(), b, err)
		}
		if p.Len() > 0 && strings.Contains(err.Error(), p.Reveal()) {
			t.Errorf("the error repeats the PAN: %v", err)
		}
	}
}

// FuzzFormatPINBlock checks the layout on any PIN and PAN: the block XOR
// the account field, decoded here nibble by nibble from the spec rather
// than from the code under test, is 0, the length, the digits, F padding;
// and only the 12 digits before the check digit bind the block to the card.
func FuzzFormatPINBlock(f *testing.F) {
	f.Add("1234", "6222021234567890128")
	f.Add("000000000000", "4000001234562")
	f.Add("975319", "43219876543210987")
	f.Fuzz(func(t *testing.T, pin, digits string) {
		p, err := pan.Parse(digits)
		if err != nil {
			return
		}
		b, err := provisioning.FormatPINBlock(pin, p)
		okPIN := len(pin) >= 4 && len(pin) <= 12 && strings.Trim(pin, "0123456789") == ""
		switch {
		case !okPIN:
			if !errors.Is(err, provisioning.ErrPINDigits) {
				t.Fatalf("bad PIN accepted: %v", err)
			}
			return
		case p.Len() < 13:
			if !errors.Is(err, provisioning.ErrPINBlockPAN) {
				t.Fatalf("%d-digit PAN accepted: %v", p.Len(), err)
			}
			return
		case err != nil:
			t.Fatal(err)
		}
		if len(b) != 8 {
			t.Fatalf("block of %d bytes", len(b))
		}
		full := p.Reveal()
		acct := "0000" + full[len(full)-13:len(full)-1]
		want := fmt.Sprintf("0%X%s", len(pin), pin) + strings.Repeat("F", 14-len(pin))
		var got strings.Builder
		for i := 0; i < 16; i++ {
			n := b[i/2] >> 4
			if i%2 == 1 {
				n = b[i/2] & 0x0F
			}
			got.WriteString(fmt.Sprintf("%X", n^(acct[i]-'0')))
		}
		if got.String() != want {
			t.Fatalf("block XOR account field = %s, want the PIN field %s", got.String(), want)
		}
		// Another check digit, or other digits in front of the 12, leave
		// the block as it was.
		other := "9" + full[:len(full)-1] + string('0'+(full[len(full)-1]-'0'+1)%10)
		if len(other) <= 19 {
			b2, err := provisioning.FormatPINBlock(pin, pan.MustParse(other))
			if err != nil || !bytes.Equal(b2, b) {
				t.Fatalf("the block depends on more than the 12 digits before the check digit")
			}
		}
	})
}
