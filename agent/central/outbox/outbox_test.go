package outbox

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"testing"
)

func open(t *testing.T, dir string, opts Options) *Outbox {
	t.Helper()
	o, err := Open(dir, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { o.Close() })
	return o
}

func mustAppend(t *testing.T, o *Outbox, topic string, retained bool, payload string) uint64 {
	t.Helper()
	seq, err := o.Append(topic, retained, []byte(payload))
	if err != nil {
		t.Fatalf("Append(%q): %v", payload, err)
	}
	return seq
}

func peekAll(t *testing.T, o *Outbox) []Record {
	t.Helper()
	recs, err := o.Peek(1 << 30)
	if err != nil {
		t.Fatalf("Peek: %v", err)
	}
	return recs
}

func seqs(recs []Record) []uint64 {
	var out []uint64
	for _, r := range recs {
		out = append(out, r.Seq)
	}
	return out
}

func segFiles(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*"+segSuffix))
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(m)
	return m
}

func TestRoundTrip(t *testing.T) {
	dir := t.TempDir()
	o := open(t, dir, Options{SegmentBytes: 100})
	want := []Record{
		{Seq: 1, Topic: "pos/v1/10000001/events", Payload: []byte(`{"seq":1}`)},
		{Seq: 2, Topic: "pos/v1/10000001/status", Retained: true, Payload: []byte(`{"seq":2}`)},
		{Seq: 3, Topic: "", Payload: nil},
		{Seq: 4, Topic: "t", Payload: bytes.Repeat([]byte{0, 0xff}, 300)}, // bigger than a segment
	}
	for _, r := range want {
		seq, err := o.Append(r.Topic, r.Retained, r.Payload)
		if err != nil || seq != r.Seq {
			t.Fatalf("Append = %d, %v; want %d", seq, err, r.Seq)
		}
	}
	check := func(o *Outbox) {
		t.Helper()
		got := peekAll(t, o)
		if len(got) != len(want) {
			t.Fatalf("Peek: %d records, want %d", len(got), len(want))
		}
		for i := range want {
			g, w := got[i], want[i]
			if g.Seq != w.Seq || g.Topic != w.Topic || g.Retained != w.Retained || !bytes.Equal(g.Payload, w.Payload) {
				t.Errorf("record %d = %+v, want %+v", i, g, w)
			}
		}
		if o.Len() != len(want) {
			t.Errorf("Len = %d", o.Len())
		}
	}
	check(o)
	if first, _ := o.Peek(1); len(first) != 1 || first[0].Seq != 1 {
		t.Errorf("Peek(1) = %v", seqs(first))
	}
	if none, _ := o.Peek(0); len(none) != 0 {
		t.Errorf("Peek(0) = %v", seqs(none))
	}
	o.Close()
	check(open(t, dir, Options{SegmentBytes: 100}))
}

func TestPeekReturnsCopies(t *testing.T) {
	o := open(t, t.TempDir(), Options{})
	p := []byte("abc")
	mustAppend(t, o, "t", false, string(p))
	p[0] = 'x' // the caller's buffer is not the outbox's
	r, _ := o.Peek(1)
	r[0].Payload[1] = 'x'
	r, _ = o.Peek(1)
	if string(r[0].Payload) != "abc" {
		t.Errorf("payload = %q, want abc", r[0].Payload)
	}
}

func TestReopenContinuesSeq(t *testing.T) {
	dir := t.TempDir()
	var last uint64
	for round := range 4 {
		o, err := Open(dir, Options{SegmentBytes: 64})
		if err != nil {
			t.Fatal(err)
		}
		for range 3 {
			seq := mustAppend(t, o, "t", false, "x")
			if seq != last+1 {
				t.Fatalf("round %d: seq %d after %d", round, seq, last)
			}
			last = seq
		}
		if round%2 == 1 {
			// Everything acknowledged and every segment deleted: only the
			// cursor remembers where seq stood.
			if err := o.Ack(last); err != nil {
				t.Fatal(err)
			}
			if n := len(segFiles(t, dir)); n != 0 {
				t.Fatalf("%d segments left after acking all", n)
			}
		}
		o.Close()
	}
}

func TestAck(t *testing.T) {
	dir := t.TempDir()
	// Each record is one segment's worth: 12+11+1+20 bytes against 60.
	o := open(t, dir, Options{SegmentBytes: 60})
	for i := range 6 {
		mustAppend(t, o, "t", false, fmt.Sprintf("payload-%012d", i))
	}
	if n := len(segFiles(t, dir)); n != 6 {
		t.Fatalf("%d segments, want 6", n)
	}
	if err := o.Ack(3); err != nil {
		t.Fatal(err)
	}
	if got := seqs(peekAll(t, o)); !slices.Equal(got, []uint64{4, 5, 6}) {
		t.Errorf("after Ack(3): %v", got)
	}
	if n := len(segFiles(t, dir)); n != 3 {
		t.Errorf("%d segments after Ack(3), want 3", n)
	}
	if err := o.Ack(2); err != nil { // idempotent, and not backwards
		t.Errorf("Ack(2) after Ack(3): %v", err)
	}
	if err := o.Ack(3); err != nil {
		t.Errorf("Ack(3) again: %v", err)
	}
	if err := o.Ack(7); !errors.Is(err, ErrFutureSeq) {
		t.Errorf("Ack(7) = %v, want ErrFutureSeq", err)
	}
	if got := o.Stats(); got.Acked != 3 || got.Records != 3 || got.Segments != 3 || got.NextSeq != 7 {
		t.Errorf("Stats = %+v", got)
	}
	o.Close()

	o = open(t, dir, Options{SegmentBytes: 60})
	if got := seqs(peekAll(t, o)); !slices.Equal(got, []uint64{4, 5, 6}) {
		t.Errorf("after reopen: %v", got)
	}
	if err := o.Ack(6); err != nil {
		t.Fatal(err)
	}
	if n := len(segFiles(t, dir)); n != 0 || o.Len() != 0 {
		t.Errorf("after Ack(6): %d segments, Len %d", n, o.Len())
	}
	if seq := mustAppend(t, o, "t", false, "x"); seq != 7 {
		t.Errorf("next seq %d, want 7", seq)
	}
}

func TestAckPartOfSegmentKeepsIt(t *testing.T) {
	dir := t.TempDir()
	o := open(t, dir, Options{}) // one segment for all
	for range 3 {
		mustAppend(t, o, "t", false, "x")
	}
	if err := o.Ack(2); err != nil {
		t.Fatal(err)
	}
	o.Close()
	// The segment still holds 1 and 2; the cursor hides them.
	o = open(t, dir, Options{})
	if got := seqs(peekAll(t, o)); !slices.Equal(got, []uint64{3}) {
		t.Errorf("after reopen: %v", got)
	}
}

// TestAckCrashBeforeDelete: the cursor is written but the process died before
// it removed the segments. Open must finish the job.
func TestAckCrashBeforeDelete(t *testing.T) {
	dir := t.TempDir()
	o := open(t, dir, Options{SegmentBytes: 60})
	for range 3 {
		mustAppend(t, o, "t", false, "payload-000000000000")
	}
	o.Close()
	if err := os.WriteFile(filepath.Join(dir, cursorName), encodeCursor(2), 0o600); err != nil {
		t.Fatal(err)
	}
	o = open(t, dir, Options{SegmentBytes: 60})
	if got := seqs(peekAll(t, o)); !slices.Equal(got, []uint64{3}) {
		t.Errorf("Peek = %v", got)
	}
	if n := len(segFiles(t, dir)); n != 1 {
		t.Errorf("%d segments, want 1", n)
	}
}

func TestOpenRefusesDamage(t *testing.T) {
	tests := []struct {
		name  string
		wreck func(t *testing.T, dir string)
	}{
		{"cursor missing", func(t *testing.T, dir string) {
			os.Remove(filepath.Join(dir, cursorName))
		}},
		{"cursor empty", func(t *testing.T, dir string) {
			os.WriteFile(filepath.Join(dir, cursorName), nil, 0o600)
		}},
		{"cursor other version", func(t *testing.T, dir string) {
			os.WriteFile(filepath.Join(dir, cursorName), []byte(`{"version":2,"acked":0}`), 0o600)
		}},
		{"segment renamed", func(t *testing.T, dir string) {
			segs := segFiles(t, dir)
			os.Rename(segs[0], filepath.Join(dir, segName(99)))
		}},
		{"old segment truncated", func(t *testing.T, dir string) {
			segs := segFiles(t, dir)
			fi, _ := os.Stat(segs[0])
			os.Truncate(segs[0], fi.Size()-1)
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			o := open(t, dir, Options{SegmentBytes: 60})
			for range 3 {
				mustAppend(t, o, "t", false, "payload-000000000000")
			}
			o.Close()
			tc.wreck(t, dir)
			if _, err := Open(dir, Options{SegmentBytes: 60}); !errors.Is(err, ErrCorrupt) {
				t.Errorf("Open = %v, want ErrCorrupt", err)
			}
		})
	}
}

// build writes n records into a fresh outbox, closes it, and returns the
// directory and the byte offset in the newest segment where the last record
// starts.
func build(t *testing.T, n int, opts Options) (dir string, lastStart, lastEnd int64) {
	t.Helper()
	dir = t.TempDir()
	o := open(t, dir, opts)
	for i := range n {
		mustAppend(t, o, "pos/v1/10000001/events", i%2 == 0, fmt.Sprintf(`{"seq":%d,"msg":"hello"}`, i+1))
	}
	o.Close()
	segs := segFiles(t, dir)
	fi, err := os.Stat(segs[len(segs)-1])
	if err != nil {
		t.Fatal(err)
	}
	size := recordSize(len("pos/v1/10000001/events"), len(fmt.Sprintf(`{"seq":%d,"msg":"hello"}`, n)))
	return dir, fi.Size() - size, fi.Size()
}

func copyDir(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	ents, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

// TestTornTail cuts the newest segment at every byte offset inside its last
// record (and, in the one-record-segment case, inside the magic too), or
// overwrites that tail with zeros as a power cut after a size update can:
// Open must keep exactly the complete records and continue from there.
func TestTornTail(t *testing.T) {
	cases := []struct {
		name string
		opts Options
	}{
		{"last record mid-segment", Options{}},
		{"last record alone in its segment", Options{SegmentBytes: 60}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			const n = 5
			src, start, end := build(t, n, tc.opts)
			segs := segFiles(t, src)
			newest := filepath.Base(segs[len(segs)-1])
			from := start
			if len(segs) == n { // one record per segment: tear the magic too
				from = 0
			}
			for _, zeros := range []bool{false, true} {
				for cut := from; cut < end; cut++ {
					dir := copyDir(t, src)
					path := filepath.Join(dir, newest)
					if zeros {
						f, err := os.OpenFile(path, os.O_WRONLY, 0)
						if err != nil {
							t.Fatal(err)
						}
						f.WriteAt(make([]byte, end-cut), cut)
						f.Close()
					} else if err := os.Truncate(path, cut); err != nil {
						t.Fatal(err)
					}
					o, err := Open(dir, tc.opts)
					if err != nil {
						t.Fatalf("cut %d zeros %v: Open: %v", cut, zeros, err)
					}
					got := seqs(peekAll(t, o))
					if !slices.Equal(got, []uint64{1, 2, 3, 4}) {
						t.Fatalf("cut %d zeros %v: records %v", cut, zeros, got)
					}
					size, goodEnd := cut, start
					if zeros {
						size = end
					}
					if from == 0 {
						goodEnd = 0 // the torn segment is removed whole
					}
					if tb := o.Stats().TruncatedBytes; tb != size-goodEnd {
						t.Errorf("cut %d zeros %v: TruncatedBytes %d, want %d", cut, zeros, tb, size-goodEnd)
					}
					// The next seq reuses 5: it was never durable.
					if seq := mustAppend(t, o, "t", false, "after"); seq != n {
						t.Fatalf("cut %d: seq %d after torn tail, want %d", cut, seq, n)
					}
					o.Close()
					o = open(t, dir, tc.opts)
					if got := seqs(peekAll(t, o)); !slices.Equal(got, []uint64{1, 2, 3, 4, 5}) {
						t.Fatalf("cut %d: after reopen %v", cut, got)
					}
					o.Close()
				}
			}
		})
	}
}

// TestBitFlip flips one bit in every byte of a record that is followed by
// complete records: that is damage, not a torn write, and Open must say so.
func TestBitFlip(t *testing.T) {
	const n = 5
	src, _, _ := build(t, n, Options{})
	segs := segFiles(t, src)
	if len(segs) != 1 {
		t.Fatalf("%d segments", len(segs))
	}
	// Record 2 starts after the magic and record 1.
	start := int64(len(segMagic)) + recordSize(len("pos/v1/10000001/events"), len(`{"seq":1,"msg":"hello"}`))
	size := recordSize(len("pos/v1/10000001/events"), len(`{"seq":2,"msg":"hello"}`))
	orig, err := os.ReadFile(segs[0])
	if err != nil {
		t.Fatal(err)
	}
	for off := start; off < start+size; off++ {
		for bit := range 8 {
			dir := t.TempDir()
			b := bytes.Clone(orig)
			b[off] ^= 1 << bit
			os.WriteFile(filepath.Join(dir, filepath.Base(segs[0])), b, 0o600)
			os.WriteFile(filepath.Join(dir, cursorName), encodeCursor(0), 0o600)
			o, err := Open(dir, Options{})
			if err == nil {
				o.Close()
			}
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("flip at %d bit %d: Open = %v, want ErrCorrupt", off, bit, err)
			}
		}
	}
}

func TestBitFlipInOlderSegment(t *testing.T) {
	src, _, _ := build(t, 4, Options{SegmentBytes: 60})
	segs := segFiles(t, src)
	b, _ := os.ReadFile(segs[0])
	last := len(b) - 1 // the last byte of the only record: in the newest segment this would read as torn
	b[last] ^= 0x10
	os.WriteFile(segs[0], b, 0o600)
	if _, err := Open(src, Options{SegmentBytes: 60}); !errors.Is(err, ErrCorrupt) {
		t.Errorf("Open = %v, want ErrCorrupt", err)
	}
}

func TestTooLarge(t *testing.T) {
	o := open(t, t.TempDir(), Options{MaxBytes: 100})
	if _, err := o.Append("t", false, make([]byte, 100)); !errors.Is(err, ErrTooLarge) {
		t.Errorf("over MaxBytes: %v", err)
	}
	if _, err := o.Append("t", false, make([]byte, MaxPayload+1)); !errors.Is(err, ErrTooLarge) {
		t.Errorf("over MaxPayload: %v", err)
	}
	if seq := mustAppend(t, o, "t", false, "fits"); seq != 1 {
		t.Errorf("seq %d: a refused record must not use a seq", seq)
	}
}

func TestAppendWith(t *testing.T) {
	o := open(t, t.TempDir(), Options{})
	if _, err := o.AppendWith("t", false, func(uint64) ([]byte, error) { return nil, errors.New("boom") }); err == nil {
		t.Fatal("no error from a failing build")
	}
	seq, err := o.AppendWith("t", false, func(seq uint64) ([]byte, error) {
		return fmt.Appendf(nil, `{"seq":%d}`, seq), nil
	})
	if err != nil || seq != 1 {
		t.Fatalf("AppendWith = %d, %v", seq, err)
	}
	r, _ := o.Peek(1)
	if string(r[0].Payload) != `{"seq":1}` {
		t.Errorf("payload %s", r[0].Payload)
	}
}

func TestClosed(t *testing.T) {
	o := open(t, t.TempDir(), Options{})
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}
	if err := o.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := o.Append("t", false, nil); !errors.Is(err, ErrClosed) {
		t.Errorf("Append after Close: %v", err)
	}
	if _, err := o.Peek(1); !errors.Is(err, ErrClosed) {
		t.Errorf("Peek after Close: %v", err)
	}
	if err := o.Ack(0); !errors.Is(err, ErrClosed) {
		t.Errorf("Ack after Close: %v", err)
	}
}

func TestBadOptions(t *testing.T) {
	if _, err := Open(t.TempDir(), Options{MaxRecords: -1}); err == nil {
		t.Error("negative MaxRecords accepted")
	}
}

// TestConcurrent runs the reporter's pattern, one appender and one
// Peek/Ack consumer, under -race: the consumer must see every seq once, in
// order.
func TestConcurrent(t *testing.T) {
	o := open(t, t.TempDir(), Options{SegmentBytes: 512})
	const n = 200
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range n {
			if _, err := o.Append("t", i%10 == 0, fmt.Appendf(nil, "%d", i+1)); err != nil {
				t.Errorf("Append: %v", err)
				return
			}
		}
	}()
	var next uint64 = 1
	for next <= n {
		recs, err := o.Peek(7)
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) == 0 {
			runtime.Gosched() // the appender is still fsyncing; it finishes by itself
			continue
		}
		for _, r := range recs {
			if r.Seq != next || string(r.Payload) != fmt.Sprint(next) {
				t.Fatalf("got seq %d payload %s, want %d", r.Seq, r.Payload, next)
			}
			next++
		}
		if err := o.Ack(recs[len(recs)-1].Seq); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	if s := o.Stats(); s.Records != 0 || s.Segments > 1 || s.Dropped != 0 {
		t.Errorf("Stats after draining: %+v", s)
	}
}

// TestOpenRemovesCursorTemp: a kill inside store.WriteFile leaves its temp
// file; Open removes it rather than let kills pile them up.
func TestOpenRemovesCursorTemp(t *testing.T) {
	dir := t.TempDir()
	open(t, dir, Options{}).Close()
	tmp := filepath.Join(dir, "."+cursorName+".tmp-123")
	if err := os.WriteFile(tmp, []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	open(t, dir, Options{})
	if _, err := os.Stat(tmp); !os.IsNotExist(err) {
		t.Errorf("temp file still there: %v", err)
	}
}
