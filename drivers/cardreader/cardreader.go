// Package cardreader holds the concepts of a contact chip-card reader service —
// readers, card presence, connections and APDU exchanges — and nothing of any
// particular backend.
//
// The EMV flow (agent/card/emv) is written against Reader and Card only, so it runs
// unchanged over the PC/SC backend (cardreader/pcsc, cgo, ebfe/scard), over the
// scripted fake in cardreader/cardreadertest, and over an in-process virtual
// card. Backends return raw ISO 7816-4 response APDUs; the T=0 procedure bytes
// that pcscd leaves to the application (61XX, 6CXX) are resolved once, here, by
// Exchange / T0, for every backend.
//
// Errors callers branch on are sentinels (ErrCardRemoved, ErrNoReader,
// ErrServiceUnavailable, …) wrapped with %w; Retryable tells a "remove and insert
// again" condition from a broken card.
package cardreader

import (
	"context"
	"errors"
	"time"
)

// Reader is a card reader service: the set of readers (slots) one PC/SC context
// sees. Implementations are safe for use by one goroutine at a time, except that
// Close may be called concurrently to abort a pending WaitChange.
type Reader interface {
	// Readers lists the reader names currently attached. No reader at all is
	// ErrNoReader, not an empty list, so callers cannot mistake it for "no card".
	Readers(ctx context.Context) ([]string, error)
	// WaitChange blocks until the state of one of the readers in known differs
	// from what known says (card inserted or removed, reader gone), then returns
	// the new states of all of them. An entry with Unknown set returns at once
	// with the current state: that is how callers take a snapshot. The wait ends
	// with ctx (context.DeadlineExceeded / Canceled): the timeout is the
	// context's deadline.
	WaitChange(ctx context.Context, known []ReaderState) ([]ReaderState, error)
	// Connect opens the card in the named reader (T=0 or T=1, as the ATR says).
	// An empty reader is ErrNoCard.
	Connect(ctx context.Context, reader string) (Card, error)
	// Close releases the service. Cards already connected stay valid until
	// their own Close.
	Close() error
}

// Card is a connection to the card in one reader.
type Card interface {
	// Transmit sends one command APDU and returns the raw response APDU (data
	// followed by SW1 SW2) exactly as the card sent it: no 61XX/6CXX handling,
	// which T0 adds. A card pulled out is ErrCardRemoved.
	Transmit(ctx context.Context, cmd []byte) ([]byte, error)
	// ATR is the answer-to-reset seen at connection time.
	ATR() []byte
	// Reader is the name of the reader the card sits in.
	Reader() string
	// Close ends the connection and leaves the card powered in the slot.
	Close() error
}

// ReaderState is what WaitChange knows about one reader.
type ReaderState struct {
	Name    string
	Present bool // a card is in the slot
	// Events counts insertions and removals as the service reports them
	// (PC/SC's event counter); a changed count with Present still true means
	// the card was swapped between two polls.
	Events int
	// Unknown asks WaitChange for the current state without waiting.
	Unknown bool
	// Gone is set when the reader disappeared (unplugged, service restarted).
	Gone bool
}

// Errors callers branch on. Backends wrap them with the backend's own error so
// errors.Is works and the message still says what the driver saw.
var (
	// ErrNoReader: no reader attached, or the named reader is unknown.
	ErrNoReader = errors.New("cardreader: no card reader")
	// ErrNoCard: the reader is empty.
	ErrNoCard = errors.New("cardreader: no card in the reader")
	// ErrCardRemoved: the card was pulled out (or reset) during the session;
	// the user must remove and insert it again.
	ErrCardRemoved = errors.New("cardreader: card removed, remove and insert it again")
	// ErrServiceUnavailable: the reader service (pcscd) is not running or was
	// restarted; the backend re-establishes it on the next call.
	ErrServiceUnavailable = errors.New("cardreader: card reader service unavailable")
	// ErrCardMute: the card did not answer (no ATR or no response APDU).
	ErrCardMute = errors.New("cardreader: card does not answer")
	// ErrBadResponse: the response APDU is malformed (shorter than a status
	// word, or a T=0 exchange that never settles).
	ErrBadResponse = errors.New("cardreader: malformed response APDU")
)

// Retryable reports whether err is a condition the user fixes by removing and
// inserting the card again or by waiting (service restart), as opposed to a card
// that answers wrongly and will keep doing so.
func Retryable(err error) bool {
	return errors.Is(err, ErrCardRemoved) || errors.Is(err, ErrNoCard) ||
		errors.Is(err, ErrServiceUnavailable) || errors.Is(err, ErrCardMute) ||
		errors.Is(err, ErrNoReader)
}

// Snapshot returns the current state of the named readers (all attached
// readers when names is empty).
func Snapshot(ctx context.Context, r Reader, names ...string) ([]ReaderState, error) {
	if len(names) == 0 {
		var err error
		if names, err = r.Readers(ctx); err != nil {
			return nil, err
		}
	}
	known := make([]ReaderState, len(names))
	for i, n := range names {
		known[i] = ReaderState{Name: n, Unknown: true}
	}
	return r.WaitChange(ctx, known)
}

// WaitInserted waits until a card is inserted into one of the named readers
// (all attached readers when names is empty) and returns that reader's name.
// Only an insertion that happens after the call counts: a card that already sat
// in a slot is somebody else's (the second slot of a two-slot terminal, or the
// card just rejected). Use WaitPresent to accept a card already in place.
func WaitInserted(ctx context.Context, r Reader, names ...string) (string, error) {
	known, err := Snapshot(ctx, r, names...)
	if err != nil {
		return "", err
	}
	for {
		now, err := r.WaitChange(ctx, known)
		if err != nil {
			return "", err
		}
		for i, s := range now {
			if i < len(known) && s.Present && !s.Gone && (!known[i].Present || s.Events != known[i].Events) {
				return s.Name, nil
			}
		}
		known = now
	}
}

// WaitPresent waits until the named reader holds a card (returns at once if it
// already does) when present is true, or until it is empty (or gone) when
// present is false. Waiting for a card in a reader that is gone is ErrNoReader.
func WaitPresent(ctx context.Context, r Reader, name string, present bool) error {
	known, err := Snapshot(ctx, r, name)
	if err != nil {
		return err
	}
	for {
		if len(known) == 1 && known[0].Gone {
			if !present {
				return nil // a reader that is gone holds no card
			}
			return ErrNoReader
		}
		if len(known) == 1 && known[0].Present == present {
			return nil
		}
		if known, err = r.WaitChange(ctx, known); err != nil {
			return err
		}
	}
}

// WithTimeout is context.WithTimeout for callers that think in reader terms
// ("wait 30 s for a card"); d <= 0 means no timeout beyond ctx.
func WithTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if d <= 0 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, d)
}
