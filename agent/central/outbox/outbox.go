// Package outbox is a durable, bounded FIFO of MQTT publishes: the reporter
// writes each report here before it publishes it, and removes it on PUBACK, so
// that nothing is lost to a broker outage, a restart, a SIGKILL or a power cut
// (see docs/mqtt.md and issue 6).
//
// The queue lives in a directory of append-only segment files plus a small
// cursor file that records the acknowledged prefix (format.go documents the
// bytes). Append returns only once its record is on stable storage. Every
// record carries its length and a CRC-32C, so after a power cut Open finds a
// write that was cut short at the end of the newest segment and truncates it;
// a damaged record anywhere else is reported as ErrCorrupt rather than skipped,
// because skipping would silently lose reports that were acknowledged to the
// caller as durable.
//
// Each record gets a seq from a counter that survives restarts (it continues
// after the highest seq on disk or in the cursor and never repeats), so a
// monitor can drop the duplicates that QoS 1 and replays produce.
//
// When the outbox is full (Options.MaxRecords, Options.MaxBytes) Append never
// blocks and never fails for lack of room: it drops the oldest records that
// matter least, as described at Options.
//
// Use by the reporter: one record per report, on the events topic, built with
// AppendWith so that the Message's seq is the record's seq (contiguous and
// restart-proof); the publisher Peeks the oldest record, publishes it at QoS 1
// and Acks it on PUBACK. The retained status is the newest record's payload,
// which the policy never drops, so it needs no record of its own.
//
// Only one Outbox may use a directory at a time; nothing enforces it.
package outbox

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/posagent/posagent/agent/store"
)

// Defaults for Options.
const (
	DefaultMaxRecords   = 1024
	DefaultMaxBytes     = 1 << 20
	DefaultSegmentBytes = 64 << 10
)

// Errors callers branch on.
var (
	// ErrCorrupt means the directory holds damage that is not a torn final
	// write: a bad record before the end of the newest segment, a missing or
	// unreadable cursor next to segments, seqs out of order. The outbox refuses
	// to guess; an operator (or the agent's policy) decides to move it aside.
	ErrCorrupt = errors.New("outbox: corrupt")
	// ErrClosed is returned by every method after Close, and (wrapped with the
	// cause) after a failed fsync or a write that could not be undone, when
	// what is on disk is no longer known: reopen to rescan and recover.
	ErrClosed = errors.New("outbox: closed")
	// ErrFutureSeq is returned by Ack for a seq that was never appended.
	ErrFutureSeq = errors.New("outbox: ack of a seq not yet appended")
	// ErrTooLarge is returned by Append for a record that could never fit:
	// larger than MaxPayload, MaxTopic or Options.MaxBytes.
	ErrTooLarge = errors.New("outbox: record too large")
)

// Options bounds an outbox. Zero values take the defaults.
//
// Policy when full. The bounds count the records not yet acknowledged (Len)
// and their encoded bytes. After a record is appended, while a bound is
// exceeded, one record is dropped, chosen in this order:
//
//  1. the oldest non-retained record (an event: history that a monitor can
//     live without more easily than the current state);
//  2. else the oldest retained record that a newer record on the same topic
//     supersedes (the broker would overwrite it anyway).
//
// The newest record, and the newest record of each retained topic, are never
// dropped. If only such records are left, the outbox stays over its bound
// rather than block or fail the install: the excess is at most one record per
// retained topic. Drops are counted in Stats.Dropped.
//
// Drops are decided in memory. A dropped record whose segment file still holds
// other live records can come back after a restart (Open applies the policy
// again, so only if the bounds then allow it); it is never a loss, and its seq
// lets a monitor tell it from a duplicate.
type Options struct {
	MaxRecords int   // default DefaultMaxRecords
	MaxBytes   int64 // default DefaultMaxBytes
	// SegmentBytes is the size at which a new segment file is started. Smaller
	// segments free disk sooner after an Ack; larger ones mean fewer files.
	SegmentBytes int64 // default DefaultSegmentBytes
}

// Record is one queued publish.
type Record struct {
	Seq      uint64 // assigned by Append: 1, 2, 3…, never reused in a directory
	Topic    string
	Retained bool
	Payload  []byte
}

// Stats is a snapshot of an outbox's counters.
type Stats struct {
	Records  int    // records not yet acknowledged (Len)
	Bytes    int64  // their encoded size, what MaxBytes bounds
	Segments int    // segment files on disk
	NextSeq  uint64 // seq the next Append will get
	Acked    uint64 // highest seq acknowledged
	// Dropped counts records dropped by the size policy since Open.
	Dropped uint64
	// TruncatedBytes is how much torn tail Open cut from the newest segment.
	TruncatedBytes int64
}

// Outbox is a durable FIFO in one directory.
//
// Concurrency: every method is safe to call from any goroutine; one mutex
// serialises them. The intended use is one goroutine appending (the flow's
// Report) and one publishing (Peek, publish, Ack). Append holds the mutex
// through its fsync, so a Peek or Ack issued meanwhile waits for that fsync.
type Outbox struct {
	dir  string
	opts Options

	mu sync.Mutex
	// err is set by Close (ErrClosed) or by a failed write/fsync whose effect on
	// the file is unknown; every method then fails with it.
	err    error
	segs   []*segment // oldest first
	active *os.File   // the newest segment, open for appending; nil until needed
	live   []*entry   // unacknowledged, undropped records, oldest first
	bytes  int64      // encoded bytes of live
	next   uint64
	acked  uint64
	// latest maps a retained topic to the seq of its newest live record: the
	// one the policy must keep.
	latest    map[string]uint64
	dropped   uint64
	truncated int64
}

type segment struct {
	first, last uint64 // seqs of its first and last records
	path        string
	size        int64
	live        int // records in it that are neither acknowledged nor dropped
}

type entry struct {
	rec  Record
	size int64
	seg  *segment
}

// Open opens the outbox in dir, creating the directory (0700) and an empty
// outbox if there is none. It truncates a torn final write and deletes segments
// that hold nothing live, then applies the size policy. A damaged record
// elsewhere is ErrCorrupt.
func Open(dir string, opts Options) (*Outbox, error) {
	if opts.MaxRecords < 0 || opts.MaxBytes < 0 || opts.SegmentBytes < 0 {
		return nil, errors.New("outbox: negative bound in Options")
	}
	if opts.MaxRecords == 0 {
		opts.MaxRecords = DefaultMaxRecords
	}
	if opts.MaxBytes == 0 {
		opts.MaxBytes = DefaultMaxBytes
	}
	if opts.SegmentBytes == 0 {
		opts.SegmentBytes = DefaultSegmentBytes
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("outbox: %w", err)
	}
	o := &Outbox{dir: dir, opts: opts, latest: map[string]uint64{}}
	if err := o.load(); err != nil {
		return nil, err
	}
	return o, nil
}

func (o *Outbox) load() error {
	ents, err := os.ReadDir(o.dir)
	if err != nil {
		return fmt.Errorf("outbox: %w", err)
	}
	var firsts []uint64
	for _, e := range ents {
		if first, ok := parseSegName(e.Name()); ok && e.Type().IsRegular() {
			firsts = append(firsts, first)
		}
		// store.WriteFile's temp file, left by a kill during an Ack.
		if strings.HasPrefix(e.Name(), "."+cursorName+".tmp-") {
			os.Remove(filepath.Join(o.dir, e.Name()))
		}
	}
	slices.Sort(firsts)

	cursorPath := filepath.Join(o.dir, cursorName)
	b, err := os.ReadFile(cursorPath)
	switch {
	case errors.Is(err, fs.ErrNotExist) && len(firsts) == 0:
		// A new outbox. The cursor is written now, so that from here on a
		// missing cursor beside segments means damage, not "nothing acked".
		if err := store.WriteFile(cursorPath, encodeCursor(0), 0o600); err != nil {
			return fmt.Errorf("outbox: %w", err)
		}
		// The directory itself may be new: its entry in the parent must be
		// durable too, or a power cut could take every record with it.
		if err := store.SyncDir(filepath.Dir(filepath.Clean(o.dir))); err != nil {
			return fmt.Errorf("outbox: %w", err)
		}
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%w: cursor missing beside %d segments", ErrCorrupt, len(firsts))
	case err != nil:
		return fmt.Errorf("outbox: %w", err)
	default:
		if o.acked, err = decodeCursor(b); err != nil {
			return err
		}
	}

	maxSeq := o.acked
	var prevLast uint64
	removed := false
	for i, first := range firsts {
		path := filepath.Join(o.dir, segName(first))
		data, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("outbox: %w", err)
		}
		last := i == len(firsts)-1
		s, err := scanSegment(data, first, last)
		if err != nil {
			return fmt.Errorf("%w (segment %s)", err, segName(first))
		}
		if first <= prevLast {
			return fmt.Errorf("%w: segment %s overlaps the one before", ErrCorrupt, segName(first))
		}
		if len(s.recs) == 0 {
			if !last {
				// Every older segment was fsynced with its records before the
				// next one was created.
				return fmt.Errorf("%w: segment %s holds no record", ErrCorrupt, segName(first))
			}
			// Torn while being created (the magic and the first record are one
			// write): it never held a durable record.
			o.truncated += int64(len(data))
			if err := os.Remove(path); err != nil {
				return fmt.Errorf("outbox: %w", err)
			}
			removed = true
			continue
		}
		if s.goodEnd < int64(len(data)) {
			o.truncated += int64(len(data)) - s.goodEnd
			if err := truncateSync(path, s.goodEnd); err != nil {
				return err
			}
		}
		seg := &segment{first: first, last: s.recs[len(s.recs)-1].Seq, path: path, size: s.goodEnd}
		maxSeq = max(maxSeq, seg.last)
		prevLast = seg.last
		o.segs = append(o.segs, seg)
		for j, r := range s.recs {
			if r.Seq <= o.acked {
				continue
			}
			seg.live++
			o.live = append(o.live, &entry{rec: r, size: s.sizes[j], seg: seg})
			o.bytes += s.sizes[j]
			if r.Retained {
				o.latest[r.Topic] = r.Seq
			}
		}
	}
	o.next = maxSeq + 1
	o.enforce()
	if o.removeDead() || removed {
		if err := store.SyncDir(o.dir); err != nil {
			return fmt.Errorf("outbox: %w", err)
		}
	}
	return nil
}

// truncateSync cuts a torn tail off and makes the cut durable before anything
// is appended after it: otherwise a power cut could bring the torn bytes back
// in the middle of the segment, where they would read as corruption.
func truncateSync(path string, size int64) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("outbox: %w", err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		return fmt.Errorf("outbox: truncate torn tail: %w", err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("outbox: truncate torn tail: %w", err)
	}
	return nil
}

// Append queues a publish and returns its seq once the record is on stable
// storage. The outbox keeps its own copy of payload.
func (o *Outbox) Append(topic string, retained bool, payload []byte) (uint64, error) {
	return o.AppendWith(topic, retained, func(uint64) ([]byte, error) { return payload, nil })
}

// AppendWith is Append for a payload that must contain its own seq (a report's
// "seq" field): build gets the seq the record will have and returns the
// payload. build runs with the outbox locked and must not call it. If build
// fails, nothing is written and the seq is not used.
func (o *Outbox) AppendWith(topic string, retained bool, build func(seq uint64) ([]byte, error)) (uint64, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.err != nil {
		return 0, o.err
	}
	seq := o.next
	payload, err := build(seq)
	if err != nil {
		return 0, fmt.Errorf("outbox: build payload: %w", err)
	}
	size := recordSize(len(topic), len(payload))
	if len(topic) > MaxTopic || len(payload) > MaxPayload || size > o.opts.MaxBytes {
		return 0, fmt.Errorf("%w: %d bytes", ErrTooLarge, size)
	}
	rec := Record{Seq: seq, Topic: topic, Retained: retained, Payload: append([]byte{}, payload...)}
	enc := encodeRecord(nil, rec)

	// After Open nothing is open for appending: the first Append starts a new
	// segment rather than append behind bytes that an earlier run may have
	// left torn (Open cut them off, but one fresh file is simpler to trust).
	var seg *segment
	if n := len(o.segs); n > 0 && o.active != nil && o.segs[n-1].size+size <= o.opts.SegmentBytes {
		seg = o.segs[n-1]
		if err := o.write(seg, enc); err != nil {
			return 0, err
		}
	} else {
		if seg, err = o.roll(seq, enc); err != nil {
			return 0, err
		}
	}
	seg.last = seq
	seg.live++
	o.live = append(o.live, &entry{rec: rec, size: size, seg: seg})
	o.bytes += size
	o.next++
	if retained {
		o.latest[topic] = seq
	}
	// The new record is durable; only now make room, so that a failed write
	// never costs a dropped record.
	o.enforce()
	if o.removeDead() {
		// The record is durable, so the error is not Append's to return: a
		// segment whose removal is lost is dealt with by the next Open.
		_ = store.SyncDir(o.dir)
	}
	return seq, nil
}

// write appends enc to the active segment and fsyncs it. A short write is cut
// back off, because a later record after it would turn a harmless torn tail
// into corruption in the middle; if that is impossible, or the fsync fails
// (the kernel may have dropped the dirty pages: retrying proves nothing), the
// outbox refuses further use until it is reopened and rescanned.
func (o *Outbox) write(seg *segment, enc []byte) error {
	if _, err := writeFile(o.active, enc); err != nil {
		if terr := o.active.Truncate(seg.size); terr != nil {
			o.fail(fmt.Errorf("outbox: write %s: %w (truncate: %v)", filepath.Base(seg.path), err, terr))
			return o.err
		}
		return fmt.Errorf("outbox: write %s: %w", filepath.Base(seg.path), err)
	}
	if err := syncFile(o.active); err != nil {
		o.fail(fmt.Errorf("outbox: fsync %s: %w", filepath.Base(seg.path), err))
		return o.err
	}
	seg.size += int64(len(enc))
	return nil
}

// roll starts a new segment named after seq holding enc, and makes it and its
// directory entry durable. The previous segment stays open until the new one is
// safe, so a failure leaves the outbox as it was.
func (o *Outbox) roll(seq uint64, enc []byte) (*segment, error) {
	path := filepath.Join(o.dir, segName(seq))
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("outbox: new segment: %w", err)
	}
	data := append([]byte(segMagic), enc...)
	_, err = writeFile(f, data)
	if err == nil {
		err = syncFile(f)
	}
	if err == nil {
		err = store.SyncDir(o.dir)
	}
	if err != nil {
		f.Close()
		os.Remove(path)
		return nil, fmt.Errorf("outbox: new segment %s: %w", filepath.Base(path), err)
	}
	if o.active != nil {
		o.active.Close() // already fsynced; a close error changes nothing on disk
	}
	o.active = f
	seg := &segment{first: seq, path: path, size: int64(len(data))}
	o.segs = append(o.segs, seg)
	return seg, nil
}

// Seams over the two calls whose failures matter, so tests can make them fail.
var (
	writeFile = (*os.File).Write
	syncFile  = (*os.File).Sync
)

// fail makes the outbox refuse further use: see ErrClosed.
func (o *Outbox) fail(err error) {
	o.err = fmt.Errorf("%w: %w", ErrClosed, err)
	if o.active != nil {
		o.active.Close()
		o.active = nil
	}
}

// enforce drops records, by the policy documented at Options, until the
// bounds hold or nothing may be dropped.
func (o *Outbox) enforce() {
	for len(o.live) > o.opts.MaxRecords || o.bytes > o.opts.MaxBytes {
		i := o.victim()
		if i < 0 {
			return
		}
		e := o.live[i]
		o.live = slices.Delete(o.live, i, i+1)
		o.bytes -= e.size
		e.seg.live--
		o.dropped++
	}
}

// victim returns the index in live of the record to drop next, or -1.
func (o *Outbox) victim() int {
	newest := len(o.live) - 1
	for i, e := range o.live[:max(newest, 0)] {
		if !e.rec.Retained {
			return i
		}
	}
	for i, e := range o.live[:max(newest, 0)] {
		if o.latest[e.rec.Topic] != e.rec.Seq {
			return i
		}
	}
	return -1
}

// removeDead deletes the segment files that hold no live record and reports
// whether it removed any (the caller fsyncs the directory). A failed removal
// is left for the next Open, which finds the records acknowledged or applies
// the policy again.
func (o *Outbox) removeDead() bool {
	if len(o.segs) == 0 {
		return false
	}
	removed := false
	newest := o.segs[len(o.segs)-1] // the one o.active, if open, writes to
	o.segs = slices.DeleteFunc(o.segs, func(s *segment) bool {
		if s.live > 0 {
			return false
		}
		if s == newest && o.active != nil {
			o.active.Close()
			o.active = nil
		}
		if os.Remove(s.path) == nil {
			removed = true
		}
		return true
	})
	return removed
}

// Peek returns up to n of the oldest records not yet acknowledged, oldest
// first. The records are copies; the outbox is unchanged.
func (o *Outbox) Peek(n int) ([]Record, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.err != nil {
		return nil, o.err
	}
	n = min(max(n, 0), len(o.live))
	out := make([]Record, n)
	for i, e := range o.live[:n] {
		out[i] = e.rec
		out[i].Payload = append([]byte{}, e.rec.Payload...)
	}
	return out, nil
}

// Ack acknowledges every record up to and including seq (the broker has
// taken them) and deletes the segments left with nothing live. Acking a seq
// at or below an earlier Ack does nothing; a seq never appended is
// ErrFutureSeq. Once the cursor is durable the acknowledgment holds even if
// deleting a segment fails: the error says so, and Open retries the deletion.
func (o *Outbox) Ack(seq uint64) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.err != nil {
		return o.err
	}
	if seq >= o.next {
		return fmt.Errorf("%w: %d (last appended %d)", ErrFutureSeq, seq, o.next-1)
	}
	if seq <= o.acked {
		return nil
	}
	// The cursor first: a crash before the deletions leaves segments that Open
	// recognises as acknowledged and deletes. Deleting first could leave a
	// missing segment with a cursor that does not explain it.
	if err := store.WriteFile(filepath.Join(o.dir, cursorName), encodeCursor(seq), 0o600); err != nil {
		return fmt.Errorf("outbox: ack %d: %w", seq, err)
	}
	o.acked = seq
	n := 0
	for n < len(o.live) && o.live[n].rec.Seq <= seq {
		e := o.live[n]
		e.seg.live--
		o.bytes -= e.size
		if e.rec.Retained && o.latest[e.rec.Topic] == e.rec.Seq {
			delete(o.latest, e.rec.Topic)
		}
		n++
	}
	o.live = slices.Delete(o.live, 0, n)
	if o.removeDead() {
		if err := store.SyncDir(o.dir); err != nil {
			return fmt.Errorf("outbox: ack %d acknowledged, but: %w", seq, err)
		}
	}
	return nil
}

// Len returns the number of records not yet acknowledged.
func (o *Outbox) Len() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.live)
}

// Stats returns a snapshot of the counters.
func (o *Outbox) Stats() Stats {
	o.mu.Lock()
	defer o.mu.Unlock()
	return Stats{
		Records:        len(o.live),
		Bytes:          o.bytes,
		Segments:       len(o.segs),
		NextSeq:        o.next,
		Acked:          o.acked,
		Dropped:        o.dropped,
		TruncatedBytes: o.truncated,
	}
}

// Close releases the open segment file. Everything appended is already
// durable, so Close has nothing to flush. Later calls return nil.
func (o *Outbox) Close() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if errors.Is(o.err, ErrClosed) {
		return nil
	}
	o.err = ErrClosed
	if o.active != nil {
		err := o.active.Close()
		o.active = nil
		if err != nil {
			return fmt.Errorf("outbox: %w", err)
		}
	}
	return nil
}
