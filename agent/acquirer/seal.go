package acquirer

import (
	"errors"

	"github.com/moov-io/iso8583"
)

// ErrNoMAC is returned for a message that must carry field 64 and does not.
var ErrNoMAC = errors.New("acquirer: field 64 (MAC) missing")

// macLen is field 64's length; it is the last field of the dialect, so a
// packed message with a MAC ends with it.
const macLen = 8

// PackMAC packs m with field 64 set to the MAC of everything before it (from
// the MTI, bitmap with bit 64 included, through the last field before 64).
func PackMAC(m *iso8583.Message, alg MACAlgorithm, mak Key) ([]byte, error) {
	// Bit 64 must be in the bitmap the MAC covers, so pack once with a
	// placeholder and patch the last 8 bytes.
	if err := SetBytes(m, 64, make([]byte, macLen)); err != nil {
		return nil, err
	}
	b, err := Pack(m)
	if err != nil {
		return nil, err
	}
	mac, err := ComputeMAC(alg, mak, b[:len(b)-macLen])
	if err != nil {
		return nil, err
	}
	copy(b[len(b)-macLen:], mac)
	if err := SetBytes(m, 64, mac); err != nil {
		return nil, err
	}
	return b, nil
}

// CheckMAC verifies field 64 of packed, the bytes m was unpacked from. It
// returns ErrNoMAC when m has no field 64 and ErrBadMAC when it does not verify.
func CheckMAC(m *iso8583.Message, packed []byte, alg MACAlgorithm, mak Key) error {
	mac := GetBytes(m, 64)
	if mac == nil {
		return ErrNoMAC
	}
	if len(packed) < macLen {
		return ErrBadMAC
	}
	return VerifyMAC(alg, mak, packed[:len(packed)-macLen], mac)
}

// MACKey is the key the MAC algorithm runs with. By default only the first 8
// bytes of a double-length MAK are used, as the sign-on layout of PROTOCOLS.md
// §1 says; full makes it 3DES with the whole key, for hosts that want that.
func MACKey(mak Key, full bool) Key {
	if !full && len(mak) > 8 {
		return mak[:8]
	}
	return mak
}
