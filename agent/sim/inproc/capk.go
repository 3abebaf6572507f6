package inproc

import (
	"crypto/sha1"
	"crypto/sha256"
	"encoding/binary"
	"math/big"
	"sync"

	"github.com/posagent/posagent/provisioning"
)

// UnionPayRID is the RID of UnionPay's certification authority keys.
var UnionPayRID = []byte{0xA0, 0x00, 0x00, 0x03, 0x33}

// demoKeySizes are the simulated CA keys: index and modulus length in bits,
// the lengths UnionPay's keys come in.
var demoKeySizes = []struct {
	index byte
	bits  int
}{{0x02, 1024}, {0x03, 1152}, {0x04, 1408}}

// DemoCAPKs are the simulated host's CA public keys: real RSA moduli (the
// product of two primes found from a fixed seed, so every run serves the
// same keys), exponent 3, with the EMV checksum. Their private halves are
// never kept: nothing signs with them, the terminal only stores and checks
// them.
var DemoCAPKs = sync.OnceValue(func() []provisioning.CAPK {
	var keys []provisioning.CAPK
	for _, s := range demoKeySizes {
		p := seededPrime(s.index, 1, s.bits/2)
		q := seededPrime(s.index, 2, s.bits/2)
		n := new(big.Int).Mul(p, q)
		k := provisioning.CAPK{RID: UnionPayRID, Index: s.index, Expiry: "20341231", HashAlgo: 0x01, KeyAlgo: 0x01,
			Modulus: n.FillBytes(make([]byte, s.bits/8)), Exponent: []byte{0x03}}
		k.Checksum = capkChecksum(k)
		keys = append(keys, k)
	}
	return keys
})

// capkChecksum is DF03: SHA-1 over RID, index, modulus and exponent.
func capkChecksum(k provisioning.CAPK) []byte {
	h := sha1.New()
	h.Write(k.RID)
	h.Write([]byte{k.Index})
	h.Write(k.Modulus)
	h.Write(k.Exponent)
	return h.Sum(nil)
}

// seededPrime is the first prime p ≡ 2 (mod 3) at or after a number of
// bits bits drawn from SHA-256 of (index, which): deterministic, its top two
// bits set so that the product of two has exactly twice the bits, and
// p ≡ 2 (mod 3) so that 3 is a valid public exponent.
func seededPrime(index byte, which, bits int) *big.Int {
	buf := make([]byte, 0, bits/8)
	for ctr := uint32(0); len(buf) < bits/8; ctr++ {
		var in [9]byte
		in[0] = index
		binary.BigEndian.PutUint32(in[1:], uint32(which))
		binary.BigEndian.PutUint32(in[5:], ctr)
		sum := sha256.Sum256(in[:])
		buf = append(buf, sum[:]...)
	}
	buf = buf[:bits/8]
	buf[0] |= 0xC0
	buf[len(buf)-1] |= 0x01
	p := new(big.Int).SetBytes(buf)
	two, three := big.NewInt(2), big.NewInt(3)
	m := new(big.Int)
	for {
		if m.Mod(p, three).Cmp(two) == 0 && p.ProbablyPrime(20) {
			return p
		}
		p.Add(p, two)
	}
}

// DemoApps are the simulated host's IC parameters: UnionPay debit and
// credit, online PIN, floor limit 0 (the terminal is online only), the
// action codes UnionPay's test hosts send.
func DemoApps() []provisioning.AppParams {
	app := func(suffix byte) provisioning.AppParams {
		return provisioning.AppParams{
			AID:          append(append([]byte{}, UnionPayRID...), 0x01, 0x01, suffix),
			PartialMatch: true, Version: []byte{0x00, 0x20},
			TACDefault: []byte{0xD8, 0x40, 0x00, 0xA8, 0x00}, TACOnline: []byte{0xD8, 0x40, 0x04, 0xF8, 0x00},
			TACDenial: []byte{0x00, 0x10, 0x00, 0x00, 0x00}, FloorLimit: 0, Threshold: 0,
			MaxTargetPercent: 0, TargetPercent: 0, DefaultDDOL: []byte{0x9F, 0x37, 0x04}, OnlinePIN: true,
		}
	}
	return []provisioning.AppParams{app(0x01), app(0x02)}
}
