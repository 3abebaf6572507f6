package acquirer

import (
	"crypto/cipher"
	"crypto/des"
	"crypto/subtle"
	"errors"
	"fmt"
)

// ErrKeyLength is returned for a key that is not 8, 16 or 24 bytes.
var ErrKeyLength = errors.New("acquirer: key is not 8, 16 or 24 bytes")

// ErrBlockLength is returned for data that is not a whole number of 8-byte blocks.
var ErrBlockLength = errors.New("acquirer: data is not a multiple of 8 bytes")

// newBlock returns DES for an 8-byte key and 3DES (EDE) for a 16-byte
// (K1 K2 K1) or 24-byte key: UnionPay delivers double-length keys, which
// crypto/des only takes in the 24-byte form.
func newBlock(key []byte) (cipher.Block, error) {
	switch len(key) {
	case 8:
		return des.NewCipher(key)
	case 16:
		k := make([]byte, 0, 24)
		k = append(append(k, key...), key[:8]...)
		return des.NewTripleDESCipher(k)
	case 24:
		return des.NewTripleDESCipher(key)
	}
	return nil, ErrKeyLength
}

// EncryptECB encrypts data (a multiple of 8 bytes) block by block under key
// (DES for 8 bytes, 3DES for 16 or 24).
func EncryptECB(key, data []byte) ([]byte, error) {
	return ecb(key, data, true)
}

// DecryptECB is the inverse of EncryptECB.
func DecryptECB(key, data []byte) ([]byte, error) {
	return ecb(key, data, false)
}

func ecb(key, data []byte, enc bool) ([]byte, error) {
	b, err := newBlock(key)
	if err != nil {
		return nil, err
	}
	if len(data)%8 != 0 {
		return nil, ErrBlockLength
	}
	out := make([]byte, len(data))
	for i := 0; i < len(data); i += 8 {
		if enc {
			b.Encrypt(out[i:i+8], data[i:i+8])
		} else {
			b.Decrypt(out[i:i+8], data[i:i+8])
		}
	}
	return out, nil
}

// CheckValue is the key check value: the first 4 bytes of 8 zero bytes
// encrypted under key. It identifies a key without revealing it, so it is the
// only thing about a key that may be shown or logged.
func CheckValue(key []byte) ([]byte, error) {
	out, err := EncryptECB(key, make([]byte, 8))
	if err != nil {
		return nil, err
	}
	return out[:4], nil
}

// checkValueMatches compares in constant time; a key check is not a secret
// comparison, but there is no reason to leak timing either.
func checkValueMatches(key, cv []byte) bool {
	got, err := CheckValue(key)
	if err != nil || len(cv) != 4 {
		return false
	}
	return subtle.ConstantTimeCompare(got, cv) == 1
}

// xorInto sets dst[i] ^= src[i].
func xorInto(dst, src []byte) {
	for i := range dst {
		dst[i] ^= src[i]
	}
}

// wrapKeyErr names which key failed without showing it.
func wrapKeyErr(name string, err error) error {
	return fmt.Errorf("acquirer: %s: %w", name, err)
}
