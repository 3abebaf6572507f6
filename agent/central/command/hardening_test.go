package command

import (
	"context"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/posagent/posagent/agent/central/mqtt"
)

// blockingTransport captures the subscription and blocks every Publish until
// released, as a broker that stopped acknowledging would.
type blockingTransport struct {
	mu      sync.Mutex
	fn      func(mqtt.Inbound)
	release chan struct{}
	pubs    int
}

func (b *blockingTransport) Subscribe(_ string, fn func(mqtt.Inbound)) error {
	b.mu.Lock()
	b.fn = fn
	b.mu.Unlock()
	return nil
}

func (b *blockingTransport) Publish(ctx context.Context, _ string, _ bool, _ []byte) error {
	b.mu.Lock()
	b.pubs++
	b.mu.Unlock()
	select {
	case <-b.release:
	case <-ctx.Done():
	}
	return nil
}

// A flood of commands while the broker does not acknowledge replies: the
// server's goroutines and memory stay bounded.
func TestFloodIsBounded(t *testing.T) {
	tr := &blockingTransport{release: make(chan struct{})}
	s := newServer(t, tr, &fakeHandler{})
	if err := s.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); s.Run(ctx) }()
	before := runtime.NumGoroutine()
	big := make([]byte, 1<<20)
	for i := range 1000 {
		p := []byte(`{"id":"x","name":"report-now"}`)
		if i%2 == 0 {
			p = big
		}
		tr.fn(mqtt.Inbound{Topic: mqtt.CommandTopic(tid), Payload: p})
	}
	time.Sleep(50 * time.Millisecond)
	if n := runtime.NumGoroutine() - before; n > 8 {
		t.Errorf("%d more goroutines after 1000 commands", n)
	}
	close(tr.release)
	cancel()
	<-done
}
