package emv

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/posagent/posagent/drivers/cardreader"
	"github.com/posagent/posagent/provisioning"
)

// Source is a provisioning.CardSource over a card reader service: it waits for
// a card, runs Read and hands back provisioning.Card. It never closes Reader,
// which its owner (the composition root) does.
type Source struct {
	Reader cardreader.Reader
	// ReaderName pins one reader; empty means any attached reader.
	ReaderName string
	Terminal   Terminal
	// Log receives progress with masked data only; nil discards.
	Log *slog.Logger
}

var _ provisioning.CardSource = (*Source)(nil)

// ReadCard waits for a card and reads it.
//
// Which card: with ReaderName set, the card in that reader (waiting for one if
// it is empty). Otherwise, if exactly one reader holds a card, that one;
// if none or several do, the next card inserted anywhere — with two cards in a
// two-slot terminal, the one the installer inserts after the prompt.
// A card pulled out mid-read is cardreader.ErrCardRemoved (Retryable): the
// caller prompts "remove and insert again" and calls ReadCard again.
//
// The application list is the acquirer's downloaded IC parameters when the
// request carries them (Terminal.WithApps), else the Terminal's own.
//
// The card signs what the request says: a purchase of r.Amount (the ARQC
// then covers the amount the host is sent), or, for a zero amount, an
// inquiry (binding, the void's card check), for which the card still
// computes a cryptogram the host can verify.
func (s *Source) ReadCard(ctx context.Context, r provisioning.CardRequest) (provisioning.Card, error) {
	purpose := r.Purpose
	log := s.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	name, err := s.pick(ctx)
	if err != nil {
		return provisioning.Card{}, fmt.Errorf("emv: %s: waiting for a card: %w", purpose, err)
	}
	log.Info("card inserted", "reader", name, "purpose", purpose)
	card, err := s.Reader.Connect(ctx, name)
	if err != nil {
		return provisioning.Card{}, fmt.Errorf("emv: %s: connect %q: %w", purpose, name, err)
	}
	defer card.Close()
	res, err := Read(ctx, card, s.Terminal.WithApps(r.Apps), TransactionFor(r))
	if err != nil {
		log.Warn("card read failed", "reader", name, "apdus", res.Transmissions, "err", err)
		return provisioning.Card{}, fmt.Errorf("emv: %s: %w", purpose, err)
	}
	log.Info("card read", "reader", name, "pan", res.PAN, "aid", res.AID, "apdus", res.Transmissions)
	res.Track2.Wipe() // the binding and the sale's field 55 do not need it
	return res.Card(), nil
}

// TransactionFor is what the card is asked to sign for a request: a
// purchase (9C 00) of its amount, or an inquiry (9C 31) of nothing.
func TransactionFor(r provisioning.CardRequest) Transaction {
	if r.Amount > 0 {
		return Transaction{Amount: r.Amount, Type: 0x00}
	}
	return Transaction{Type: 0x31}
}

func (s *Source) pick(ctx context.Context) (string, error) {
	return PickReader(ctx, s.Reader, s.ReaderName)
}

// PickReader is the rule of ReadCard for which reader to read: name when set
// (waiting for a card in it), else the reader holding the only card, else
// the next reader a card is inserted into.
func PickReader(ctx context.Context, r cardreader.Reader, name string) (string, error) {
	if r == nil {
		return "", cardreader.ErrNoReader
	}
	if name != "" {
		return name, cardreader.WaitPresent(ctx, r, name, true)
	}
	states, err := cardreader.Snapshot(ctx, r)
	if err != nil {
		return "", err
	}
	var with []string
	for _, st := range states {
		if st.Present && !st.Gone {
			with = append(with, st.Name)
		}
	}
	if len(with) == 1 {
		return with[0], nil
	}
	names := make([]string, len(states))
	for i, st := range states {
		names[i] = st.Name
	}
	return cardreader.WaitInserted(ctx, r, names...)
}

// Card converts the result to the provisioning flow's card.
func (r Result) Card() provisioning.Card {
	return provisioning.Card{
		PAN:    r.PAN,
		Seq:    r.Seq,
		Name:   r.Name,
		Expiry: r.Expiry,
		AID:    r.AID,
		Label:  r.Label,
		Type:   r.Type,
		ICData: r.ICData,
	}
}

// Pay reads the card for a purchase.
func (s *Source) Pay(ctx context.Context, r provisioning.CardRequest) (provisioning.Payment, error) {
	c, err := s.ReadCard(ctx, r)
	if err != nil {
		return nil, err
	}
	return provisioning.NoChip(c, nil), nil
}
