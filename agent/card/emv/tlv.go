package emv

import (
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// Our own BER-TLV decoder rather than moov-io/bertlv: the card is untrusted
// input, and we need positions in errors, padding bytes (00/FF between objects,
// EMV Book 3 annex B), a depth bound and a guarantee of no panics, which a
// dozen lines of our own fuzzed code give more cheaply than auditing a library.

// Tag is a BER-TLV tag as its big-endian bytes packed in a uint32 (5F24 →
// 0x5F24). EMV tags are at most 3 bytes.
type Tag uint32

// String is the tag in hex, as EMV books write it.
func (t Tag) String() string {
	switch {
	case t > 0xFFFF:
		return fmt.Sprintf("%06X", uint32(t))
	case t > 0xFF:
		return fmt.Sprintf("%04X", uint32(t))
	}
	return fmt.Sprintf("%02X", uint32(t))
}

// Constructed reports whether the tag's first byte has the constructed bit.
func (t Tag) Constructed() bool {
	b := t
	for b > 0xFF {
		b >>= 8
	}
	return b&0x20 != 0
}

// Bytes encodes the tag.
func (t Tag) Bytes() []byte {
	switch {
	case t > 0xFFFF:
		return []byte{byte(t >> 16), byte(t >> 8), byte(t)}
	case t > 0xFF:
		return []byte{byte(t >> 8), byte(t)}
	}
	return []byte{byte(t)}
}

// TLV is one decoded data object. Constructed objects carry their children in
// Children and their raw content in Value.
type TLV struct {
	Tag      Tag
	Value    []byte
	Children []TLV
}

// ErrTLV is wrapped by every decoding error.
var ErrTLV = errors.New("emv: malformed BER-TLV")

// maxDepth bounds nesting: EMV templates nest 4 deep at most (6F/A5/BF0C/61).
const maxDepth = 8

// DecodeTLV parses a sequence of BER-TLV objects, descending into constructed
// ones. Values alias b. Errors say where (offset, tag), never what the bytes are.
func DecodeTLV(b []byte) ([]TLV, error) { return decode(b, 0, 0) }

func decode(b []byte, base, depth int) ([]TLV, error) {
	if depth > maxDepth {
		return nil, fmt.Errorf("%w: nested deeper than %d at offset %d", ErrTLV, maxDepth, base)
	}
	var out []TLV
	for i := 0; i < len(b); {
		// 00 and FF between objects are padding (EMV Book 3 annex B1).
		if b[i] == 0x00 || b[i] == 0xFF {
			i++
			continue
		}
		start := i
		tag := Tag(b[i])
		if b[i]&0x1F == 0x1F {
			for {
				i++
				if i >= len(b) {
					return nil, fmt.Errorf("%w: tag truncated at offset %d", ErrTLV, base+start)
				}
				if tag > 0xFFFF {
					return nil, fmt.Errorf("%w: tag longer than 3 bytes at offset %d", ErrTLV, base+start)
				}
				tag = tag<<8 | Tag(b[i])
				if b[i]&0x80 == 0 {
					break
				}
			}
		}
		i++
		if i >= len(b) {
			return nil, fmt.Errorf("%w: tag %v: length missing at offset %d", ErrTLV, tag, base+start)
		}
		n := int(b[i])
		i++
		if n&0x80 != 0 {
			k := n & 0x7F
			if k == 0 || k > 3 || i+k > len(b) {
				return nil, fmt.Errorf("%w: tag %v: bad length field at offset %d", ErrTLV, tag, base+start)
			}
			n = 0
			for j := 0; j < k; j++ {
				n = n<<8 | int(b[i+j])
			}
			i += k
		}
		if n > len(b)-i {
			return nil, fmt.Errorf("%w: tag %v: value truncated at offset %d (%d bytes declared, %d left)",
				ErrTLV, tag, base+start, n, len(b)-i)
		}
		o := TLV{Tag: tag, Value: b[i : i+n : i+n]}
		if tag.Constructed() {
			kids, err := decode(o.Value, base+i, depth+1)
			if err != nil {
				return nil, err
			}
			o.Children = kids
		}
		out = append(out, o)
		i += n
	}
	return out, nil
}

// Find returns the first object with tag t, searching depth-first.
func Find(objs []TLV, t Tag) (TLV, bool) {
	for _, o := range objs {
		if o.Tag == t {
			return o, true
		}
		if r, ok := Find(o.Children, t); ok {
			return r, true
		}
	}
	return TLV{}, false
}

// FindAll returns every object with tag t, depth-first, in order.
func FindAll(objs []TLV, t Tag) []TLV {
	var out []TLV
	for _, o := range objs {
		if o.Tag == t {
			out = append(out, o)
		}
		out = append(out, FindAll(o.Children, t)...)
	}
	return out
}

// EncodeTLV appends one primitive object (definite length, short or long form).
func EncodeTLV(dst []byte, t Tag, v []byte) []byte {
	dst = append(dst, t.Bytes()...)
	switch n := len(v); {
	case n < 0x80:
		dst = append(dst, byte(n))
	case n <= 0xFF:
		dst = append(dst, 0x81, byte(n))
	default:
		dst = append(dst, 0x82, byte(n>>8), byte(n))
	}
	return append(dst, v...)
}

// DOLEntry is one tag/length pair of a data object list (PDOL 9F38, CDOL1 8C).
type DOLEntry struct {
	Tag Tag
	Len int
}

// ParseDOL parses a DOL: tags followed by one-byte lengths, no values.
func ParseDOL(b []byte) ([]DOLEntry, error) {
	var out []DOLEntry
	for i := 0; i < len(b); {
		start := i
		tag := Tag(b[i])
		if b[i]&0x1F == 0x1F {
			for {
				i++
				if i >= len(b) || tag > 0xFFFF {
					return nil, fmt.Errorf("%w: DOL tag at offset %d", ErrTLV, start)
				}
				tag = tag<<8 | Tag(b[i])
				if b[i]&0x80 == 0 {
					break
				}
			}
		}
		i++
		if i >= len(b) {
			return nil, fmt.Errorf("%w: DOL tag %v: length missing", ErrTLV, tag)
		}
		out = append(out, DOLEntry{Tag: tag, Len: int(b[i])})
		i++
	}
	return out, nil
}

// Hex is upper-case hex, the way EMV traces are written.
func Hex(b []byte) string { return strings.ToUpper(hex.EncodeToString(b)) }
