package command

import (
	"context"
	"testing"
)

// Both of these ran the command under the unsigned protocol.
func TestUnsignedCommandRefused(t *testing.T) {
	h := &fakeHandler{}
	s := newServer(t, nil, h)
	r := s.Handle(context.Background(), in(`{"id":"a","name":"report-now"}`))
	if r.OK || r.Error == nil || r.Error.Code != "E_CMD_UNSIGNED" || len(h.calls) != 0 {
		t.Errorf("unsigned command: reply %+v, calls %v", r, h.calls)
	}
}

func TestReplayAfterRestartRefused(t *testing.T) {
	h := &fakeHandler{}
	s1 := newServer(t, nil, h)
	p := signedPayload(t, "a", "report-now")
	if r := s1.Handle(context.Background(), in(p)); !r.OK {
		t.Fatalf("first delivery: %+v", r)
	}
	s2 := restarted(t, s1)
	r := s2.Handle(context.Background(), in(p))
	if r.OK || r.Error == nil || r.Error.Code != "E_CMD_REPLAYED" || len(h.calls) != 1 {
		t.Errorf("replay after a restart: reply %+v, calls %v", r, h.calls)
	}
}
