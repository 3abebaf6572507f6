package inproc

import (
	"bytes"
	"crypto/hmac"
	"errors"
	"fmt"

	"github.com/posagent/posagent/agent/card/emv"
	"github.com/posagent/posagent/agent/sim/ledger"
	"github.com/posagent/posagent/provisioning"
	"github.com/posagent/posagent/provisioning/pan"
)

// The in-process host plays the issuer of the simulated chips (chip.go): it
// holds their keys, checks a chip sale's ARQC, answers an approval with an
// ARPC (91) and checks the TC of an upload against the sale it names.

// Response codes of the issuer's checks.
const (
	rcBadCryptogram = "05" // do not honour: the ARQC does not verify, or covers another amount
	rcNoOriginal    = "25" // the TC names no sale the host approved
)

var errCryptogram = errors.New("cryptogram does not verify")

// chipObjects are the objects of a simulated GENERATE AC's field 55 that
// its cryptogram covers.
type chipObjects struct {
	ac, cid, atc []byte
	data         acData
}

// parseChip takes field 55 (hex) apart; it fails when an object a
// cryptogram covers is missing.
func parseChip(field55 string) (chipObjects, error) {
	objs, err := decodeHex(field55)
	if err != nil {
		return chipObjects{}, err
	}
	get := func(t emv.Tag, n int) []byte {
		o, ok := emv.Find(objs, t)
		if !ok || (n > 0 && len(o.Value) != n) {
			err = fmt.Errorf("%w: %v missing or malformed", emv.ErrTLV, t)
			return nil
		}
		return o.Value
	}
	c := chipObjects{ac: get(0x9F26, 8), cid: get(0x9F27, 1), atc: get(0x9F36, 2)}
	c.data = acData{amount: get(0x9F02, 6), currency: get(0x5F2A, 2), tvr: get(0x95, 5), un: get(0x9F37, 4), aip: get(0x82, 2), atc: c.atc}
	if o, ok := emv.Find(objs, 0x8A); ok {
		c.data.arc = o.Value
	}
	return c, err
}

// verify checks the cryptogram under the card's key.
func (c chipObjects) verify(card pan.PAN) error {
	want := simCryptogram(cardKey(card.Reveal()), c.cid[0], c.data)
	if !hmac.Equal(c.ac, want) {
		return errCryptogram
	}
	return nil
}

// checkARQC is the issuer's check of a chip sale's first cryptogram: an
// ARQC that verifies under the card's key and covers the amount of the
// request. It returns the ARQC and the chip's ATC.
func checkARQC(r provisioning.SaleRequest) (arqc, atc []byte, err error) {
	c, err := parseChip(r.Card.ICData)
	if err != nil {
		return nil, nil, err
	}
	if c.cid[0] != cidARQC {
		return nil, nil, fmt.Errorf("cryptogram kind %02X, not an ARQC", c.cid[0])
	}
	if !bytes.Equal(c.data.amount, bcdAmount(r.Amount)) {
		return nil, nil, errors.New("the ARQC covers another amount")
	}
	if err := c.verify(r.Card.PAN); err != nil {
		return nil, nil, err
	}
	return c.ac, c.atc, nil
}

// issuerData is field 55 of an approval: the ARPC over arqc with the
// response code (91), corrupted when the host is told to, and one issuer
// script (72) when it is told to send one.
func (h *Host) issuerData(card pan.PAN, arqc []byte, rc string) []byte {
	arc := []byte(rc)
	arpc := simARPC(cardKey(card.Reveal()), arqc, arc)
	if h.BadARPC {
		arpc[0] ^= 0xFF
	}
	out := emv.EncodeTLV(nil, 0x91, append(arpc, arc...))
	if h.IssuerScript {
		// A PUT DATA of the card's consecutive-transaction limit, the kind
		// of update an issuer sends; the simulated card accepts any.
		cmd := []byte{0x04, 0xDA, 0x9F, 0x58, 0x05, 0x03, 0x00, 0x00, 0x00, 0x00}
		script := emv.EncodeTLV(nil, 0x9F18, []byte{0x00, 0x00, 0x00, 0x01})
		script = emv.EncodeTLV(script, 0x86, cmd)
		out = append(out, emv.EncodeTLV(nil, 0x72, script)...)
	}
	return out
}

// checkTC is the issuer's check of an uploaded TC: it must be a TC that
// verifies under the card's key (when the upload carries the card
// number), of the amount and ATC of the approved sale it names. h.mu is
// held. It returns the TC and its ATC, hex, for the ledger.
func (h *Host) checkTC(r provisioning.TCUpload) (tc, atc, rc string) {
	c, err := parseChip(r.Txn.IC.TC)
	if err != nil || c.cid[0] != cidTC {
		return "", "", rcFormat
	}
	tc, atc = emv.Hex(c.ac), emv.Hex(c.atc)
	if !r.Card.IsZero() && c.verify(r.Card) != nil {
		return tc, atc, rcBadCryptogram
	}
	for _, e := range h.ledger.Entries() {
		if e.Event == ledger.EventApproved && e.Kind == ledger.KindSale && e.TID == r.Terminal.TID && e.STAN == r.Txn.STAN &&
			e.Batch == r.Txn.Batch {
			if e.Amount != r.Txn.Amount || !bytes.Equal(c.data.amount, bcdAmount(e.Amount)) || (e.ATC != "" && e.ATC != atc) {
				return tc, atc, rcBadCryptogram
			}
			return tc, atc, "00"
		}
	}
	return tc, atc, rcNoOriginal
}

// rcFormat is a message the host cannot read (a TC upload without a TC).
const rcFormat = "30"

// reversalATC is the ATC (hex) of an IC reversal's field 55, "" when it
// has none or does not parse.
func reversalATC(field55 string) string {
	if field55 == "" {
		return ""
	}
	objs, err := decodeHex(field55)
	if err != nil {
		return ""
	}
	if o, ok := emv.Find(objs, 0x9F36); ok {
		return emv.Hex(o.Value)
	}
	return ""
}
