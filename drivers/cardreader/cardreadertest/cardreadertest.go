// Package cardreadertest provides fakes for cardreader: a scripted card that
// plays back an exact APDU conversation (periph conntest-style: an unexpected
// command, or a scripted exchange left unused, fails the test), a card that
// answers through a function, and a multi-slot reader whose cards are inserted
// and removed by the test.
package cardreadertest

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"strings"
	"sync"

	"github.com/posagent/posagent/drivers/cardreader"
)

// TB is the part of testing.TB the fakes use.
type TB interface {
	Helper()
	Errorf(format string, args ...any)
	Cleanup(func())
}

// X decodes hex with optional spaces ("00A4 0400 07 …") and panics on bad hex:
// it is for literals in tests.
func X(s string) []byte {
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		panic(fmt.Sprintf("cardreadertest.X(%q): %v", s, err))
	}
	return b
}

// Exchange is one scripted command and the card's answer: Resp, or Err when
// the transmission itself fails (card removed, service gone).
type Exchange struct {
	Cmd  []byte
	Resp []byte
	Err  error
}

// Ex builds an Exchange from hex literals.
func Ex(cmd, resp string) Exchange { return Exchange{Cmd: X(cmd), Resp: X(resp)} }

// Playback is a card that expects exactly the scripted exchanges in order.
type Playback struct {
	ReaderName string
	ATRBytes   []byte

	t      TB
	mu     sync.Mutex
	script []Exchange
	pos    int
	closed bool
}

var _ cardreader.Card = (*Playback)(nil)

// NewPlayback returns a scripted card; at test cleanup it fails the test when
// some exchange was not played.
func NewPlayback(t TB, script ...Exchange) *Playback {
	t.Helper()
	p := &Playback{ReaderName: "Fake Reader 00", ATRBytes: X("3B800181"), t: t, script: script}
	t.Cleanup(func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		if p.pos != len(p.script) {
			t.Errorf("cardreadertest: %d of %d scripted exchanges unused; next expected command %X",
				len(p.script)-p.pos, len(p.script), p.script[p.pos].Cmd)
		}
	})
	return p
}

// Transmit plays the next exchange; a command other than the scripted one fails
// the test and returns an error (so the code under test stops).
func (p *Playback) Transmit(ctx context.Context, cmd []byte) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, fmt.Errorf("cardreadertest: transmit after close: %w", cardreader.ErrNoCard)
	}
	if p.pos >= len(p.script) {
		p.t.Errorf("cardreadertest: unexpected command %X after the script ended", cmd)
		return nil, fmt.Errorf("cardreadertest: script ended: %w", cardreader.ErrCardMute)
	}
	e := p.script[p.pos]
	if !bytes.Equal(e.Cmd, cmd) {
		p.t.Errorf("cardreadertest: exchange %d: got command %X, want %X", p.pos, cmd, e.Cmd)
		return nil, fmt.Errorf("cardreadertest: unexpected command: %w", cardreader.ErrCardMute)
	}
	p.pos++
	if e.Err != nil {
		return nil, e.Err
	}
	return append([]byte(nil), e.Resp...), nil
}

// Played is the number of exchanges used so far.
func (p *Playback) Played() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.pos
}

// ATR returns ATRBytes.
func (p *Playback) ATR() []byte { return p.ATRBytes }

// Reader returns ReaderName.
func (p *Playback) Reader() string { return p.ReaderName }

// Close marks the card closed; later Transmits fail.
func (p *Playback) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	return nil
}

// Func is a card whose answers come from a function (an in-process virtual
// card, or a test that computes answers). It counts the commands it saw.
type Func struct {
	Name    string
	ATRb    []byte
	Respond func(cmd []byte) ([]byte, error)

	mu sync.Mutex
	n  int
}

var _ cardreader.Card = (*Func)(nil)

// Transmit calls Respond.
func (f *Func) Transmit(ctx context.Context, cmd []byte) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	f.mu.Lock()
	f.n++
	f.mu.Unlock()
	return f.Respond(cmd)
}

// Count is the number of commands transmitted.
func (f *Func) Count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.n
}

// ATR returns ATRb.
func (f *Func) ATR() []byte { return f.ATRb }

// Reader returns Name.
func (f *Func) Reader() string { return f.Name }

// Close does nothing: the card stays in its slot.
func (f *Func) Close() error { return nil }

// Reader is a fake reader service with named slots. Tests Insert and Remove
// cards; WaitChange wakes on every change.
type Reader struct {
	mu      sync.Mutex
	changed chan struct{} // closed and replaced on every change
	slots   map[string]*slot
	order   []string
	closed  bool
	blocked chan struct{} // closed when a WaitChange next blocks; see Blocked
	// ConnectErr, when set, is returned by Connect (service down, …).
	ConnectErr error
}

type slot struct {
	card   cardreader.Card
	events int
}

var _ cardreader.Reader = (*Reader)(nil)

// NewReader returns a fake service with the named, empty slots.
func NewReader(names ...string) *Reader {
	r := &Reader{changed: make(chan struct{}), slots: map[string]*slot{}}
	for _, n := range names {
		r.slots[n] = &slot{}
		r.order = append(r.order, n)
	}
	return r
}

func (r *Reader) notifyLocked() {
	close(r.changed)
	r.changed = make(chan struct{})
}

// Insert puts card into the named slot (replacing any card there).
func (r *Reader) Insert(name string, card cardreader.Card) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s, ok := r.slots[name]
	if !ok {
		s = &slot{}
		r.slots[name] = s
		r.order = append(r.order, name)
	}
	s.card = card
	s.events++
	r.notifyLocked()
}

// Remove empties the named slot.
func (r *Reader) Remove(name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if s, ok := r.slots[name]; ok && s.card != nil {
		s.card = nil
		s.events++
		r.notifyLocked()
	}
}

// Readers lists the slots.
func (r *Reader) Readers(ctx context.Context) ([]string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.order) == 0 {
		return nil, cardreader.ErrNoReader
	}
	return append([]string(nil), r.order...), nil
}

func (r *Reader) stateLocked(name string) cardreader.ReaderState {
	s, ok := r.slots[name]
	if !ok {
		return cardreader.ReaderState{Name: name, Gone: true}
	}
	return cardreader.ReaderState{Name: name, Present: s.card != nil, Events: s.events}
}

// WaitChange implements cardreader.Reader.
func (r *Reader) WaitChange(ctx context.Context, known []cardreader.ReaderState) ([]cardreader.ReaderState, error) {
	for {
		r.mu.Lock()
		if r.closed {
			r.mu.Unlock()
			return nil, cardreader.ErrServiceUnavailable
		}
		now := make([]cardreader.ReaderState, len(known))
		differ := false
		for i, k := range known {
			now[i] = r.stateLocked(k.Name)
			if k.Unknown || now[i] != k {
				differ = true
			}
		}
		ch := r.changed
		if !differ && r.blocked != nil {
			close(r.blocked)
			r.blocked = nil
		}
		r.mu.Unlock()
		if differ {
			return now, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// Blocked returns a channel closed when a WaitChange call next blocks
// waiting for a change: tests act (insert, remove) only once the code under
// test is waiting, without sleeping. Call it before starting the waiter.
func (r *Reader) Blocked() <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.blocked == nil {
		r.blocked = make(chan struct{})
	}
	return r.blocked
}

// Connect returns the card in the slot.
func (r *Reader) Connect(ctx context.Context, name string) (cardreader.Card, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ConnectErr != nil {
		return nil, r.ConnectErr
	}
	s, ok := r.slots[name]
	if !ok {
		return nil, fmt.Errorf("cardreadertest: %q: %w", name, cardreader.ErrNoReader)
	}
	if s.card == nil {
		return nil, fmt.Errorf("cardreadertest: %q: %w", name, cardreader.ErrNoCard)
	}
	return s.card, nil
}

// Close wakes pending waits with ErrServiceUnavailable.
func (r *Reader) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.closed {
		r.closed = true
		r.notifyLocked()
	}
	return nil
}
