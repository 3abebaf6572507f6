package agent

import (
	"context"
	"errors"
	"sync"

	"github.com/posagent/posagent/provisioning"
)

// errNoPINPad is the slot's answer while no PIN pad sits in it: the chip
// kernel records "PIN pad not present" and goes on with the card's CVM
// list.
var errNoPINPad = errors.New("agent: no PIN pad")

// pinSlot is the chip source's PIN pad, filled once the installer that
// owns the keypad exists (the card source is built before it). Empty, a
// run without an installer has no PIN pad; a secure PIN pad would be set
// here at start.
type pinSlot struct {
	mu  sync.Mutex
	pad provisioning.PINPad
}

var _ provisioning.PINPad = (*pinSlot)(nil)

func (s *pinSlot) set(p provisioning.PINPad) {
	s.mu.Lock()
	s.pad = p
	s.mu.Unlock()
}

// OnlinePIN asks the PIN pad in the slot.
func (s *pinSlot) OnlinePIN(ctx context.Context, r provisioning.PINRequest) (provisioning.PINBlock, error) {
	s.mu.Lock()
	p := s.pad
	s.mu.Unlock()
	if p == nil {
		return nil, errNoPINPad
	}
	return p.OnlinePIN(ctx, r)
}
