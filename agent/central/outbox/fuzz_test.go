package outbox

import (
	"bytes"
	"testing"
)

// FuzzDecodeRecord feeds arbitrary bytes to the record decoder, which reads
// whatever a power cut or a bad flash page left on disk: it must never panic
// or over-read, and whatever it accepts must be exactly what encodeRecord
// would have written.
func FuzzDecodeRecord(f *testing.F) {
	f.Add(encodeRecord(nil, Record{Seq: 1, Topic: "pos/v1/10000001/events", Payload: []byte(`{"seq":1}`)}))
	f.Add(encodeRecord(nil, Record{Seq: 1<<64 - 1, Topic: "pos/v1/10000001/status", Retained: true}))
	f.Add(encodeRecord(nil, Record{}))
	f.Add([]byte{})
	f.Add(make([]byte, headerSize+minBody))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, n, err := decodeRecord(b)
		if err != nil {
			if n != 0 {
				t.Fatalf("error %v with size %d", err, n)
			}
			return
		}
		if n < headerSize+minBody || n > len(b) {
			t.Fatalf("size %d of %d bytes", n, len(b))
		}
		if enc := encodeRecord(nil, r); !bytes.Equal(enc, b[:n]) {
			t.Fatalf("re-encoding differs:\n got %x\nwant %x", enc, b[:n])
		}
	})
}

// FuzzScanSegment runs the segment scanner, torn-tail detection included, on
// arbitrary file contents: no panic, and what it accepts is consistent.
func FuzzScanSegment(f *testing.F) {
	seg := []byte(segMagic)
	for i := range 3 {
		seg = encodeRecord(seg, Record{Seq: uint64(i + 1), Topic: "t", Retained: i == 1, Payload: []byte("payload")})
	}
	f.Add(seg, true)
	f.Add(seg, false)
	f.Add(seg[:len(seg)-3], true)
	f.Add([]byte(segMagic), true)
	f.Add([]byte{}, true)
	f.Fuzz(func(t *testing.T, b []byte, last bool) {
		s, err := scanSegment(b, 1, last)
		if err != nil {
			return
		}
		if s.goodEnd > int64(len(b)) || (!last && s.goodEnd != int64(len(b))) {
			t.Fatalf("goodEnd %d of %d (last %v)", s.goodEnd, len(b), last)
		}
		var sum int64
		for i, r := range s.recs {
			if r.Seq != uint64(i+1) {
				t.Fatalf("record %d has seq %d", i, r.Seq)
			}
			sum += s.sizes[i]
		}
		if len(s.recs) > 0 && int64(len(segMagic))+sum != s.goodEnd {
			t.Fatalf("sizes add up to %d, goodEnd %d", sum, s.goodEnd)
		}
	})
}
