package acquirer

import (
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/posagent/posagent/provisioning"
)

// MACAlgorithm selects how field 64 is computed; it is per acquirer.
type MACAlgorithm string

// MAC algorithms.
const (
	// MACUnionPayECB is the UnionPay POS "ECB" MAC (PROTOCOLS.md §1): XOR
	// the blocks, hex-expand, encrypt the first half, XOR the second half,
	// encrypt again, hex-expand and keep 8 characters.
	MACUnionPayECB MACAlgorithm = "unionpay-ecb"
	// MACX919 is ANSI X9.19 (retail MAC): DES CBC-MAC under the left half of
	// the key, the last block finished with decrypt-right, encrypt-left. With
	// a single-length key it is X9.9 (plain DES CBC-MAC).
	MACX919 MACAlgorithm = "x9.19"
)

// ErrBadMAC is returned when a message's field 64 does not verify.
// It wraps provisioning.ErrResponseMAC so the flow reverses with reason A0.
var ErrBadMAC = fmt.Errorf("acquirer: MAC does not verify: %w", provisioning.ErrResponseMAC)

// ComputeMAC returns the 8 bytes of field 64 for data (from the MTI through
// the last field before 64) under key.
func ComputeMAC(alg MACAlgorithm, key Key, data []byte) ([]byte, error) {
	switch alg {
	case MACUnionPayECB, "":
		return unionPayMAC(key, data)
	case MACX919:
		return x919MAC(key, data)
	}
	return nil, fmt.Errorf("acquirer: MAC algorithm %q is not supported", alg)
}

// VerifyMAC compares mac with the MAC of data in constant time.
func VerifyMAC(alg MACAlgorithm, key Key, data, mac []byte) error {
	want, err := ComputeMAC(alg, key, data)
	if err != nil {
		return err
	}
	if subtle.ConstantTimeCompare(want, mac) != 1 {
		return ErrBadMAC
	}
	return nil
}

func xorBlocks(data []byte) []byte {
	acc := make([]byte, 8)
	for i := 0; i < len(data); i += 8 {
		var blk [8]byte
		copy(blk[:], data[i:])
		xorInto(acc, blk[:])
	}
	return acc
}

func unionPayMAC(key Key, data []byte) ([]byte, error) {
	// The host works on the uppercase hex text of the XOR, not on its bytes.
	x := []byte(strings.ToUpper(hex.EncodeToString(xorBlocks(data))))
	left, err := EncryptECB(key, x[:8])
	if err != nil {
		return nil, wrapKeyErr("MAK", err)
	}
	xorInto(left, x[8:])
	out, err := EncryptECB(key, left)
	if err != nil {
		return nil, wrapKeyErr("MAK", err)
	}
	return []byte(strings.ToUpper(hex.EncodeToString(out))[:8]), nil
}

func x919MAC(key Key, data []byte) ([]byte, error) {
	var k1, k2 Key
	switch len(key) {
	case 8:
		k1 = key
	case 16, 24:
		k1, k2 = key[:8], key[8:16]
	default:
		return nil, wrapKeyErr("MAK", ErrKeyLength)
	}
	b1, err := newBlock(k1)
	if err != nil {
		return nil, wrapKeyErr("MAK", err)
	}
	n := (len(data) + 7) / 8 * 8
	if n == 0 {
		n = 8
	}
	padded := make([]byte, n)
	copy(padded, data)
	chain := make([]byte, 8)
	for i := 0; i < n; i += 8 {
		xorInto(chain, padded[i:i+8])
		b1.Encrypt(chain, chain)
	}
	if k2 == nil {
		return chain, nil
	}
	b2, err := newBlock(k2)
	if err != nil {
		return nil, wrapKeyErr("MAK", err)
	}
	b2.Decrypt(chain, chain)
	b1.Encrypt(chain, chain)
	return chain, nil
}
