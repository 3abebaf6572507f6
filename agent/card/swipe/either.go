package swipe

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/posagent/posagent/provisioning"
	"github.com/posagent/posagent/provisioning/pan"
)

// ErrChipFailed is what Either tells Notify when the chip read failed in a
// way that allows a fallback: the installer should now swipe the card.
var ErrChipFailed = errors.New("swipe: the chip could not be read: swipe the card")

// Either is a provisioning.CardSource for a terminal with a chip reader and
// a magstripe reader: ReadCard takes whichever card comes first, inserted or
// swiped, and is where the chip's failure reaches the swipe (fallback).
//
//   - A chip card read by its chip is returned as the chip source made it.
//   - A swiped magstripe card is returned as a swipe.
//   - A swiped chip card is refused (Notify gets ErrInsertChip) and the
//     wait goes on for its chip.
//   - A chip read that fails as ChipFailed says arms the fallback
//     (MarkChipFailed for any card: a failed chip may not have told its
//     PAN), Notify gets ErrChipFailed, and the wait goes on for the swipe,
//     which then comes back as EntryFallback.
//   - Any other chip error (card pulled out mid-read …) is returned.
//
// Unreadable swipes go to Notify (ErrSwipeAgain) and the wait goes on. When
// the magstripe line fails, the chip alone is waited for.
type Either struct {
	Chip  provisioning.CardSource
	Swipe *Source
	// ChipFailed says a chip error is the chip's own failure, which allows
	// a fallback to the stripe; nil means none is (no fallback). UnionPay
	// allows it when the chip does not answer or answers wrongly, not when
	// the card was pulled out: e.g. errors.Is(err, cardreader.ErrCardMute)
	// || errors.Is(err, cardreader.ErrBadResponse) || errors.Is(err,
	// emv.ErrNoApplication).
	ChipFailed func(error) bool
	// Notify, when set, is told what the installer should do next: swipe
	// again, insert the chip, or swipe after a failed chip. It is called
	// from ReadCard's goroutines, one call at a time, and must not block.
	Notify func(purpose string, err error)
}

var _ provisioning.CardSource = (*Either)(nil)

type result struct {
	pay  provisioning.Payment
	err  error
	chip bool
}

// ReadCard waits for a card inserted or swiped; see Either.
func (e *Either) ReadCard(ctx context.Context, r provisioning.CardRequest) (provisioning.Card, error) {
	p, err := e.wait(ctx, r, func(ctx context.Context) (provisioning.Payment, error) {
		c, err := e.Chip.ReadCard(ctx, r)
		if err != nil {
			return nil, err
		}
		return provisioning.NoChip(c, nil), nil
	})
	if err != nil {
		return provisioning.Card{}, err
	}
	return p.Card(), nil
}

// Pay waits for a card inserted or swiped for a purchase; see Either. A
// chip card's payment is the chip source's; a swiped one has no chip
// session.
func (e *Either) Pay(ctx context.Context, r provisioning.CardRequest) (provisioning.Payment, error) {
	return e.wait(ctx, r, func(ctx context.Context) (provisioning.Payment, error) { return e.Chip.Pay(ctx, r) })
}

func (e *Either) wait(ctx context.Context, r provisioning.CardRequest, chip func(context.Context) (provisioning.Payment, error)) (provisioning.Payment, error) {
	purpose := r.Purpose
	if e.Chip == nil || e.Swipe == nil {
		return nil, errors.New("swipe: Either needs a chip source and a swipe source")
	}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	// Both readers are done before ReadCard returns: a swipe read left
	// running would take the next card meant for the next ReadCard.
	results := make(chan result, 2)
	// A chip session that opened while the swipe won is closed, not
	// leaked: this runs after both readers ended (defers run last-in
	// first).
	defer func() {
		close(results)
		for r := range results {
			if r.pay != nil {
				r.pay.Close()
			}
		}
	}()
	defer wg.Wait()
	defer cancel()
	var notifyMu sync.Mutex
	notify := func(err error) {
		if e.Notify != nil {
			notifyMu.Lock()
			defer notifyMu.Unlock()
			e.Notify(purpose, err)
		}
	}
	wg.Add(2)
	go func() {
		defer wg.Done()
		p, err := chip(ctx)
		results <- result{pay: p, err: err, chip: true}
	}()
	// The swipe source returns its refusals (unless its own Refused hook
	// takes them): pass them on and wait for the next swipe.
	go func() {
		defer wg.Done()
		for {
			card, err := e.Swipe.ReadCard(ctx, r)
			if (errors.Is(err, ErrInsertChip) || errors.Is(err, ErrSwipeAgain)) && ctx.Err() == nil {
				notify(err)
				continue
			}
			var p provisioning.Payment
			if err == nil {
				p = provisioning.NoChip(card, nil)
			}
			results <- result{pay: p, err: err}
			return
		}
	}()
	defer e.Swipe.disarm() // a fallback allowed here is not for the next read
	var chipErr, swipeErr error
	for range 2 {
		r := <-results
		switch {
		case r.err == nil:
			return r.pay, nil
		case ctx.Err() != nil:
			return nil, ctx.Err()
		case r.chip && e.ChipFailed != nil && e.ChipFailed(r.err):
			chipErr = r.err
			if swipeErr == nil {
				e.Swipe.MarkChipFailed(pan.PAN{})
				notify(fmt.Errorf("%w: %w", ErrChipFailed, r.err))
			}
		case r.chip:
			return nil, r.err
		default:
			swipeErr = r.err // the magstripe line failed: the chip may still come
		}
	}
	// Both ended without a card: the chip failed and the swipe line did too.
	return nil, fmt.Errorf("%w (and the swipe failed: %w)", chipErr, swipeErr)
}
