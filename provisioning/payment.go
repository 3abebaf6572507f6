package provisioning

import (
	"context"
	"errors"

	"github.com/posagent/posagent/provisioning/pan"
)

// Payment is one card transaction the flow drives from the card's first
// cryptogram to its last (EMV Book 3 §10.9–10.11): the card source read the
// card, ran cardholder verification and the first GENERATE AC, and keeps the
// card session open until Complete has given the card the host's verdict.
// The flow sends Card() to the host, then calls Complete exactly once with
// whatever came back (or did not), and Close in every case.
type Payment interface {
	// Card is the card as read for the sale: for a chip, ICData is the
	// first GENERATE AC's field-55 set and ICReversal the objects its
	// reversal carries.
	Card() Card
	// PINBlock is the PIN the cardholder entered for an online-PIN CVM, a
	// clear ISO 9564 format-0 block for the message packer; nil when the
	// card asked for none. The flow puts it into the request and nowhere
	// else.
	PINBlock() PINBlock
	// Complete gives the card the host's verdict and returns the card's.
	// An error means the card did not finish (pulled out, mute): the flow
	// then treats an approval as not given by the card.
	Complete(ctx context.Context, v HostVerdict) (CardVerdict, error)
	// Close ends the card session; it may be called more than once, and
	// after Complete.
	Close() error
}

// HostVerdict is what the host's answer means for the card.
type HostVerdict struct {
	// Online is false when no answer counts (none arrived, it failed its
	// MAC, it did not match the request): the card is told the terminal
	// could not go online (authorisation response code Z3) and asked for
	// an AAC.
	Online bool
	// Approved is the money rule's verdict on an answer that counts.
	Approved bool
	// RC is field 39 of the answer: the card's authorisation response
	// code 8A.
	RC string
	// IssuerData is field 55 of the answer: issuer authentication data 91
	// and issuer scripts 71/72, raw BER-TLV; nil when the host sent none.
	IssuerData []byte
}

// CardVerdict is the card's answer to the host's verdict.
type CardVerdict struct {
	// Approved is true when the card accepted the transaction: a TC from
	// the second GENERATE AC, or, for a card without a chip session (a
	// swipe), the host's approval as it was.
	Approved bool
	// IC is the chip's record of the transaction; nil without a chip.
	IC *ICData
}

// ICData is the chip's record of one transaction: what the slip prints,
// what the IC reversal, the TC upload and the script-result notification
// carry. It holds no cardholder data (no PAN, no track), so it is kept
// plainly in the checkpoint; all values are hex.
type ICData struct {
	// ARQC is the first GENERATE AC's cryptogram; Cryptogram and CID the
	// second's (TC 40 or AAC 00), empty until the card completed.
	ARQC       string `json:"arqc,omitempty"`
	Cryptogram string `json:"cryptogram,omitempty"`
	CID        string `json:"cid,omitempty"`
	TVR        string `json:"tvr,omitempty"`
	TSI        string `json:"tsi,omitempty"`
	ATC        string `json:"atc,omitempty"`
	UN         string `json:"un,omitempty"`  // unpredictable number 9F37
	AIP        string `json:"aip,omitempty"` // 82
	CSN        string `json:"csn,omitempty"` // PAN sequence number 5F34, two digits
	CVM        string `json:"cvm,omitempty"` // CVM results 9F34
	// TC is field 55 of the TC upload at settlement: the second
	// GENERATE AC's objects with the terminal data they cover.
	TC string `json:"tc,omitempty"`
	// Reversal is field 55 of an IC reversal: 95 9F1E 9F10 9F36, and DF31
	// when issuer scripts ran.
	Reversal string `json:"reversal,omitempty"`
	// Scripts is the value of DF31 (without its tag and length), the
	// issuer script results: one 5-byte result per script (result and
	// sequence nibbles, script id); empty when none ran. A sale
	// with scripts has them notified at settlement (0620).
	Scripts string `json:"scripts,omitempty"`
	// IssuerAuth is the outcome of issuer authentication: "" not
	// performed, "ok", "failed".
	IssuerAuth string `json:"issuer_auth,omitempty"`
}

// Cryptogram kinds (the CID's top two bits).
const (
	CIDAAC  = "00"
	CIDTC   = "40"
	CIDARQC = "80"
)

// PINPad takes the cardholder's PIN for an online-PIN CVM. In the field it
// is a secure PIN pad; the demo and the tests use the keypad with a masked
// echo. The PIN never leaves it but as the returned block, which redacts
// itself everywhere but in the message packer.
type PINPad interface {
	// OnlinePIN asks for the PIN of card p for a sale of amount (fen) and
	// returns the clear ISO 9564 format-0 block. ErrPINBypassed when the
	// cardholder bypassed PIN entry (ENTER with no digits).
	OnlinePIN(ctx context.Context, r PINRequest) (PINBlock, error)
}

// PINRequest is what a PIN pad shows and binds the block to.
type PINRequest struct {
	PAN    pan.PAN
	Amount int64
}

// ErrPINBypassed is a PIN pad's answer when the cardholder bypassed PIN
// entry: the CVM failed, the card's CVM list says what follows.
var ErrPINBypassed = errors.New("provisioning: PIN entry bypassed")

// ErrPINCancelled is a PIN pad's answer when the cardholder cancelled PIN
// entry: the sale stops before anything is sent (E_PIN_CANCELLED).
var ErrPINCancelled error = pinCancelled{}

type pinCancelled struct{}

func (pinCancelled) Error() string       { return "provisioning: PIN entry cancelled" }
func (pinCancelled) FailureCode() string { return "E_PIN_CANCELLED" }

// ErrCardRemoved is what Payment.Complete wraps when the card left the
// reader before it finished the transaction.
var ErrCardRemoved = errors.New("provisioning: card removed before the transaction finished")

// NoChip is the Payment of a card read without a chip session (a swipe, a
// keyed or simulated card): Complete returns the host's approval as the
// card's, and the PIN block, if any, is the one given.
func NoChip(c Card, pin PINBlock) Payment { return &noChip{card: c, pin: pin} }

type noChip struct {
	card Card
	pin  PINBlock
}

func (n *noChip) Card() Card         { return n.card }
func (n *noChip) PINBlock() PINBlock { return n.pin }
func (n *noChip) Close() error       { return nil }
func (n *noChip) Complete(_ context.Context, v HostVerdict) (CardVerdict, error) {
	return CardVerdict{Approved: v.Online && v.Approved}, nil
}
