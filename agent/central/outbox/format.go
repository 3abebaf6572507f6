package outbox

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"strconv"
	"strings"
)

// On-disk format, version 1.
//
// A segment file is named "%020d.seg" after the seq of its first record, so a
// directory listing sorted by name is sorted by seq. It starts with the 8-byte
// magic segMagic and then holds records back to back:
//
//	offset size field
//	0      4    body length L, little endian
//	4      4    ^L (bitwise complement): a cheap check that the length itself
//	            is intact, so a flipped length is never trusted and a scan for
//	            later records can skip most offsets without a CRC
//	8      4    CRC-32C (Castagnoli) of the body
//	12     L    body:
//	            0  8  seq, little endian
//	            8  1  flags: bit 0 = retained; other bits must be 0
//	            9  2  topic length T, little endian
//	            11 T  topic
//	            .. .. payload (the rest of the body)
//
// Records in one segment have consecutive seqs starting at the file's name.
// The acknowledged prefix lives in the file "cursor", JSON {"version":1,
// "acked":N}, replaced atomically by store.WriteFile.

// Names and sizes of the format above.
const (
	segMagic   = "POSOBX1\n"
	segSuffix  = ".seg"
	cursorName = "cursor"

	headerSize = 12
	// minBody is a body with an empty topic and an empty payload.
	minBody = 8 + 1 + 2

	maxBody = minBody + MaxTopic + MaxPayload

	flagRetained = 1 << 0

	formatVersion = 1
)

// Limits of one record.
const (
	// MaxTopic is the longest topic a record can carry (the 16-bit length field).
	MaxTopic = 1<<16 - 1
	// MaxPayload is the largest payload a record can carry. It bounds what the
	// decoder will believe a length field, so a corrupt length cannot make Open
	// allocate gigabytes on a terminal with little RAM.
	MaxPayload = 1 << 20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Reasons decodeRecord gives. errShort is the only one that more bytes could
// cure; the rest mean the bytes at this offset are not a record.
var (
	errShort    = errors.New("incomplete record")
	errHeader   = errors.New("bad record header")
	errChecksum = errors.New("record checksum mismatch")
	errBody     = errors.New("bad record body")
)

// recordSize is the encoded size of a record with these lengths.
func recordSize(topic, payload int) int64 {
	return int64(headerSize + minBody + topic + payload)
}

// encodeRecord appends r's encoding to dst.
func encodeRecord(dst []byte, r Record) []byte {
	l := minBody + len(r.Topic) + len(r.Payload)
	var h [headerSize + minBody]byte
	binary.LittleEndian.PutUint32(h[0:], uint32(l))
	binary.LittleEndian.PutUint32(h[4:], ^uint32(l))
	binary.LittleEndian.PutUint64(h[12:], r.Seq)
	if r.Retained {
		h[20] = flagRetained
	}
	binary.LittleEndian.PutUint16(h[21:], uint16(len(r.Topic)))
	start := len(dst)
	dst = append(dst, h[:]...)
	dst = append(dst, r.Topic...)
	dst = append(dst, r.Payload...)
	binary.LittleEndian.PutUint32(dst[start+8:], crc32.Checksum(dst[start+headerSize:], castagnoli))
	return dst
}

// decodeRecord decodes the record at the start of b and returns it with its
// encoded size. The payload is a copy: b may be reused. It never panics and
// never allocates more than b holds.
func decodeRecord(b []byte) (Record, int, error) {
	if len(b) < headerSize {
		return Record{}, 0, errShort
	}
	l := binary.LittleEndian.Uint32(b[0:])
	if l != ^binary.LittleEndian.Uint32(b[4:]) || l < minBody || l > maxBody {
		return Record{}, 0, errHeader
	}
	n := headerSize + int(l)
	if len(b) < n {
		return Record{}, 0, errShort
	}
	body := b[headerSize:n]
	if crc32.Checksum(body, castagnoli) != binary.LittleEndian.Uint32(b[8:]) {
		return Record{}, 0, errChecksum
	}
	flags := body[8]
	if flags&^flagRetained != 0 {
		return Record{}, 0, errBody
	}
	tl := int(binary.LittleEndian.Uint16(body[9:]))
	if minBody+tl > len(body) {
		return Record{}, 0, errBody
	}
	r := Record{
		Seq:      binary.LittleEndian.Uint64(body[0:]),
		Retained: flags&flagRetained != 0,
		Topic:    string(body[minBody : minBody+tl]),
		Payload:  append([]byte{}, body[minBody+tl:]...),
	}
	return r, n, nil
}

// validRecordAfter reports whether a whole, checksummed record with a seq of
// at least minSeq starts anywhere in b at or after offset from. It tells a torn
// tail (nothing valid follows the bad bytes: the last write was cut short) from
// corruption in the middle (later records follow, so the bad bytes were once
// good). The seq bound keeps a record-shaped payload inside the torn record
// itself from passing for a later one.
func validRecordAfter(b []byte, from int, minSeq uint64) bool {
	for o := from; o+headerSize+minBody <= len(b); o++ {
		if r, _, err := decodeRecord(b[o:]); err == nil && r.Seq >= minSeq {
			return true
		}
	}
	return false
}

// scanned is what scanSegment found in one segment file.
type scanned struct {
	recs    []Record
	sizes   []int64
	goodEnd int64 // bytes up to the end of the last good record (0: none, not even the magic)
}

// scanSegment decodes a segment's bytes. first is the seq from the file name.
// In the last segment (last) a bad tail with nothing valid after it is a torn
// write and ends the scan at goodEnd; anywhere else a bad record is
// ErrCorrupt, since every earlier segment was fsynced whole before the next
// was created. Errors name the offset, never the content.
func scanSegment(b []byte, first uint64, last bool) (scanned, error) {
	var s scanned
	want := first
	bad := func(off int, why error) (scanned, error) {
		if last && !validRecordAfter(b, off+1, want+1) {
			return s, nil // torn tail: goodEnd stays at the last good record
		}
		return scanned{}, fmt.Errorf("%w: offset %d: %v", ErrCorrupt, off, why)
	}
	if len(b) < len(segMagic) || string(b[:len(segMagic)]) != segMagic {
		return bad(0, errors.New("bad segment magic"))
	}
	s.goodEnd = int64(len(segMagic))
	for off := len(segMagic); off < len(b); {
		r, n, err := decodeRecord(b[off:])
		if err != nil {
			return bad(off, err)
		}
		if r.Seq != want {
			// A checksummed record with the wrong seq is not a torn write.
			return scanned{}, fmt.Errorf("%w: offset %d: seq %d, want %d", ErrCorrupt, off, r.Seq, want)
		}
		want++
		s.recs = append(s.recs, r)
		s.sizes = append(s.sizes, int64(n))
		off += n
		s.goodEnd = int64(off)
	}
	return s, nil
}

// segName is the file name of the segment whose first record has seq first.
func segName(first uint64) string { return fmt.Sprintf("%020d%s", first, segSuffix) }

// parseSegName returns the first seq of a segment file name, or false for any
// other file (the cursor, store's temp files).
func parseSegName(name string) (uint64, bool) {
	digits, ok := strings.CutSuffix(name, segSuffix)
	if !ok || len(digits) != 20 {
		return 0, false
	}
	v, err := strconv.ParseUint(digits, 10, 64)
	if err != nil || v == 0 {
		return 0, false
	}
	return v, true
}

// cursor is the content of the cursor file. The version is explicit so a later
// format can refuse an old one instead of misreading it.
type cursor struct {
	Version int    `json:"version"`
	Acked   uint64 `json:"acked"`
}

func encodeCursor(acked uint64) []byte {
	b, _ := json.Marshal(cursor{Version: formatVersion, Acked: acked}) // plain data: cannot fail
	return append(b, '\n')
}

func decodeCursor(b []byte) (uint64, error) {
	var c cursor
	if err := json.Unmarshal(b, &c); err != nil {
		return 0, fmt.Errorf("%w: cursor: %v", ErrCorrupt, err)
	}
	if c.Version != formatVersion {
		return 0, fmt.Errorf("%w: cursor version %d, want %d", ErrCorrupt, c.Version, formatVersion)
	}
	return c.Acked, nil
}
