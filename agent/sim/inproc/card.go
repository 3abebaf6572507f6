package inproc

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"

	"github.com/posagent/posagent/provisioning"
	"github.com/posagent/posagent/provisioning/pan"
)

// Profile is a virtual card: what its chip answers to a read.
type Profile struct {
	PAN, Seq, Name, Expiry, AID, Label string
}

// DemoPAN is the demo merchant's settlement card: the config's default merchant
// record carries the check value of this number (under DemoTMK).
const DemoPAN = "6222021234567890128"

// Profiles are the virtual cards the demo and the tests can insert. Each of the
// non-"debit" ones breaks exactly one binding rule for the demo merchant.
// "debit-16" is another account of the same cardholder with a 16-digit
// number: the brute-force test binds it (with its own check value), as a
// search of the 6 hidden digits ends in a test's time.
var Profiles = map[string]Profile{
	"debit":         {PAN: DemoPAN, Seq: "01", Name: "ZHANG/SAN", Expiry: "3012", AID: "A000000333010101", Label: "PBOC DEBIT"},
	"credit":        {PAN: "6250941234567898", Seq: "00", Name: "ZHANG/SAN", Expiry: "3012", AID: "A000000333010102", Label: "PBOC CREDIT"},
	"foreign":       {PAN: "4111111111111111", Seq: "00", Name: "ZHANG/SAN", Expiry: "3012", AID: "A0000000031010", Label: "VISA CREDIT"},
	"expired":       {PAN: DemoPAN, Seq: "01", Name: "ZHANG/SAN", Expiry: "2312", AID: "A000000333010101", Label: "PBOC DEBIT"},
	"name-mismatch": {PAN: DemoPAN, Seq: "01", Name: "LI/SI", Expiry: "3012", AID: "A000000333010101", Label: "PBOC DEBIT"},
	"other-account": {PAN: "6222029876543210128", Seq: "01", Name: "ZHANG/SAN", Expiry: "3012", AID: "A000000333010101", Label: "PBOC DEBIT"},
	"debit-16":      {PAN: "6222020000001872", Seq: "01", Name: "ZHANG/SAN", Expiry: "3012", AID: "A000000333010101", Label: "PBOC DEBIT"},
	"bad-luhn":      {PAN: "6222021234567890127", Seq: "01", Name: "ZHANG/SAN", Expiry: "3012", AID: "A000000333010101", Label: "PBOC DEBIT"},
}

// ProfileNames lists the profiles, sorted.
func ProfileNames() []string { return slices.Sorted(maps.Keys(Profiles)) }

// Card is a card slot with a queue of virtual cards: each read for binding takes
// the next card (the installer swapping a rejected card for another), later
// reads find the last card inserted.
type Card struct {
	Pauses *Pauses

	mu      sync.Mutex
	queue   []Profile
	current int
}

var _ provisioning.CardSource = (*Card)(nil)

// NewCard returns a slot that will present the named profiles in turn.
func NewCard(names ...string) (*Card, error) {
	if len(names) == 0 {
		names = []string{"debit"}
	}
	c := &Card{current: -1}
	for _, n := range names {
		p, ok := Profiles[n]
		if !ok {
			return nil, fmt.Errorf("sim: no card profile %q (have %v)", n, ProfileNames())
		}
		c.queue = append(c.queue, p)
	}
	return c, nil
}

// ReadCard returns the card in the slot as the chip reports it.
func (c *Card) ReadCard(ctx context.Context, r provisioning.CardRequest) (provisioning.Card, error) {
	c.mu.Lock()
	if r.Purpose == provisioning.PurposeBind || c.current < 0 {
		if c.current < len(c.queue)-1 {
			c.current++
		}
	}
	p := c.queue[c.current]
	c.mu.Unlock()
	c.Pauses.Point(ctx, "card.read")
	if err := ctx.Err(); err != nil {
		return provisioning.Card{}, err
	}
	// The simulator keeps digits as given, a bad check digit included: the
	// binding rules must see it to reject it.
	number, err := pan.Parse(p.PAN)
	if err != nil {
		return provisioning.Card{}, fmt.Errorf("sim: profile card number: %w", err)
	}
	return provisioning.Card{PAN: number, Seq: p.Seq, Name: p.Name, Expiry: p.Expiry, AID: p.AID, Label: p.Label}, nil
}

// SelfTest reports the reader present.
func (c *Card) SelfTest(ctx context.Context) error { return ctx.Err() }

// Pay reads the card in the slot for a purchase.
func (c *Card) Pay(ctx context.Context, r provisioning.CardRequest) (provisioning.Payment, error) {
	card, err := c.ReadCard(ctx, r)
	if err != nil {
		return nil, err
	}
	return provisioning.NoChip(card, nil), nil
}
