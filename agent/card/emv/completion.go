package emv

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/posagent/posagent/drivers/cardreader"
	"github.com/posagent/posagent/provisioning"
	"github.com/posagent/posagent/provisioning/pan"
)

// Online completion (EMV Book 3 §10.9–10.11): the card session stays open
// from the first GENERATE AC through the host's answer to the second.

// ErrCompleted is Complete called a second time, or after Close: the card
// has already been given its verdict (or the session is gone), and nothing
// is sent to it.
var ErrCompleted = errors.New("emv: payment already completed or closed")

// TVR byte 5 (index 4) and TSI byte 1 bits of online completion.
const (
	tvrIssuerAuthFailed   = 0x40 // issuer authentication failed
	tvrScriptFailedBefore = 0x20 // script processing failed before final GENERATE AC
	tvrScriptFailedAfter  = 0x10 // script processing failed after final GENERATE AC
	tsiIssuerAuth         = 0x10 // issuer authentication was performed
	tsiScripts            = 0x04 // script processing was performed
)

// reversalTags are field 55 of an IC reversal (PROTOCOLS.md §1), DF31
// added when scripts ran.
var reversalTags = []Tag{0x95, 0x9F1E, 0x9F10, 0x9F36}

// Payment is a chip card between its first cryptogram and its last: what
// StartPayment leaves for the flow to send online and complete. It owns
// the card connection and closes it in Close. Its methods are safe for
// concurrent use.
type Payment struct {
	mu        sync.Mutex
	s         *session
	card      cardreader.Card // the connection Close closes
	res       Result
	first     provisioning.Card // Card(): the card as of the first GENERATE AC
	pin       provisioning.PINBlock
	arqc      []byte
	ic        provisioning.ICData // the record as it stands
	completed bool
	closed    bool
	// contactless: a qPBOC payment, whose card took no part after its GPO
	// answer (Complete sends it nothing).
	contactless bool
	closeErr    error
	issuerErr   error
}

var _ provisioning.Payment = (*Payment)(nil)

// StartPayment reads card for the purchase txn; with term.Contactless it
// is a qPBOC payment (contactless.go): PPSE, GPO with the TTQ, records,
// the GPO's ARQC, the CVM the card's CTQ asks for, and no GENERATE AC.
// Otherwise it runs offline data
// authentication and processing restrictions, cardholder verification
// (online PIN through pad; nil means the terminal has no PIN pad),
// terminal risk management and terminal action analysis, and sends the
// first GENERATE AC: an ARQC asked for, an AAC when the card's or the
// acquirer's denial codes match the TVR. An AAC is ErrDeclined.
// On success the Payment owns card and closes it; on error card is left to
// the caller, as Read leaves it.
func StartPayment(ctx context.Context, card cardreader.Card, term Terminal, txn Transaction, pad provisioning.PINPad) (*Payment, error) {
	s, err := newSession(card, term, txn)
	if err != nil {
		return nil, err
	}
	if err := s.readApp(ctx); err != nil {
		return nil, err
	}
	res, err := s.result()
	if err != nil {
		return nil, err
	}
	req := provisioning.PINRequest{PAN: res.PAN, Amount: txn.Amount}
	var pin provisioning.PINBlock
	if s.term.Contactless {
		// qPBOC: the cryptogram came with the GPO (contactless.go).
		if pin, err = s.contactless(ctx, pad, req); err != nil {
			return nil, err
		}
	} else {
		if err := s.oda(ctx); err != nil {
			return nil, err
		}
		s.restrictions()
		if pin, err = s.verifyCardholder(ctx, pad, req); err != nil {
			return nil, fmt.Errorf("emv: cardholder verification: %w", err)
		}
		s.done("cvm")
		if err := s.firstAC(ctx); err != nil {
			return nil, err
		}
	}
	res.ICData = Hex(s.field55())
	res.Transmissions = s.card.n
	p := &Payment{s: s, card: card, res: res, pin: pin, arqc: append([]byte(nil), s.cdata[0x9F26]...),
		contactless: s.term.Contactless}
	p.ic = provisioning.ICData{
		ARQC: Hex(p.arqc),
		ATC:  Hex(s.cdata[0x9F36]),
		UN:   Hex(s.tdata[0x9F37]),
		AIP:  Hex(s.cdata[0x82]),
		CSN:  res.Seq,
	}
	p.snapshot()
	first := p.ic
	p.first = res.Card()
	// A contactless read is entry mode 07x and 60.4 = 6 (PROTOCOLS.md
	// "qPBOC").
	p.first.Entry = provisioning.EntryChip
	if p.contactless {
		p.first.Entry = provisioning.EntryContactless
	}
	p.first.ICReversal = Hex(s.tlvList(reversalTags))
	p.first.IC = &first
	if d, ok := track2Digits(res.Track2.b); ok && d != "" {
		// Field 35 of a chip sale is the track-2 equivalent in track
		// characters, the separator D written as '=' as a swipe reads it.
		p.first.Track2 = pan.NewTrack(strings.Replace(d, "D", "=", 1))
	}
	p.res.Track2.Wipe() // the Card's pan.Track is the only copy kept
	return p, nil
}

// snapshot copies the TVR, TSI and CVM results into the record.
func (p *Payment) snapshot() {
	p.ic.TVR, p.ic.TSI, p.ic.CVM = Hex(p.s.tdata[0x95]), Hex(p.s.tdata[0x9B]), Hex(p.s.tdata[0x9F34])
}

// Card is the card for the sale: field 55 of the request, the reversal's
// objects, the chip record of the first GENERATE AC and the track-2
// equivalent for field 35. It says the same before and after Complete.
func (p *Payment) Card() provisioning.Card {
	c := p.first
	ic := *c.IC
	c.IC = &ic
	return c
}

// PINBlock is the block the PIN pad gave for online PIN, nil otherwise.
func (p *Payment) PINBlock() provisioning.PINBlock { return p.pin }

// IssuerDataError is why the host's issuer data was refused by the last
// Complete (nil when it parsed or there was none): the card was completed
// as if the host had sent no issuer data.
func (p *Payment) IssuerDataError() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.issuerErr
}

// Close ends the card session, once; it sends nothing to the card, so a
// Payment closed without Complete leaves the card without its second
// GENERATE AC (the card treats the transaction as not completed).
func (p *Payment) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.closed {
		p.closed = true
		p.closeErr = p.card.Close()
		// The sale that needed the PIN block is over: it lives no longer
		// than the card session (PCI: no PIN block kept, even in memory).
		for i := range p.pin {
			p.pin[i] = 0
		}
		p.pin = nil
	}
	return p.closeErr
}

// Complete gives the card the host's verdict: issuer authentication, the
// 71 scripts, the second GENERATE AC (TC asked for when the host approved
// online, else AAC) and the 72 scripts. The verdict's IC is the complete
// chip record. An error means the card did not finish (it wraps
// provisioning.ErrCardRemoved and the transport error when the card was
// pulled out); the verdict then carries the record as far as it got. A
// verdict that is not Online ignores whatever issuer data came with it:
// nothing is authenticated and no script runs. A second call, or a call
// after Close, is ErrCompleted and sends nothing. A contactless payment
// sends the card nothing at all (completeContactless).
func (p *Payment) Complete(ctx context.Context, v provisioning.HostVerdict) (provisioning.CardVerdict, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.completed || p.closed {
		return provisioning.CardVerdict{}, ErrCompleted
	}
	p.completed = true
	approved, err := p.complete(ctx, v)
	p.snapshot()
	ic := p.ic
	if err != nil {
		if errors.Is(err, cardreader.ErrCardRemoved) {
			err = fmt.Errorf("%w: %w", provisioning.ErrCardRemoved, err)
		}
		return provisioning.CardVerdict{IC: &ic}, err
	}
	return provisioning.CardVerdict{Approved: approved, IC: &ic}, nil
}

func (p *Payment) complete(ctx context.Context, v provisioning.HostVerdict) (bool, error) {
	s := p.s
	if p.contactless {
		return p.completeContactless(v), nil
	}
	var results []byte // DF31, one 5-byte result per script run
	defer func() {
		// However far the card got, the reversal carries its latest
		// objects, and the script results when scripts ran.
		tags := reversalTags
		if results != nil {
			s.tdata[0xDF31] = results
			p.ic.Scripts = Hex(results)
			tags = append(append([]Tag(nil), reversalTags...), 0xDF31)
		}
		p.ic.Reversal = Hex(s.tlvList(tags))
	}()
	var ir IssuerResponse
	if v.Online {
		var err error
		if ir, err = ParseIssuerResponse(v.IssuerData); err != nil {
			p.issuerErr, ir = err, IssuerResponse{}
		}
	}
	arc := []byte("Z3") // unable to go online
	if v.Online {
		arc = []byte(v.RC)
	}
	extra := map[Tag][]byte{0x8A: arc}
	tvr, tsi := s.tdata[0x95], s.tdata[0x9B]
	if ir.Auth != nil {
		aip := s.cdata[0x82]
		if len(aip) > 0 && aip[0]&0x04 != 0 {
			// AIP byte 1 bit 3: the card authenticates the issuer with
			// EXTERNAL AUTHENTICATE.
			r, err := s.exchange(ctx, "external authenticate",
				cardreader.Command{INS: 0x82, Data: ir.Auth})
			if err != nil {
				return false, err
			}
			tsi[0] |= tsiIssuerAuth
			p.ic.IssuerAuth = "ok"
			if !r.SW.OK() {
				tvr[4] |= tvrIssuerAuthFailed
				p.ic.IssuerAuth = "failed"
			}
		} else {
			// The card checks 91 inside the second GENERATE AC, if its
			// CDOL2 asks for it; without 91 from the host the DOL's slot
			// stays zeros.
			extra[0x91] = ir.Auth
		}
	}
	run := func(tmpl Tag, failBit byte) error {
		for _, sc := range ir.Scripts {
			if sc.Template != tmpl {
				continue
			}
			r, err := p.runScript(ctx, sc)
			if err != nil {
				return err
			}
			if r[0]&0xF0 == 0x10 {
				tvr[4] |= failBit
			}
			results = append(results, r...)
		}
		return nil
	}
	if err := run(0x71, tvrScriptFailedBefore); err != nil {
		return false, err
	}
	p1 := byte(0x00) // AAC
	if v.Online && v.Approved {
		p1 = 0x40 // TC
	}
	ac, err := s.genAC(ctx, "second generate AC", 0x8D, p1, extra)
	if err != nil {
		return false, err
	}
	cid := ac.cid & 0xC0
	if cid == 0x80 || cid == 0x40 && p1 == 0x00 {
		// A card may answer with less than was asked, never more: an
		// ARQC now, or a TC when the terminal declined, is no verdict.
		return false, fmt.Errorf("%w: second generate AC answered CID %02X to P1 %02X", ErrCardData, ac.cid, p1)
	}
	if cid == 0x40 && ac.cdaFailed {
		// A TC whose CDA signature does not verify is no approval: the
		// terminal treats the answer as an AAC (the rule of EMV Book 2
		// §6.6.2 and Book 3 §10.8, paraphrased: with CDA failed the card's
		// TC is not accepted and the transaction is declined; the PBOC
		// write-up cited at performODA has it as "终端应脱机拒绝交易"). The
		// flow then reverses the host's approval as for a card that
		// declined.
		cid = 0x00
	}
	s.setAC(ac)
	p.ic.Cryptogram, p.ic.CID, p.ic.ATC = Hex(ac.ac), Hex([]byte{cid}), Hex(ac.atc)
	if err := run(0x72, tvrScriptFailedAfter); err != nil {
		return false, err
	}
	p.ic.TC = Hex(s.field55())
	return cid == 0x40, nil
}

// completeContactless is Complete for a qPBOC payment. There is no second
// GENERATE AC (the card decided at its GPO and has left the field), so
// issuer authentication and scripts are not run and any issuer data is
// ignored: approval is the host's, v.Online && v.Approved. The record
// keeps the GPO's ARQC as its cryptogram (CID 80); TC stays empty, as
// there is no TC to upload at settlement.
func (p *Payment) completeContactless(v provisioning.HostVerdict) bool {
	p.ic.Cryptogram, p.ic.CID = p.ic.ARQC, provisioning.CIDARQC
	p.ic.Reversal = Hex(p.s.tlvList(reversalTags))
	return v.Online && v.Approved
}

// runScript sends one script's commands in order and returns its 5-byte
// issuer script result. A command answered with anything but 9000, 62XX
// or 63XX fails the script and the rest of it is not sent (Book 3 §10.10).
// Result layout (byte 1: high nibble 0 not performed, 1 failed, 2
// successful; low nibble the failing command's sequence number, 1-E, F for
// 15 and above, 0 when none; bytes 2-5 the script id, zeros when absent):
// EMV Book 4 Annex A, as a public PBOC 2.0 level-2 kernel (SymLink,
// PBOC20_2.C, apk_IssuerScriptProcessing) documents and implements it.
func (p *Payment) runScript(ctx context.Context, sc Script) ([]byte, error) {
	res := make([]byte, 5)
	copy(res[1:], sc.ID)
	if len(sc.Commands) == 0 {
		return res, nil
	}
	p.s.tdata[0x9B][0] |= tsiScripts
	res[0] = 0x20
	for i, raw := range sc.Commands {
		cmd, err := ParseScriptCommand(raw)
		if err != nil { // ParseIssuerResponse let it through: cannot happen
			res[0] = 0x10 | byte(min(i+1, 15))
			return res, nil
		}
		r, err := p.s.exchange(ctx, fmt.Sprintf("issuer script command %d", i+1), cmd)
		if err != nil {
			return nil, err
		}
		if !r.SW.OK() && !r.SW.Warning() {
			res[0] = 0x10 | byte(min(i+1, 15))
			return res, nil
		}
	}
	return res, nil
}
