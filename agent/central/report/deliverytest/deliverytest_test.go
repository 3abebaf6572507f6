package deliverytest

import (
	"slices"
	"strings"
	"testing"
)

// The contract on hand-made arrival orders: what QoS 1 may legally do passes,
// each way of losing or reordering an event fails.
func TestCheck(t *testing.T) {
	for _, tc := range []struct {
		name        string
		arrived     []uint64
		first, last uint64
		want        string // "" = no problem; else a substring of the first
	}{
		{"in order", []uint64{1, 2, 3}, 1, 3, ""},
		{"legal duplicate (PUBACK lost with the broker)", []uint64{5, 6, 7, 8, 8, 9}, 5, 9, ""},
		{"replayed after a restart", []uint64{1, 2, 1, 2, 3}, 1, 3, ""},
		{"duplicate of an older one", []uint64{1, 2, 3, 2, 4}, 1, 4, ""},
		{"gap", []uint64{5, 6, 8, 9}, 5, 9, "seq 8 arrived when 7 was due: event 7 missing"},
		{"out of order", []uint64{5, 7, 6, 8, 9}, 5, 9, "seq 7 arrived when 6 was due"},
		{"swapped pair at the end", []uint64{1, 3, 2}, 1, 3, "seq 3 arrived when 2 was due"},
		{"missing last", []uint64{5, 6, 7, 8}, 5, 9, "event 9 never arrived"},
		{"missing tail", []uint64{1, 2}, 1, 5, "events 3..5 never arrived"},
		{"missing first", []uint64{6, 7, 8, 9}, 5, 9, "event 5 missing"},
		{"nothing arrived", nil, 1, 2, "events 1..2 never arrived"},
		{"beyond last", []uint64{1, 2, 3}, 1, 2, "beyond the last expected"},
		{"never queued", []uint64{1, 0, 2}, 1, 2, "without seq"},
		{"one the queue dropped", []uint64{4, 5, 6}, 5, 6, "before the first expected"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			problems := Check(tc.arrived, tc.first, tc.last)
			switch {
			case tc.want == "" && len(problems) > 0:
				t.Errorf("Check(%v, %d, %d) = %q, want no problem", tc.arrived, tc.first, tc.last, problems)
			case tc.want != "" && (len(problems) == 0 || !strings.Contains(problems[0], tc.want)):
				t.Errorf("Check(%v, %d, %d) = %q, want %q first", tc.arrived, tc.first, tc.last, problems, tc.want)
			}
		})
	}
}

// Add tells a collector what to keep and when it has everything.
func TestLogAdd(t *testing.T) {
	l := New(5)
	var kept []uint64
	for _, s := range []uint64{5, 6, 6, 5, 7} {
		if l.Add(s) {
			kept = append(kept, s)
		}
		if l.Failed() {
			t.Fatalf("failed at %d: %q", s, l.Problems(7))
		}
	}
	if !slices.Equal(kept, []uint64{5, 6, 7}) {
		t.Errorf("kept %v, want [5 6 7]", kept)
	}
	if !l.Complete(7) || l.Complete(8) || l.Last() != 7 || l.Dups() != 2 {
		t.Errorf("complete(7) %v complete(8) %v last %d dups %d, want true false 7 2", l.Complete(7), l.Complete(8), l.Last(), l.Dups())
	}
	if got := l.Arrived(); !slices.Equal(got, []uint64{5, 6, 6, 5, 7}) {
		t.Errorf("arrived %v, want [5 6 6 5 7]", got)
	}
	if g := New(1); !g.Add(2) || !g.Failed() {
		t.Error("an event beyond the one due is taken and recorded as a problem")
	}
}

// A consumer that keeps its log across an outage drops what comes again.
func TestLogAcrossOutage(t *testing.T) {
	l := New(1)
	for _, s := range []uint64{1, 2, 3, 4} {
		l.Add(s)
	}
	if !l.Complete(4) {
		t.Fatal("1..4 not complete")
	}
	for _, s := range []uint64{4, 5, 6, 7, 8, 8, 9, 10} { // 4: its PUBACK died with the broker
		l.Add(s)
	}
	if p := l.Problems(10); len(p) > 0 || l.Dups() != 2 {
		t.Errorf("problems %q dups %d, want none and 2", p, l.Dups())
	}
}
