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
	if mode == DoubleDES {
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
	} else if pad > 0 {
		// A short track grows to 16 characters plus its last one.
		return res + track[len(track)-1:], nil
	}
	return body[:start] + res + track[len(track)-1:], nil
}
