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

// Profile is a virtual card: what its chip answers to a read, and how it
// ends a sale.
type Profile struct {
	PAN, Seq, Name, Expiry, AID, Label string
	// DeclineAfterApproval makes the chip answer the second GENERATE AC
	// of an approved sale with an AAC, its own risk management
	// overruling the issuer: the host has charged a sale the card
	// refused, which the terminal must reverse (reason 06).
	DeclineAfterApproval bool
	// RemovedMidSale takes the card out of the reader between the first
	// cryptogram and the second: Complete fails with
	// provisioning.ErrCardRemoved, and an approval the host gave must be
	// reversed.
	RemovedMidSale bool
}

// DemoPAN is the demo merchant's settlement card: the config's default merchant
// record carries the check value of this number (under DemoTMK).
const DemoPAN = "6222021234567890128"

// Profiles are the virtual cards the demo and the tests can insert. Each of
// the binding's ones but "debit" breaks exactly one binding rule for the
// demo merchant. "debit-16" is another account of the same cardholder with a
// 16-digit number: the brute-force test binds it (with its own check value),
// as a search of the 6 hidden digits ends in a test's time.
// "decline-after-approval" and "removed-mid-sale" are the debit card, bound
// as it is, that fails the test sale on the chip: the first answers the
// host's approval with an AAC, the second leaves the reader before the
// second GENERATE AC.
var Profiles = map[string]Profile{
	"debit":         {PAN: DemoPAN, Seq: "01", Name: "ZHANG/SAN", Expiry: "3012", AID: "A000000333010101", Label: "PBOC DEBIT"},
	"credit":        {PAN: "6250941234567898", Seq: "00", Name: "ZHANG/SAN", Expiry: "3012", AID: "A000000333010102", Label: "PBOC CREDIT"},
	"foreign":       {PAN: "4111111111111111", Seq: "00", Name: "ZHANG/SAN", Expiry: "3012", AID: "A0000000031010", Label: "VISA CREDIT"},
	"expired":       {PAN: DemoPAN, Seq: "01", Name: "ZHANG/SAN", Expiry: "2312", AID: "A000000333010101", Label: "PBOC DEBIT"},
	"name-mismatch": {PAN: DemoPAN, Seq: "01", Name: "LI/SI", Expiry: "3012", AID: "A000000333010101", Label: "PBOC DEBIT"},
	"other-account": {PAN: "6222029876543210128", Seq: "01", Name: "ZHANG/SAN", Expiry: "3012", AID: "A000000333010101", Label: "PBOC DEBIT"},
	"debit-16":      {PAN: "6222020000001872", Seq: "01", Name: "ZHANG/SAN", Expiry: "3012", AID: "A000000333010101", Label: "PBOC DEBIT"},
	"bad-luhn":      {PAN: "6222021234567890127", Seq: "01", Name: "ZHANG/SAN", Expiry: "3012", AID: "A000000333010101", Label: "PBOC DEBIT"},
	"decline-after-approval": {PAN: DemoPAN, Seq: "01", Name: "ZHANG/SAN", Expiry: "3012", AID: "A000000333010101", Label: "PBOC DEBIT",
		DeclineAfterApproval: true},
	"removed-mid-sale": {PAN: DemoPAN, Seq: "01", Name: "ZHANG/SAN", Expiry: "3012", AID: "A000000333010101", Label: "PBOC DEBIT",
		RemovedMidSale: true},
}

// ProfileNames lists the profiles, sorted.
func ProfileNames() []string { return slices.Sorted(maps.Keys(Profiles)) }

// Card is a card slot with a queue of virtual cards: each read for binding takes
// the next card (the installer swapping a rejected card for another), later
// reads find the last card inserted.
//
// Its chips keep their application transaction counters (ATC) here, one
// per card number, in memory: each Pay spends one, as the first GENERATE
// AC does on a real card, and a read without a cryptogram spends none. A
// restarted process starts them again, which a real card would not; the
// in-process host does not hold that against it.
type Card struct {
	Pauses *Pauses
	// Clock dates the chip's transactions (9A); the wall clock when nil.
	// The cryptograms do not cover the date, so slips do not depend on it.
	Clock provisioning.Clock

	mu      sync.Mutex
	queue   []Profile
	current int
	atc     map[string]uint16 // per card number
	first   int               // first GENERATE ACs (ARQC) made
	second  int               // second GENERATE ACs (TC or AAC) made
}

var _ provisioning.CardSource = (*Card)(nil)

// NewCard returns a slot that will present the named profiles in turn.
func NewCard(names ...string) (*Card, error) {
	if len(names) == 0 {
		names = []string{"debit"}
	}
	c := &Card{current: -1, atc: map[string]uint16{}}
	for _, n := range names {
		p, ok := Profiles[n]
		if !ok {
			return nil, fmt.Errorf("sim: no card profile %q (have %v)", n, ProfileNames())
		}
		c.queue = append(c.queue, p)
	}
	return c, nil
}

// ReadCard returns the card in the slot as the chip reports it, without a
// cryptogram: no IC data, and no ATC spent.
func (c *Card) ReadCard(ctx context.Context, r provisioning.CardRequest) (provisioning.Card, error) {
	_, card, err := c.read(ctx, r)
	return card, err
}

func (c *Card) read(ctx context.Context, r provisioning.CardRequest) (Profile, provisioning.Card, error) {
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
		return p, provisioning.Card{}, err
	}
	// The simulator keeps digits as given, a bad check digit included: the
	// binding rules must see it to reject it.
	number, err := pan.Parse(p.PAN)
	if err != nil {
		return p, provisioning.Card{}, fmt.Errorf("sim: profile card number: %w", err)
	}
	return p, provisioning.Card{PAN: number, Seq: p.Seq, Name: p.Name, Expiry: p.Expiry, AID: p.AID, Label: p.Label}, nil
}

// SelfTest reports the reader present.
func (c *Card) SelfTest(ctx context.Context) error { return ctx.Err() }

// Pay reads the card in the slot for a purchase of r.Amount and makes the
// first cryptogram (an ARQC: the chip always goes online), spending one
// ATC. It pauses at "card.first-ac" once the cryptogram exists, before the
// flow has it. The card asks for no PIN (its CVM is the signature on the
// slip), so the Payment's PIN block is nil.
func (c *Card) Pay(ctx context.Context, r provisioning.CardRequest) (provisioning.Payment, error) {
	p, card, err := c.read(ctx, r)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.atc[p.PAN]++
	atc := c.atc[p.PAN]
	c.first++
	c.mu.Unlock()
	var clock provisioning.Clock = provisioning.SystemClock{}
	if c.Clock != nil {
		clock = c.Clock
	}
	pay := newChipPayment(c, p, card, r.Amount, atc, clock.Now())
	c.Pauses.Point(ctx, "card.first-ac")
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return pay, nil
}

// ACs counts the GENERATE ACs the slot's chips answered: first (the ARQC
// of each Pay) and second (each Complete that reached the card's
// verdict). A sale makes one of each; a binding or a void's read makes
// none.
func (c *Card) ACs() (first, second int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.first, c.second
}

// ATC is the last transaction counter the chip of card number digits
// spent, zero before its first Pay.
func (c *Card) ATC(digits string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return int(c.atc[digits])
}
