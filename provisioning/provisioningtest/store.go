// Package provisioningtest holds fakes of the provisioning flow's ports for
// tests elsewhere, so each test does not write its own.
package provisioningtest

import (
	"sync"

	"github.com/posagent/posagent/provisioning"
)

// Store is an in-memory provisioning.Store. Data is what was last saved (nil
// means never, which Load reports as provisioning.ErrNoState); Fail makes
// every Save fail; Saves counts successful saves.
type Store struct {
	mu    sync.Mutex
	Data  []byte
	Fail  error
	Saves int
}

var _ provisioning.Store = (*Store)(nil)

// Load returns a copy of the saved bytes.
func (s *Store) Load() ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.Data == nil {
		return nil, provisioning.ErrNoState
	}
	return append([]byte(nil), s.Data...), nil
}

// Save keeps a copy of b, or returns Fail. An empty b is kept as an empty,
// non-nil Data: a saved record, never "no state".
func (s *Store) Save(b []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.Fail != nil {
		return s.Fail
	}
	s.Data = append([]byte{}, b...)
	s.Saves++
	return nil
}

// Bytes is a copy of what was last saved.
func (s *Store) Bytes() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]byte(nil), s.Data...)
}
