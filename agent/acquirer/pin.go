package acquirer

import (
	"encoding/hex"
	"errors"
	"strings"
)

// ErrPIN is returned for a PIN that is not 4 to 12 digits; ErrTrack for track
// data outside 0-9 and '='. Neither error repeats its input.
var (
	ErrPIN   = errors.New("acquirer: PIN is not 4 to 12 digits")
	ErrTrack = errors.New("acquirer: track data is not digits and '='")
)

// PINBlock returns field 52: the ISO 9564 format 0 (ANSI X9.8) PIN block of
// pin for pan, encrypted under the PIK. It exists for terminals with a PIN
// pad; the clear block never leaves this function.
func PINBlock(pik Key, pin, panDigits string) ([]byte, error) {
	clear, err := pinBlockClear(pin, panDigits)
	if err != nil {
		return nil, err
	}
	out, err := EncryptECB(pik, clear)
	if err != nil {
		return nil, wrapKeyErr("PIK", err)
	}
	return out, nil
}

// pinBlockClear is format 0: (0, length, PIN, F padding) XOR (0000, the 12
// rightmost PAN digits before the check digit).
func pinBlockClear(pin, panDigits string) ([]byte, error) {
	if len(pin) < 4 || len(pin) > 12 || !isDigits(pin, len(pin)) {
		return nil, ErrPIN
	}
	if len(panDigits) < 13 || !isDigits(panDigits, len(panDigits)) {
		return nil, &FieldError{Op: "pack", Field: 2}
	}
	pf, _ := hex.DecodeString(("0" + string(rune('0'+len(pin))) + pin + strings.Repeat("F", 14-len(pin)))[:16])
	if len(pin) > 9 {
		// The length nibble is hex: 10, 11, 12 are A, B, C.
		pf, _ = hex.DecodeString(("0" + string(rune('A'+len(pin)-10)) + pin + strings.Repeat("F", 14-len(pin)))[:16])
	}
	acct := panDigits[len(panDigits)-13 : len(panDigits)-1]
	af, _ := hex.DecodeString("0000" + acct)
	xorInto(pf, af)
	return pf, nil
}

// SecurityControl is field 53: digit 1 is the PIN block format (2 = ANSI X9.8
// with PAN), digit 2 the key length (6 = double-length 3DES, 0 = single DES),
// digit 3 whether track data is encrypted with the TDK (1) or not (0).
func SecurityControl(mode KeyMode, trackEncrypted bool) string {
	s := "2"
	if mode.Double() {
		s += "6"
	} else {
		s += "0"
	}
	if trackEncrypted {
		s += "1"
	} else {
		s += "0"
	}
	return s + strings.Repeat("0", 13)
}

// EncryptTrack encrypts track 2 or 3 data (without sentinels) under the TDK
// as UnionPay wants it: the 16 characters just before the last one are
// packed as nibbles ('=' is D; left-padded with F when the track is shorter),
// encrypted, and put back as 16 uppercase hex characters.
func EncryptTrack(tdk Key, track string) (string, error) {
	return cryptTrack(tdk, track, true)
}

// DecryptTrack undoes EncryptTrack (the host's side, and the simulator's).
// A segment that does not decrypt to track characters is ErrTrack: the
// wrong TDK, in all but a fraction of a percent of cases.
func DecryptTrack(tdk Key, track string) (string, error) {
	return cryptTrack(tdk, track, false)
}

func cryptTrack(tdk Key, track string, enc bool) (string, error) {
	if len(track) < 2 {
		return "", ErrTrack
	}
	for i := 0; i < len(track); i++ {
		c := track[i]
		if !(c >= '0' && c <= '9' || c == '=' || !enc && (c >= 'A' && c <= 'F')) {
			return "", ErrTrack
		}
	}
	body := track[:len(track)-1]
	start := len(body) - 16
	pad := 0
	if start < 0 {
		pad, start = -start, 0
	}
	seg := strings.Repeat("F", pad) + strings.ReplaceAll(body[start:], "=", "D")
	b, err := hex.DecodeString(seg)
	if err != nil {
		return "", ErrTrack
	}
	var out []byte
	if enc {
		out, err = EncryptECB(tdk, b)
	} else {
		out, err = DecryptECB(tdk, b)
	}
	if err != nil {
		return "", wrapKeyErr("TDK", err)
	}
	res := strings.ToUpper(hex.EncodeToString(out))
	if !enc {
		// Clear track data has no F: leading ones are the padding of a
		// short track.
		res = strings.ReplaceAll(strings.TrimLeft(res, "F"), "D", "=")
		// Anything but digits and '=' left means the segment was not
		// encrypted under this TDK (or not encrypted at all).
		if strings.Trim(res, "0123456789=") != "" {
			return "", ErrTrack
		}
	} else if pad > 0 {
		// A short track grows to 16 characters plus its last one.
		return res + track[len(track)-1:], nil
	}
	return body[:start] + res + track[len(track)-1:], nil
}

// ErrPINBlock is returned for a clear PIN block that is not ISO 9564 format 0
// for the PAN it is checked against: a wrong PAN, a wrong PIK on the host's
// side, or a PIN pad set to another format. It never repeats the block.
var ErrPINBlock = errors.New("acquirer: PIN block is not format 0 for this PAN")

// EncryptPINBlock returns field 52 for a clear format-0 PIN block as a PIN
// pad delivers it: the block is checked against the PAN first, so a pad set
// to another format (or bound to another card) fails here and not as a
// decline, then encrypted under the PIK.
func EncryptPINBlock(pik Key, clear []byte, panDigits string) ([]byte, error) {
	digits, err := parsePINBlock(clear, panDigits)
	clearBytes(digits)
	if err != nil {
		return nil, err
	}
	out, err := EncryptECB(pik, clear)
	if err != nil {
		return nil, wrapKeyErr("PIK", err)
	}
	return out, nil
}

// ParsePINBlock returns the PIN of a clear format-0 block for panDigits: the
// host's side of EncryptPINBlock (the simulator verifies with it). Errors are
// ErrPINBlock or a FieldError on field 2, without the input.
func ParsePINBlock(clear []byte, panDigits string) (string, error) {
	digits, err := parsePINBlock(clear, panDigits)
	if err != nil {
		return "", err
	}
	pin := string(digits)
	clearBytes(digits)
	return pin, nil
}

// parsePINBlock undoes the PAN XOR and checks the format-0 layout: control
// nibble 0, a length of 4 to 12, that many decimal digits, F up to the end.
func parsePINBlock(clear []byte, panDigits string) ([]byte, error) {
	if len(clear) != 8 {
		return nil, ErrPINBlock
	}
	if len(panDigits) < 13 || !isDigits(panDigits, len(panDigits)) {
		return nil, &FieldError{Op: "unpack", Field: 2}
	}
	af, _ := hex.DecodeString("0000" + panDigits[len(panDigits)-13:len(panDigits)-1])
	pf := append([]byte(nil), clear...)
	defer clearBytes(pf)
	xorInto(pf, af)
	nib := func(i int) byte {
		if i%2 == 0 {
			return pf[i/2] >> 4
		}
		return pf[i/2] & 0x0F
	}
	n := int(nib(1))
	if nib(0) != 0 || n < 4 || n > 12 {
		return nil, ErrPINBlock
	}
	out := make([]byte, 0, n)
	for i := 2; i < 16; i++ {
		v := nib(i)
		switch {
		case i < 2+n && v <= 9:
			out = append(out, '0'+v)
		case i >= 2+n && v == 0xF:
		default:
			clearBytes(out)
			return nil, ErrPINBlock
		}
	}
	return out, nil
}

// clearBytes overwrites PIN material once it is no longer needed, so it does
// not linger in memory until the collector reuses the array.
func clearBytes(b []byte) {
	for i := range b {
		b[i] = 0
	}
}
