package outbox

import (
	"bytes"
	"os"
	"testing"
)

// benchDir is where the benchmarks put their outbox: fsync cost depends on the
// filesystem, so OUTBOX_BENCH_DIR can point at the terminal's flash.
func benchDir(b *testing.B) string {
	if d := os.Getenv("OUTBOX_BENCH_DIR"); d != "" {
		dir, err := os.MkdirTemp(d, "outbox-bench-")
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { os.RemoveAll(dir) })
		return dir
	}
	return b.TempDir()
}

// BenchmarkAppend measures one durable Append of a report-sized payload: a
// write and an fsync, plus a segment roll (file create, directory fsync) every
// SegmentBytes.
func BenchmarkAppend(b *testing.B) {
	o, err := Open(benchDir(b), Options{MaxRecords: 1 << 30, MaxBytes: 1 << 40})
	if err != nil {
		b.Fatal(err)
	}
	defer o.Close()
	payload := bytes.Repeat([]byte("x"), 400) // a Message is 300–600 bytes of JSON
	b.SetBytes(int64(len(payload)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := o.Append("pos/v1/10000001/events", false, payload); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAppendAck is the steady state with the broker up: each report is
// appended, then acknowledged (an atomic cursor write: temp file, fsync,
// rename, directory fsync).
func BenchmarkAppendAck(b *testing.B) {
	o, err := Open(benchDir(b), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer o.Close()
	payload := bytes.Repeat([]byte("x"), 400)
	for b.Loop() {
		seq, err := o.Append("pos/v1/10000001/events", false, payload)
		if err != nil {
			b.Fatal(err)
		}
		if err := o.Ack(seq); err != nil {
			b.Fatal(err)
		}
	}
}
