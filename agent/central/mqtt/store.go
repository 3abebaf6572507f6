package mqtt

import (
	"bytes"
	"sync"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"
)

// copyStore is paho's memory store keeping and handing out copies of packets.
//
// paho v1.5.1 shares one packet object between its store and its writer: on a
// reconnect, resume takes a stored PUBLISH, sets its DUP flag and queues it,
// while the new connection's writer may still be encoding the same object,
// queued before the drop (and PublishPacket.Write itself stores the remaining
// length into the packet). `go test -race` reports it (eclipse-paho/
// paho.mqtt.golang issue #703, open). Keeping a private copy at Put and
// returning a fresh copy from Get means no object is ever shared.
type copyStore struct {
	mu sync.Mutex
	*paho.MemoryStore
}

func newCopyStore() *copyStore { return &copyStore{MemoryStore: paho.NewMemoryStore()} }

// clone encodes and decodes p; nil when p cannot be encoded.
func clone(p packets.ControlPacket) packets.ControlPacket {
	var b bytes.Buffer
	if err := p.Write(&b); err != nil {
		return nil
	}
	c, err := packets.ReadPacket(&b)
	if err != nil {
		return nil
	}
	return c
}

// Put stores a copy of p. paho calls it before it queues p for the writer, so
// encoding p here races with nobody.
func (s *copyStore) Put(key string, p packets.ControlPacket) {
	if c := clone(p); c != nil {
		s.mu.Lock()
		s.MemoryStore.Put(key, c)
		s.mu.Unlock()
	}
}

// Get returns a fresh copy of the stored packet (nil when absent, as paho expects).
func (s *copyStore) Get(key string) packets.ControlPacket {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.MemoryStore.Get(key)
	if p == nil {
		return nil
	}
	return clone(p)
}
