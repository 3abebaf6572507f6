// Package swipe is a provisioning.CardSource over a serial magnetic-stripe
// reader: ReadCard waits for a swipe, lets drivers/magstripe check the tracks,
// and hands the flow a provisioning.Card with the entry mode and the track
// data the host needs (as self-redacting pan.Track values).
//
// A chip card (service code 2xx or 6xx) must be read by its chip: its swipe is
// refused with ErrInsertChip, unless the chip has just failed on that card —
// the caller says so with MarkChipFailed — in which case the swipe is taken as
// a fallback (Entry = EntryFallback, field 60.5 = 2). An unreadable swipe is
// ErrSwipeAgain. Line noise and half frames are skipped without a word.
//
// Nothing here logs, keeps or prints track data: logs carry the masked PAN,
// and the raw bytes are zeroed by drivers/magstripe once the tracks are in the
// Card.
package swipe

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/posagent/posagent/drivers/magstripe"
	"github.com/posagent/posagent/provisioning"
	"github.com/posagent/posagent/provisioning/pan"
)

// Errors callers branch on; both leave the Source ready for the next swipe.
var (
	// ErrInsertChip: a chip card was swiped; ask for its chip to be
	// inserted. The error is a *magstripe.ChipCardError (masked PAN).
	ErrInsertChip = magstripe.ErrChipCard
	// ErrSwipeAgain: the swipe could not be read (a track missing, damaged,
	// expired card …); ask for another swipe. The error is a
	// *magstripe.SwipeError naming the failed checks, never the data.
	ErrSwipeAgain = magstripe.ErrBadSwipe
	// ErrLineClosed: the reader's line ended (io.EOF from it); a
	// serialport.Port never ends, but a plain file or pipe does.
	ErrLineClosed = errors.New("swipe: reader line closed")
)

// Config configures a Source.
type Config struct {
	// Framing is how the reader frames a swipe (magstripe.MagTek,
	// magstripe.Lines(1, 2, 3) …; see magstripe.FramingByName).
	Framing magstripe.Framing
	// Now is the clock card expiry is checked against; nil is time.Now.
	Now func() time.Time
	// Log receives one line per swipe with the masked PAN only; nil discards.
	Log *slog.Logger
	// Refused, when set, is told of each refused swipe (ErrInsertChip,
	// ErrSwipeAgain) and ReadCard keeps waiting for the next one: the UI
	// shows "insert the chip" or "swipe again" and the installer does it
	// without the flow noticing. Nil makes ReadCard return the refusal.
	Refused func(purpose string, err error)
}

// Source reads cards from a magstripe reader. ReadCard calls are serialised;
// MarkChipFailed may be called from any goroutine.
type Source struct {
	cfg Config
	log *slog.Logger

	readMu sync.Mutex // one ReadCard at a time: the reader is not concurrent
	reader *magstripe.Reader
	t2, t3 pan.Track // the accepted swipe's tracks; guarded by readMu

	mu       sync.Mutex
	armed    bool    // the chip failed: the next chip card swiped is a fallback
	armedPAN pan.PAN // … only this card, when the chip got as far as its PAN
}

var _ provisioning.CardSource = (*Source)(nil)

// New reads swipes from r, usually a serialport.Port opened on the reader's
// device. New never closes r: its owner does, after the last ReadCard.
// r must time out now and then (see magstripe.NewReader), which a
// serialport.Port does, so a cancelled ReadCard returns.
func New(r io.Reader, cfg Config) *Source {
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Source{cfg: cfg, log: log}
	s.reader = magstripe.NewReader(r, magstripe.Config{Framing: cfg.Framing, Now: cfg.Now,
		Sensitive: func(d magstripe.Sensitive) {
			// Copied into the self-redacting wrappers before magstripe
			// zeroes the lent bytes; called within Swipe, under readMu.
			s.t2, s.t3 = pan.NewTrack(string(d.Track2)), pan.NewTrack(string(d.Track3))
		}})
	return s
}

// MarkChipFailed says the chip of the card in hand failed (an EMV read gave
// up on it), so the next ReadCard accepts that card's swipe as a fallback
// although its service code says chip. p is the PAN when the chip got far
// enough to give it; then only a card with that PAN falls back, and another
// chip card is still sent to its chip. A zero p allows any card, for a chip
// that did not answer at all.
//
// The permission lasts until a ReadCard returns a card: one failed chip
// allows one fallback read.
func (s *Source) MarkChipFailed(p pan.PAN) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.armed, s.armedPAN = true, p
}

// allowFallback says whether the chip card p, just swiped, may fall back:
// its chip (or, when the PAN was not known, a chip) failed.
func (s *Source) allowFallback(p pan.PAN) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.armed && (s.armedPAN.IsZero() || s.armedPAN.Reveal() == p.Reveal())
}

func (s *Source) disarm() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.armed, s.armedPAN = false, pan.PAN{}
}

// ReadCard waits for a swipe and returns the card. Purpose is for the logs
// and the Refused hook.
//
// The card's PAN, Name (track 1, as "SURNAME/GIVEN" — empty when track 1 was
// not readable), Expiry (YYMM), Entry (EntrySwipe, or EntryFallback after
// MarkChipFailed) and Track2/Track3 (fields 35 and 36) are set; Type, AID and
// ICData stay empty: a stripe says neither debit nor credit.
//
// Refusals (ErrInsertChip, ErrSwipeAgain) are returned unless Config.Refused
// is set. Garbage and partial frames are skipped. ctx's error is returned
// when it ends first, ErrLineClosed when the line does.
func (s *Source) ReadCard(ctx context.Context, r provisioning.CardRequest) (provisioning.Card, error) {
	purpose := r.Purpose
	s.readMu.Lock()
	defer s.readMu.Unlock()
	for {
		card, err := s.readOnce(ctx)
		switch {
		case err == nil:
			s.disarm()
			s.log.Info("card swiped", "purpose", purpose, "pan", card.PAN, "entry", string(card.Entry))
			return card, nil
		case errors.Is(err, ErrInsertChip), errors.Is(err, ErrSwipeAgain):
			s.log.Warn("swipe refused", "purpose", purpose, "err", err) // errors carry the masked PAN only
			if s.cfg.Refused == nil {
				return provisioning.Card{}, fmt.Errorf("swipe: %s: %w", purpose, err)
			}
			s.cfg.Refused(purpose, err)
		case errors.Is(err, io.EOF):
			return provisioning.Card{}, fmt.Errorf("swipe: %s: %w", purpose, ErrLineClosed)
		default:
			return provisioning.Card{}, fmt.Errorf("swipe: %s: %w", purpose, err)
		}
	}
}

// readOnce waits for one swipe and turns it into a card or a refusal.
func (s *Source) readOnce(ctx context.Context) (provisioning.Card, error) {
	s.t2, s.t3 = pan.Track{}, pan.Track{}
	// The fallback is decided when a chip card is swiped, not before the
	// wait: the chip's failure may be reported while the swipe is awaited
	// (Either does so).
	sw, err := s.reader.SwipeWith(ctx, s.allowFallback)
	t2, t3 := s.t2, s.t3
	s.t2, s.t3 = pan.Track{}, pan.Track{} // the Source keeps no track data
	if err != nil {
		return provisioning.Card{}, err
	}
	entry := provisioning.EntrySwipe
	if sw.Fallback {
		entry = provisioning.EntryFallback
	}
	return provisioning.Card{PAN: sw.PAN, Name: magstripe.NormalizeName(sw.Name), Expiry: sw.Expiry,
		Entry: entry, Track2: t2, Track3: t3}, nil
}

// Pay reads a swiped card for a purchase: a stripe has no chip session, so
// the payment is the read card's (provisioning.NoChip).
func (s *Source) Pay(ctx context.Context, r provisioning.CardRequest) (provisioning.Payment, error) {
	c, err := s.ReadCard(ctx, r)
	if err != nil {
		return nil, err
	}
	return provisioning.NoChip(c, nil), nil
}
