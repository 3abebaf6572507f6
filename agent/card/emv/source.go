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
	// ContactlessReader names the PC/SC reader that is the contactless
	// one: a card picked in it is read with Terminal.Contactless set (PPSE,
	// qPBOC), a card in any other reader as a contact card. So one agent
	// can have a contact and a contactless reader side by side. Empty: no
	// contactless reader (Terminal.Contactless as configured applies).
	ContactlessReader string
	Terminal          Terminal
	// PINPad takes the PIN when a card's CVM list asks for online PIN; nil
	// means the terminal has no PIN pad, and online PIN fails as "PIN pad
	// not present" (the card's list says what follows).
	PINPad provisioning.PINPad
	// Log receives progress with masked data only; nil discards.
	Log *slog.Logger
}

var _ provisioning.CardSource = (*Source)(nil)

// ReadCard waits for a card and reads it without a cryptogram (ReadData):
// the binding and the void's card check spend no ATC and leave the card's
// transaction state alone. The Card has no ICData.
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
func (s *Source) ReadCard(ctx context.Context, r provisioning.CardRequest) (provisioning.Card, error) {
	log := s.logger()
	name, card, err := s.connect(ctx, r.Purpose)
	if err != nil {
		return provisioning.Card{}, err
	}
	defer card.Close()
	res, err := ReadData(ctx, card, s.terminal(name, r), TransactionFor(r))
	if err != nil {
		log.Warn("card read failed", "reader", name, "apdus", res.Transmissions, "err", err)
		return provisioning.Card{}, fmt.Errorf("emv: %s: %w", r.Purpose, err)
	}
	log.Info("card read", "reader", name, "pan", res.PAN, "aid", res.AID, "apdus", res.Transmissions)
	res.Track2.Wipe() // the binding and the void's check do not need it
	return res.Card(), nil
}

// Pay waits for a card as ReadCard does and starts the purchase of
// r.Amount on it (StartPayment): read, cardholder verification with the
// PINPad, first GENERATE AC. The Payment keeps the card connection open
// until its Close.
func (s *Source) Pay(ctx context.Context, r provisioning.CardRequest) (provisioning.Payment, error) {
	log := s.logger()
	name, card, err := s.connect(ctx, r.Purpose)
	if err != nil {
		return nil, err
	}
	p, err := StartPayment(ctx, card, s.terminal(name, r), TransactionFor(r), s.PINPad)
	if err != nil {
		card.Close()
		log.Warn("card payment failed", "reader", name, "err", err)
		return nil, fmt.Errorf("emv: %s: %w", r.Purpose, err)
	}
	log.Info("card read for payment", "reader", name, "pan", p.first.PAN, "aid", p.first.AID,
		"apdus", p.res.Transmissions, "tvr", p.ic.TVR, "cvm", p.ic.CVM)
	return p, nil
}

// terminal is the Terminal for a card in reader name: the acquirer's
// applications and CA keys of the request, and contactless when the
// reader is the ContactlessReader.
func (s *Source) terminal(name string, r provisioning.CardRequest) Terminal {
	t := s.Terminal.WithApps(r.Apps).WithCAPKs(r.CAPKs)
	if s.ContactlessReader != "" {
		t.Contactless = name == s.ContactlessReader
	}
	return t
}

func (s *Source) logger() *slog.Logger {
	if s.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.Log
}

// connect waits for the card (see ReadCard) and connects to it.
func (s *Source) connect(ctx context.Context, purpose string) (string, cardreader.Card, error) {
	name, err := s.pick(ctx)
	if err != nil {
		return "", nil, fmt.Errorf("emv: %s: waiting for a card: %w", purpose, err)
	}
	s.logger().Info("card inserted", "reader", name, "purpose", purpose)
	card, err := s.Reader.Connect(ctx, name)
	if err != nil {
		return "", nil, fmt.Errorf("emv: %s: connect %q: %w", purpose, name, err)
	}
	return name, card, nil
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
