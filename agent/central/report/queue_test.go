package report

import (
	"errors"
	"fmt"
	"testing"

	"github.com/posagent/posagent/agent/central/outbox"
)

// TestQueueConformance runs the same script on every Queue: the in-memory one
// must behave as the outbox does where the reporter can tell.
func TestQueueConformance(t *testing.T) {
	const bound = 3
	for name, open := range map[string]func(t *testing.T) Queue{
		"memory": func(*testing.T) Queue { return newMemQueue(bound) },
		"outbox": func(t *testing.T) Queue { return openOutboxWith(t, t.TempDir(), outbox.Options{MaxRecords: bound}) },
	} {
		t.Run(name, func(t *testing.T) {
			q := open(t)
			if st := q.Stats(); st.NextSeq != 1 || st.Records != 0 {
				t.Fatalf("new queue: %+v", st)
			}
			for i := 1; i <= 5; i++ {
				seq, err := q.AppendWith("events", false, func(seq uint64) ([]byte, error) {
					return fmt.Appendf(nil, "payload %d", seq), nil
				})
				if err != nil || seq != uint64(i) {
					t.Fatalf("append %d = %d, %v", i, seq, err)
				}
			}
			if _, err := q.AppendWith("events", false, func(uint64) ([]byte, error) { return nil, errors.New("boom") }); err == nil {
				t.Error("a failed build was queued")
			}
			// The bound dropped the two oldest; the failed build used no seq.
			st := q.Stats()
			if st.Records != bound || st.NextSeq != 6 || st.Dropped != 2 {
				t.Errorf("after 5 appends: %+v, want %d records, next seq 6, 2 dropped", st, bound)
			}
			recs, err := q.Peek(10)
			if err != nil || len(recs) != bound || recs[0].Seq != 3 || string(recs[0].Payload) != "payload 3" || recs[0].Topic != "events" || recs[0].Retained {
				t.Fatalf("Peek = %+v, %v", recs, err)
			}
			if err := q.Ack(4); err != nil {
				t.Fatal(err)
			}
			if err := q.Ack(2); err != nil {
				t.Errorf("Ack of an older seq = %v, want nil", err)
			}
			if err := q.Ack(9); !errors.Is(err, outbox.ErrFutureSeq) {
				t.Errorf("Ack(9) = %v, want ErrFutureSeq", err)
			}
			if recs, _ := q.Peek(1); len(recs) != 1 || recs[0].Seq != 5 {
				t.Errorf("Peek after Ack(4) = %+v, want seq 5", recs)
			}
			if st := q.Stats(); st.Records != 1 || st.Acked != 4 {
				t.Errorf("after Ack(4): %+v", st)
			}
		})
	}
}

func openOutboxWith(t *testing.T, dir string, o outbox.Options) *outbox.Outbox {
	t.Helper()
	ob, err := outbox.Open(dir, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ob.Close() })
	return ob
}
