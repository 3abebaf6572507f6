//go:build cgo

package pcsc

import (
	"context"
	"errors"
	"testing"

	"github.com/ebfe/scard"

	"github.com/posagent/posagent/drivers/cardreader"
)

// These run without pcscd: the error and state translation is pure.

func TestMapErr(t *testing.T) {
	for _, tc := range []struct {
		in   scard.Error
		want error
	}{
		{scard.ErrNoService, cardreader.ErrServiceUnavailable},
		{scard.ErrServiceStopped, cardreader.ErrServiceUnavailable},
		{scard.ErrNoReadersAvailable, cardreader.ErrNoReader},
		{scard.ErrUnknownReader, cardreader.ErrNoReader},
		{scard.ErrNoSmartcard, cardreader.ErrNoCard},
		{scard.ErrRemovedCard, cardreader.ErrCardRemoved},
		{scard.ErrResetCard, cardreader.ErrCardRemoved},
		{scard.ErrUnresponsiveCard, cardreader.ErrCardMute},
		{scard.ErrTimeout, context.DeadlineExceeded},
		{scard.ErrCancelled, context.Canceled},
	} {
		err := mapErr("op", tc.in)
		var se scard.Error
		if !errors.Is(err, tc.want) || !errors.As(err, &se) || se != tc.in {
			t.Errorf("%v: %v, want %v wrapping the scard error", tc.in, err, tc.want)
		}
	}
	if err := mapErr("op", scard.ErrSharingViolation); errors.Is(err, cardreader.ErrCardRemoved) || !errors.Is(err, scard.ErrSharingViolation) {
		t.Errorf("unmapped: %v", err)
	}
	if !serviceLost(scard.ErrNoService) || serviceLost(scard.ErrRemovedCard) || serviceLost(errors.New("x")) {
		t.Error("serviceLost")
	}
}

func TestStateFlags(t *testing.T) {
	k := cardreader.ReaderState{Name: "r", Present: true, Events: 3}
	f := toFlags(k)
	if f&scard.StatePresent == 0 || uint32(f)>>16 != 3 {
		t.Fatalf("toFlags %#x", f)
	}
	if toFlags(cardreader.ReaderState{Unknown: true}) != scard.StateUnaware {
		t.Fatal("unknown is unaware")
	}
	got := fromFlags(scard.ReaderState{Reader: "r", EventState: scard.StatePresent | scard.StateChanged | 5<<16})
	if got != (cardreader.ReaderState{Name: "r", Present: true, Events: 5}) {
		t.Fatalf("fromFlags %+v", got)
	}
	if g := fromFlags(scard.ReaderState{Reader: "r", EventState: scard.StateUnknown}); !g.Gone || g.Present {
		t.Fatalf("unknown reader %+v", g)
	}
	if g := fromFlags(scard.ReaderState{Reader: "r", EventState: scard.StatePresent | scard.StateMute}); g.Present {
		t.Fatalf("mute card counted present %+v", g)
	}
}

func TestEstablishFailureIsServiceUnavailable(t *testing.T) {
	old := establish
	defer func() { establish = old }()
	establish = func() (*scard.Context, error) { return nil, scard.ErrNoService }
	s := New()
	if ok, err := s.Init(); ok || !errors.Is(err, cardreader.ErrServiceUnavailable) || !cardreader.Retryable(err) {
		t.Fatalf("%v %v", ok, err)
	}
	if _, err := s.Readers(context.Background()); !errors.Is(err, cardreader.ErrServiceUnavailable) {
		t.Fatal(err)
	}
	s.Close()
	if _, err := s.Connect(context.Background(), "x"); !errors.Is(err, cardreader.ErrServiceUnavailable) {
		t.Fatal(err)
	}
}
