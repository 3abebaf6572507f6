package monitor

import (
	"fmt"
	"io"
	"testing"
)

// BenchmarkConsumerHandle: one delivery folded, deduplicated, printed (JSON,
// to io.Discard) and acknowledged, over 1,000 terminals; every fourth is a
// redelivery dedup drops.
func BenchmarkConsumerHandle(b *testing.B) {
	const terminals = 1000
	ds := make([]Delivery, 0, 4*terminals)
	for seq := uint64(1); seq <= 3; seq++ {
		for i := range terminals {
			d := queuedEvent(b, fmt.Sprintf("1%07d", i), seq)
			d.Ack = func() error { return nil }
			ds = append(ds, d)
		}
	}
	for i := range terminals {
		d := redelivered(queuedEvent(b, fmt.Sprintf("1%07d", i), 3))
		d.Ack = func() error { return nil }
		ds = append(ds, d)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for n := 0; n < b.N; {
		c := NewConsumer(QueueOptions{JSON: true, Out: io.Discard})
		for _, d := range ds {
			if n == b.N {
				break
			}
			if err := c.Handle(d); err != nil {
				b.Fatal(err)
			}
			n++
		}
	}
}
