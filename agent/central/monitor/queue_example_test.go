package monitor_test

import (
	"context"
	"fmt"
	"os"

	"github.com/posagent/posagent/agent/central/monitor"
)

// slice is a Source over fixed deliveries; it ends the run when empty.
type slice struct {
	ds     []monitor.Delivery
	cancel context.CancelFunc
}

func (s *slice) Next(ctx context.Context) (monitor.Delivery, error) {
	if len(s.ds) == 0 {
		s.cancel()
		<-ctx.Done()
		return monitor.Delivery{}, ctx.Err()
	}
	d := s.ds[0]
	s.ds = s.ds[1:]
	return d, nil
}

// A redelivery (the channel broke before its ack) is acknowledged but not
// shown twice.
func ExampleConsumer() {
	ev := func(seq int, redelivered bool) monitor.Delivery {
		return monitor.Delivery{
			Topic:       "pos/v1/10000001/events",
			Payload:     fmt.Appendf(nil, `{"seq":%d,"tid":"10000001","step":"network","state":"done","attempt":1}`, seq),
			Redelivered: redelivered,
			Ack:         func() error { return nil },
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	src := &slice{ds: []monitor.Delivery{ev(1, false), ev(2, false), ev(2, true), ev(3, false)}, cancel: cancel}
	c := monitor.NewConsumer(monitor.QueueOptions{Out: os.Stdout})
	if err := c.Run(ctx, src); err != nil {
		fmt.Println(err)
	}
	fmt.Printf("%+v\n", c.Stats())
	// Output:
	// 10000001 event   step=network state=done attempt=1 seq=1
	// 10000001 event   step=network state=done attempt=1 seq=2
	// 10000001 event   step=network state=done attempt=1 seq=3
	// {Folded:3 Duplicates:1 Stale:0 AckErrors:0}
}
