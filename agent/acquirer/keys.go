package acquirer

import (
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
)

// Key is clear key material. It prints, logs and marshals as its check value
// only, so a careless %v, slog attribute or JSON encoding cannot leak it.
type Key []byte

// String shows the check value, never the key.
func (k Key) String() string {
	if len(k) == 0 {
		return "key(none)"
	}
	cv, err := CheckValue(k)
	if err != nil {
		return "key(invalid length)"
	}
	return "key(kcv=" + strings.ToUpper(hex.EncodeToString(cv)) + ")"
}

// GoString hides the key from %#v too.
func (k Key) GoString() string { return k.String() }

// LogValue hides the key from log/slog.
func (k Key) LogValue() slog.Value { return slog.StringValue(k.String()) }

// MarshalText hides the key from JSON and YAML; the key store writes keys
// through its own record type on purpose.
func (k Key) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// Wipe zeroes the key in place. Go gives no guarantee that no other copy
// exists (the runtime may have moved or copied it), so this narrows the
// time a key sits in memory rather than ending it.
func (k Key) Wipe() { clear(k) }

// KeyMode is sign-on field 60.3: which working keys the terminal asks for.
type KeyMode string

// Key modes of sign-on (PROTOCOLS.md §1). The values are the common 60.3
// codes; what goes on the wire is the acquirer profile's code for the mode
// (Codes.SignOn).
const (
	// SingleDES asks for single-length PIK and MAK ("001").
	SingleDES KeyMode = "001"
	// DoubleNoTDK asks for double-length PIK and MAK without a track key
	// ("003"): swiped tracks then go in clear.
	DoubleNoTDK KeyMode = "003"
	// DoubleDES asks for double-length PIK, MAK and TDK ("004").
	DoubleDES KeyMode = "004"
)

// Double says whether the mode delivers double-length keys (3DES), which
// field 53's second digit announces.
func (m KeyMode) Double() bool { return m == DoubleDES || m == DoubleNoTDK }

// supported says whether the client knows the mode's field-62 layout.
func (m KeyMode) supported() bool { return m == SingleDES || m.Double() }

// WorkingKeys are the keys a sign-on delivers, in clear.
type WorkingKeys struct {
	PIK Key // PIN key
	MAK Key // MAC key
	TDK Key // track data key; empty in single-DES mode
}

// Wipe zeroes the three keys in place.
func (w WorkingKeys) Wipe() {
	w.PIK.Wipe()
	w.MAK.Wipe()
	w.TDK.Wipe()
}

// ErrKeyCheck is returned when a working key's check value does not match:
// the key was not decrypted under the right TMK, so it must not be used.
var ErrKeyCheck = errors.New("acquirer: working key check value mismatch")

// ErrField62 is returned when sign-on field 62 has a length the key mode does
// not allow.
var ErrField62 = errors.New("acquirer: field 62: length does not fit the key mode")

// keyLayout is one key in field 62: its name and clear length.
type keyLayout struct {
	name string
	n    int
}

func layout(mode KeyMode, total int) ([]keyLayout, error) {
	switch mode {
	case SingleDES:
		if total == 24 {
			return []keyLayout{{"PIK", 8}, {"MAK", 8}}, nil
		}
	case DoubleDES:
		switch total {
		case 60:
			return []keyLayout{{"PIK", 16}, {"MAK", 16}, {"TDK", 16}}, nil
		case 40: // some hosts leave the TDK out
			return []keyLayout{{"PIK", 16}, {"MAK", 16}}, nil
		}
	case DoubleNoTDK:
		if total == 40 {
			return []keyLayout{{"PIK", 16}, {"MAK", 16}}, nil
		}
	default:
		return nil, fmt.Errorf("acquirer: key mode %q is not supported", mode)
	}
	return nil, ErrField62
}

// DecryptWorkingKeys decrypts sign-on response field 62 under the TMK and
// accepts the keys only when every check value matches. The layout is
// PIK(8) CV(4) MAK(8) CV(4) for SingleDES, PIK(16) CV(4) MAK(16) CV(4) for
// DoubleNoTDK and PIK(16) CV(4) MAK(16) CV(4) [TDK(16) CV(4)] for DoubleDES;
// each check value is of the clear key.
//
// In the double-length modes a MAK slot whose last 8 bytes are zero holds a
// single-length MAK: 8 bytes of ciphertext, the zero half, and the check
// value of the 8-byte key. Many hosts deliver the MAK so (a public Centerm
// UnionPay app tests for it before loading the MAK: bitian123/
// HandSetWisdomCashier, library/.../task/AsyncSignTask.java); decrypting all
// 16 bytes would make its check value fail. The MAK returned is then 8
// bytes, and the MAC runs single DES.
func DecryptWorkingKeys(tmk Key, mode KeyMode, field62 []byte) (WorkingKeys, error) {
	l, err := layout(mode, len(field62))
	if err != nil {
		return WorkingKeys{}, err
	}
	var keys [3]Key
	off := 0
	for i, kl := range l {
		enc := field62[off : off+kl.n]
		if kl.name == "MAK" && kl.n == 16 && singleInDouble(enc) {
			enc = enc[:8]
		}
		clear, err := DecryptECB(tmk, enc)
		if err != nil {
			return WorkingKeys{}, wrapKeyErr("TMK", err)
		}
		if !checkValueMatches(clear, field62[off+kl.n:off+kl.n+4]) {
			Key(clear).Wipe()
			for _, k := range keys[:i] {
				k.Wipe()
			}
			return WorkingKeys{}, fmt.Errorf("acquirer: %s: %w", kl.name, ErrKeyCheck)
		}
		keys[i] = clear
		off += kl.n + 4
	}
	return WorkingKeys{PIK: keys[0], MAK: keys[1], TDK: keys[2]}, nil
}

// singleInDouble reports a 16-byte key slot whose second half is zero: a
// single-length key delivered in a double-length layout. A real
// double-length ciphertext ends in 8 zero bytes once in 2^64.
func singleInDouble(enc []byte) bool {
	for _, b := range enc[8:] {
		if b != 0 {
			return false
		}
	}
	return true
}

// EncryptWorkingKeys builds sign-on response field 62: each key encrypted
// under the TMK and followed by its check value. It is the host's half of
// DecryptWorkingKeys (the simulator uses it). In a double-length mode an
// 8-byte MAK goes in the single-length layout: its ciphertext, 8 zero bytes,
// its check value. DoubleNoTDK takes no TDK.
func EncryptWorkingKeys(tmk Key, mode KeyMode, wk WorkingKeys) ([]byte, error) {
	n := 8
	ks := []struct {
		name string
		k    Key
	}{{"PIK", wk.PIK}, {"MAK", wk.MAK}}
	switch mode {
	case SingleDES:
	case DoubleDES, DoubleNoTDK:
		n = 16
		if len(wk.TDK) > 0 {
			if mode == DoubleNoTDK {
				return nil, fmt.Errorf("acquirer: key mode %s carries no TDK", mode)
			}
			ks = append(ks, struct {
				name string
				k    Key
			}{"TDK", wk.TDK})
		}
	default:
		return nil, fmt.Errorf("acquirer: key mode %q is not supported", mode)
	}
	var out []byte
	for _, k := range ks {
		single := n == 16 && k.name == "MAK" && len(k.k) == 8
		if len(k.k) != n && !single {
			return nil, wrapKeyErr(k.name, ErrKeyLength)
		}
		enc, err := EncryptECB(tmk, k.k)
		if err != nil {
			return nil, wrapKeyErr("TMK", err)
		}
		if single {
			enc = append(enc, make([]byte, 8)...)
		}
		cv, err := CheckValue(k.k)
		if err != nil {
			return nil, wrapKeyErr(k.name, err)
		}
		out = append(append(out, enc...), cv...)
	}
	return out, nil
}

// ParseKey decodes a hex key of 8, 16 or 24 bytes (16, 32 or 48 hex digits).
// Errors never repeat the input.
func ParseKey(s string) (Key, error) {
	b, err := hex.DecodeString(strings.TrimSpace(s))
	if err != nil {
		return nil, errors.New("acquirer: key is not hex")
	}
	if len(b) != 8 && len(b) != 16 && len(b) != 24 {
		return nil, ErrKeyLength
	}
	return Key(b), nil
}
