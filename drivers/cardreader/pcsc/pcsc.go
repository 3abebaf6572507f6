//go:build cgo

// Package pcsc is the cardreader backend over pcsc-lite (pcscd) through
// github.com/ebfe/scard. It needs cgo and libpcsclite; nothing built with
// CGO_ENABLED=0 may import it (the firmware build until issue 8).
//
// ebfe/scard is a thin binding: a PC/SC context dies with pcscd, handles die
// with the card, and it leaves T=0 procedure bytes to the caller. This package
// adds what the terminal needs on top: the context is (re)established lazily,
// so a pcscd restart or a reader re-plug costs one failed call
// (cardreader.ErrServiceUnavailable) and the next call works; scard errors
// become the cardreader sentinels; Card.Transmit is raw, and
// cardreader.Exchange / cardreader.T0 resolve 61XX/6CXX.
//
// Built without cgo the package still compiles (so `CGO_ENABLED=0 go build
// ./...` and `go vet` stay green), but every call reports
// cardreader.ErrServiceUnavailable.
package pcsc

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/ebfe/scard"

	"github.com/posagent/posagent/drivers/cardreader"
)

// Service is a cardreader.Reader over pcscd.
type Service struct {
	mu  sync.Mutex
	ctx *scard.Context // nil until needed, and again after pcscd went away
	// closed makes Close final: no context is re-established afterwards.
	closed bool
}

var _ cardreader.Reader = (*Service)(nil)

// establish is a seam for tests of the re-establish logic.
var establish = scard.EstablishContext

// New returns a service; it does not contact pcscd yet, so a terminal whose
// pcscd starts later (or is restarted) is not an error here — periph's "run
// degraded" rule. Init checks the connection now, for callers that want to
// know at start-up.
func New() *Service { return &Service{} }

// Init establishes the PC/SC context now and reports whether pcscd answered.
func (s *Service) Init() (loaded bool, err error) {
	_, err = s.context()
	return err == nil, err
}

// context returns the live PC/SC context, establishing one when needed.
func (s *Service) context() (*scard.Context, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, fmt.Errorf("pcsc: service closed: %w", cardreader.ErrServiceUnavailable)
	}
	if s.ctx != nil {
		return s.ctx, nil
	}
	c, err := establish()
	if err != nil {
		return nil, mapErr("establish context", err)
	}
	s.ctx = c
	return c, nil
}

// drop forgets a context pcscd no longer knows (restart): the next call
// establishes a fresh one.
func (s *Service) drop(c *scard.Context) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ctx == c && c != nil {
		_ = c.Release() // fails when pcscd is gone; nothing to do about it
		s.ctx = nil
	}
}

// call runs f with the context and drops the context when pcscd says it is
// gone, so the next call re-establishes it.
func (s *Service) call(op string, f func(*scard.Context) error) error {
	c, err := s.context()
	if err != nil {
		return err
	}
	err = f(c)
	if err == nil {
		return nil
	}
	if serviceLost(err) {
		s.drop(c)
	}
	return mapErr(op, err)
}

func serviceLost(err error) bool {
	var e scard.Error
	if !errors.As(err, &e) {
		return false
	}
	switch e {
	case scard.ErrNoService, scard.ErrServiceStopped, scard.ErrInvalidHandle, scard.ErrCommError:
		return true
	}
	return false
}

// Readers lists the attached readers.
func (s *Service) Readers(ctx context.Context) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var names []string
	err := s.call("list readers", func(c *scard.Context) error {
		var err error
		names, err = c.ListReaders()
		return err
	})
	if err == nil && len(names) == 0 {
		err = fmt.Errorf("pcsc: list readers: %w", cardreader.ErrNoReader)
	}
	return names, err
}

// waitSlice bounds one SCardGetStatusChange: how late a cancelled wait may
// notice its context at worst.
const waitSlice = time.Second

// WaitChange implements cardreader.Reader with SCardGetStatusChange. The
// context's deadline bounds the wait; cancelling ctx cancels it
// (SCardCancel, and at the latest at the end of a waitSlice). When pcscd
// goes away during the wait the readers come back as Gone, which is a
// change, and the next call waits for pcscd to return.
func (s *Service) WaitChange(ctx context.Context, known []cardreader.ReaderState) ([]cardreader.ReaderState, error) {
	if len(known) == 0 {
		return nil, fmt.Errorf("pcsc: wait: %w", cardreader.ErrNoReader)
	}
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		c, err := s.context()
		if err != nil {
			if !errors.Is(err, cardreader.ErrServiceUnavailable) || s.isClosed() {
				return nil, err
			}
			// pcscd is down: if the caller already knows, wait for it to
			// come back (it has no notification of its own: poll).
			if allGone(known) {
				if err := sleep(ctx, 200*time.Millisecond); err != nil {
					return nil, err
				}
				continue
			}
			return goneStates(known), nil
		}
		rs := make([]scard.ReaderState, len(known))
		for i, k := range known {
			rs[i] = scard.ReaderState{Reader: k.Name, CurrentState: toFlags(k)}
		}
		// The wait is cut into slices, each ending in a look at ctx: the
		// SCardCancel that ctx's end sends is lost when it lands before
		// SCardGetStatusChange started to block (pcsc-lite cancels only a
		// call in progress), and an infinite wait would then never end —
		// seen as an insert-or-swipe read that hung after the swipe won.
		timeout := waitSlice
		dl, hasDL := ctx.Deadline()
		if hasDL {
			timeout = min(max(time.Until(dl), time.Millisecond), waitSlice)
		}
		stop := context.AfterFunc(ctx, func() { _ = c.Cancel() })
		err = c.GetStatusChange(rs, timeout)
		stop()
		switch {
		case err == nil:
			out := make([]cardreader.ReaderState, len(rs))
			for i, r := range rs {
				out[i] = fromFlags(r)
			}
			return out, nil
		case errors.Is(err, scard.ErrTimeout):
			if hasDL && time.Until(dl) <= 0 {
				return nil, context.DeadlineExceeded
			}
			continue // a slice ended: ctx is looked at again
		case errors.Is(err, scard.ErrCancelled):
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			if s.isClosed() {
				return nil, fmt.Errorf("pcsc: wait: %w", cardreader.ErrServiceUnavailable)
			}
			continue
		case serviceLost(err):
			s.drop(c)
			return goneStates(known), nil
		case errors.Is(err, scard.ErrUnknownReader):
			if allGone(known) {
				// The caller knows the reader is gone; wait for it to be
				// plugged back instead of spinning (PC/SC has a PnP
				// pseudo-reader, but vpcd never hot-plugs: polling is simpler).
				if err := sleep(ctx, 200*time.Millisecond); err != nil {
					return nil, err
				}
				continue
			}
			return goneStates(known), nil
		}
		return nil, mapErr("wait for card", err)
	}
}

func (s *Service) current() *scard.Context {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ctx
}

func (s *Service) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

func allGone(k []cardreader.ReaderState) bool {
	for _, r := range k {
		if !r.Gone {
			return false
		}
	}
	return true
}

func goneStates(k []cardreader.ReaderState) []cardreader.ReaderState {
	out := make([]cardreader.ReaderState, len(k))
	for i, r := range k {
		out[i] = cardreader.ReaderState{Name: r.Name, Gone: true}
	}
	return out
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// toFlags is what we believe about a reader, in PC/SC terms: pcsc-lite keeps
// an event counter in the upper 16 bits and reports a change when it differs.
func toFlags(k cardreader.ReaderState) scard.StateFlag {
	if k.Unknown || k.Gone {
		return scard.StateUnaware
	}
	f := scard.StateEmpty
	if k.Present {
		f = scard.StatePresent
	}
	return f | scard.StateFlag(uint32(k.Events&0xFFFF)<<16)
}

func fromFlags(r scard.ReaderState) cardreader.ReaderState {
	st := cardreader.ReaderState{Name: r.Reader, Events: int(uint32(r.EventState) >> 16)}
	switch {
	case r.EventState&(scard.StateUnknown|scard.StateUnavailable|scard.StateIgnore) != 0:
		st.Gone = true
	case r.EventState&scard.StatePresent != 0 && r.EventState&scard.StateMute == 0:
		st.Present = true
	}
	return st
}

// Connect opens the card in reader, T=0 or T=1 as the card's ATR offers.
func (s *Service) Connect(ctx context.Context, reader string) (cardreader.Card, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var h *scard.Card
	err := s.call("connect "+reader, func(c *scard.Context) error {
		var err error
		h, err = c.Connect(reader, scard.ShareShared, scard.ProtocolT0|scard.ProtocolT1)
		return err
	})
	if err != nil {
		return nil, err
	}
	st, err := h.Status()
	if err != nil {
		_ = h.Disconnect(scard.LeaveCard)
		return nil, mapErr("status "+reader, err)
	}
	return &Card{svc: s, ctx: s.current(), h: h, reader: reader, atr: st.Atr}, nil
}

// Close cancels pending waits and releases the context.
func (s *Service) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	if s.ctx == nil {
		return nil
	}
	_ = s.ctx.Cancel()
	err := s.ctx.Release()
	s.ctx = nil
	if err != nil {
		return mapErr("release", err)
	}
	return nil
}

// Card is a connected card. It is used by one goroutine at a time.
type Card struct {
	svc    *Service
	ctx    *scard.Context // the context the handle belongs to
	h      *scard.Card
	reader string
	atr    []byte
}

var _ cardreader.Card = (*Card)(nil)

// Transmit sends a raw APDU. A card pulled out is cardreader.ErrCardRemoved;
// the handle then stays dead even if the card comes back: Reconnect or a new
// Connect (TESTBENCH.md).
func (c *Card) Transmit(ctx context.Context, cmd []byte) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	r, err := c.h.Transmit(cmd)
	if err != nil {
		if serviceLost(err) {
			c.svc.drop(c.ctx) // a no-op when the service already re-established
		}
		return nil, mapErr("transmit", err)
	}
	if len(r) == 0 {
		// pcscd answers an empty response when the reader driver lost the
		// card during the exchange (vpcd: the card's socket closed); a
		// real reader reports SCARD_W_REMOVED_CARD instead.
		return nil, fmt.Errorf("pcsc: transmit: empty response: %w", cardreader.ErrCardRemoved)
	}
	return r, nil
}

// Reconnect re-opens the handle after the card was reset or removed and
// inserted again, resetting the card (the application state is lost anyway).
func (c *Card) Reconnect(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := c.h.Reconnect(scard.ShareShared, scard.ProtocolT0|scard.ProtocolT1, scard.ResetCard); err != nil {
		return mapErr("reconnect", err)
	}
	if st, err := c.h.Status(); err == nil {
		c.atr = st.Atr
	}
	return nil
}

// ATR is the card's answer to reset.
func (c *Card) ATR() []byte { return append([]byte(nil), c.atr...) }

// Reader is the reader name.
func (c *Card) Reader() string { return c.reader }

// Close disconnects, leaving the card powered (the next reader of the card
// need not reset it).
func (c *Card) Close() error {
	err := c.h.Disconnect(scard.LeaveCard)
	if err != nil && !errors.Is(err, scard.ErrRemovedCard) && !errors.Is(err, scard.ErrInvalidHandle) {
		return mapErr("disconnect", err)
	}
	return nil
}

// mapErr wraps a scard error with the cardreader sentinel callers branch on,
// keeping the scard error for the message and for errors.As.
func mapErr(op string, err error) error {
	var e scard.Error
	if !errors.As(err, &e) {
		return fmt.Errorf("pcsc: %s: %w", op, err)
	}
	var kind error
	switch e {
	case scard.ErrNoService, scard.ErrServiceStopped, scard.ErrInvalidHandle, scard.ErrCommError, scard.ErrShutdown:
		kind = cardreader.ErrServiceUnavailable
	case scard.ErrNoReadersAvailable, scard.ErrUnknownReader, scard.ErrReaderUnavailable:
		kind = cardreader.ErrNoReader
	case scard.ErrNoSmartcard:
		kind = cardreader.ErrNoCard
	case scard.ErrRemovedCard, scard.ErrResetCard, scard.ErrUnpoweredCard:
		kind = cardreader.ErrCardRemoved
	case scard.ErrUnresponsiveCard, scard.ErrUnsupportedCard, scard.ErrProtoMismatch:
		kind = cardreader.ErrCardMute
	case scard.ErrTimeout:
		kind = context.DeadlineExceeded
	case scard.ErrCancelled:
		kind = context.Canceled
	default:
		return fmt.Errorf("pcsc: %s: %w", op, err)
	}
	return fmt.Errorf("pcsc: %s: %w (%w)", op, kind, err)
}
