package provisioning

import (
	"context"
	"time"

	"github.com/posagent/posagent/provisioning/pan"
)

// CardType is what the merchant registered its settlement card as.
type CardType string

// Card types. The chip tells them apart by AID (…0101 debit, …0102 credit).
const (
	Debit  CardType = "debit"
	Credit CardType = "credit"
)

// Card is what a card source read from the card in the slot. It lives in memory
// only: the flow persists Masked(), never the PAN or track data.
type Card struct {
	PAN    pan.PAN
	Seq    string // PAN sequence number (5F34), field 23 of the sale
	Name   string // cardholder name as the card carries it (5F20 / 9F0B / track 1)
	Expiry string // YYMM
	AID    string // hex, empty for a swiped card
	Label  string // application label, for the slip
	Type   CardType
	// ICData is the field-55 TLV set of an online request (ARQC and friends),
	// hex encoded; empty for simulated or swiped cards and for a read
	// without a cryptogram (ReadCard).
	ICData string
	// ICReversal is field 55 of this transaction's reversal (95 9F1E 9F10
	// 9F36), hex; set with ICData.
	ICReversal string
	// IC is the chip's record of the first GENERATE AC (ARQC, TVR, ATC, UN,
	// AIP, CSN, CVM results) that the sale's record and slip start from;
	// nil without one.
	IC *ICData
	// Entry is how the card was read; the zero value means chip.
	Entry Entry
	// Track2 and Track3 are the swiped tracks, for the sale's fields 35/36
	// (encrypted under the TDK there); for a chip sale Track2 is the
	// track-2 equivalent (57) as track characters, for field 35. They
	// redact themselves in fmt, slog and JSON, and are dropped once the
	// sale has gone out.
	Track2, Track3 pan.Track
}

// Entry is how a card was read: it sets field 22 and 60.5 of the sale.
type Entry string

// Entry modes.
const (
	EntryChip     Entry = ""         // contact chip (EMV/PBOC)
	EntrySwipe    Entry = "swipe"    // magnetic stripe
	EntryFallback Entry = "fallback" // magnetic stripe after the chip failed on this card
	// EntryContactless is a card tapped on a contactless reader (qPBOC):
	// 07x in field 22, 6 in 60.4.
	EntryContactless Entry = "contactless"
)

// Merchant is the merchant's registration record as the acquirer holds it: the
// settlement account is known only by a keyed check value, never by its
// number.
type Merchant struct {
	MID         string `json:"mid"`
	Name        string `json:"name"`
	LegalPerson string `json:"legal_person"`
	AccountName string `json:"account_name,omitempty"` // name on the settlement account, when it differs from the legal person
	// AccountCheck is the settlement account's check value: 64 hex digits of
	// HMAC-SHA256 over the PAN's digits under the account-check key, which
	// only the acquirer and the terminal's key store hold (AccountChecker).
	// The checkpoint drops it once the card is bound (ForgetAccountCheck).
	AccountCheck string `json:"account_check,omitempty"`

	CardType CardType `json:"card_type"`
	// TestAmount is the test sale central asks for, in fen; zero leaves the
	// terminal's configured amount (Flow.Amount).
	TestAmount int64 `json:"test_amount,omitempty"`
}

// Terminal is the terminal's identity.
type Terminal struct {
	TID    string `json:"tid"`    // field 41, 8 digits
	MID    string `json:"mid"`    // field 42, 15 digits
	Serial string `json:"serial"` // device serial number
}

// CardRequest is what the flow asks a card source for: why (shown to the
// installer, one of the Purpose constants), and what the card must sign.
type CardRequest struct {
	Purpose string
	// Amount is the sale the card's cryptogram must cover, in fen: the test
	// sale's amount (central's ticket may set it), so that the ARQC covers
	// field 4 as the host checks it. Zero for a read that charges nothing
	// (binding, the void's card check): an inquiry.
	Amount int64
	// Apps are the IC parameters the acquirer downloaded, active: the chip
	// kernel selects with their AIDs and takes its application data from
	// them. Nil before the download: the kernel's own list.
	Apps []AppParams
	// CAPKs are the CA public keys the acquirer downloaded, active: offline
	// data authentication recovers the issuer's key with them.
	CAPKs []CAPK
}

// CardSource waits for a card and reads it.
type CardSource interface {
	// ReadCard reads the card without a cryptogram (the binding, the
	// void's card check): no GENERATE AC, so no ATC is spent and the
	// card's transaction state is left as it was.
	ReadCard(ctx context.Context, r CardRequest) (Card, error)
	// Pay reads the card for a purchase of r.Amount: cardholder
	// verification (the PIN pad when the card asks for online PIN) and the
	// first GENERATE AC, with the card session kept open for the Payment.
	Pay(ctx context.Context, r CardRequest) (Payment, error)
}

// Clock is the injected time source.
type Clock interface {
	Now() time.Time
}

// SystemClock is the wall clock.
type SystemClock struct{}

// Now returns time.Now().
func (SystemClock) Now() time.Time { return time.Now() }
