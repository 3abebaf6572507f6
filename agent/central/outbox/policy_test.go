package outbox

import (
	"slices"
	"strings"
	"testing"
)

// TestPolicy drives the size policy from a script: each step appends one
// record, written "E" for an event (non-retained) or "S"/"P" for retained
// records on two topics, and the test checks which seqs are left.
func TestPolicy(t *testing.T) {
	tests := []struct {
		name    string
		opts    Options
		script  string
		want    []uint64
		dropped uint64
	}{
		{"under the bound nothing is dropped", Options{MaxRecords: 4}, "EEEE", []uint64{1, 2, 3, 4}, 0},
		{"oldest event goes first", Options{MaxRecords: 3}, "EEEEE", []uint64{3, 4, 5}, 2},
		{"events go before a retained record", Options{MaxRecords: 3}, "SEEE", []uint64{1, 3, 4}, 1},
		{"events go before a superseded retained record", Options{MaxRecords: 3}, "SSEE", []uint64{1, 2, 4}, 1},
		{"superseded retained goes when no event is left", Options{MaxRecords: 2}, "SSS", []uint64{2, 3}, 1},
		{"the newest of each retained topic stays, over the bound", Options{MaxRecords: 2}, "SPE", []uint64{1, 2, 3}, 0},
		{"then the event goes, not the pinned ones", Options{MaxRecords: 2}, "SPEE", []uint64{1, 2, 4}, 1},
		{"the newest record stays even when it is an event", Options{MaxRecords: 1}, "SE", []uint64{1, 2}, 0},
		// Events first, as the policy says, even before superseded statuses:
		// which is why the reporter should queue one record per report (see
		// the package doc) rather than an event+status pair.
		{"event+status pairs: events go first", Options{MaxRecords: 4}, "ESESESES", []uint64{2, 4, 6, 8}, 4},
		// Each record here is 12+11+1+1 = 25 bytes.
		{"MaxBytes bounds too", Options{MaxBytes: 60}, "EEEE", []uint64{3, 4}, 2},
	}
	topic := map[rune]string{'E': "events", 'S': "status", 'P': "state"}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			o := open(t, dir, tc.opts)
			for _, c := range tc.script {
				mustAppend(t, o, topic[c], c != 'E', "x")
			}
			if got := seqs(peekAll(t, o)); !slices.Equal(got, tc.want) {
				t.Errorf("left %v, want %v", got, tc.want)
			}
			st := o.Stats()
			if st.Dropped != tc.dropped || st.Records != len(tc.want) || st.NextSeq != uint64(len(tc.script)+1) {
				t.Errorf("Stats = %+v, want Dropped %d", st, tc.dropped)
			}
			o.Close()
			// Reopening applies the same policy: the survivors survive again
			// (dropped records in a shared segment may come back only if the
			// bound allows, which it does not here).
			o = open(t, dir, tc.opts)
			if got := seqs(peekAll(t, o)); !slices.Equal(got, tc.want) {
				t.Errorf("after reopen left %v, want %v", got, tc.want)
			}
		})
	}
}

// TestPolicyOnOpen: a smaller bound at Open trims what an earlier, larger one
// kept, by the same order.
func TestPolicyOnOpen(t *testing.T) {
	dir := t.TempDir()
	o := open(t, dir, Options{})
	for _, c := range "SEESE" {
		mustAppend(t, o, map[bool]string{true: "status", false: "events"}[c == 'S'], c == 'S', "x")
	}
	o.Close()
	o = open(t, dir, Options{MaxRecords: 2})
	if got := seqs(peekAll(t, o)); !slices.Equal(got, []uint64{4, 5}) {
		t.Errorf("left %v, want [4 5]", got)
	}
	if d := o.Stats().Dropped; d != 3 {
		t.Errorf("Dropped %d, want 3", d)
	}
}

// TestDropsFreeSegments: while the broker is away, dropping keeps the disk
// bounded too: segments whose records were all dropped are deleted.
func TestDropsFreeSegments(t *testing.T) {
	dir := t.TempDir()
	o := open(t, dir, Options{MaxRecords: 10, SegmentBytes: 256})
	mustAppend(t, o, "status", true, "first status pins its segment")
	for range 500 {
		mustAppend(t, o, "events", false, strings.Repeat("e", 40))
	}
	st := o.Stats()
	if st.Records != 10 || st.Dropped != 491 {
		t.Errorf("Stats = %+v", st)
	}
	// 10 live records of 64 bytes need 3–4 segments of 256, plus the pinned one.
	if n := len(segFiles(t, dir)); n > 6 || n != st.Segments {
		t.Errorf("%d segment files (Stats says %d)", n, st.Segments)
	}
	if got := peekAll(t, o); got[0].Seq != 1 || !got[0].Retained {
		t.Errorf("the only status was dropped: first left is %d", got[0].Seq)
	}
}

// TestAckAcrossDrops: the publisher may Ack a seq the policy dropped while it
// was in flight; that acknowledges everything up to it as usual.
func TestAckAcrossDrops(t *testing.T) {
	dir := t.TempDir()
	o := open(t, dir, Options{MaxRecords: 3, SegmentBytes: 60})
	for range 6 {
		mustAppend(t, o, "events", false, "x")
	}
	// 1–3 dropped; 4, 5, 6 left. Ack 2, as a publisher that took 2 before it
	// was dropped would.
	if err := o.Ack(2); err != nil {
		t.Fatal(err)
	}
	if got := seqs(peekAll(t, o)); !slices.Equal(got, []uint64{4, 5, 6}) {
		t.Errorf("left %v", got)
	}
	if err := o.Ack(5); err != nil {
		t.Fatal(err)
	}
	o.Close()
	o = open(t, dir, Options{MaxRecords: 3, SegmentBytes: 60})
	if got := seqs(peekAll(t, o)); !slices.Equal(got, []uint64{6}) {
		t.Errorf("after reopen left %v", got)
	}
	if n := len(segFiles(t, dir)); n != 1 {
		t.Errorf("%d segment files, want 1", n)
	}
}
