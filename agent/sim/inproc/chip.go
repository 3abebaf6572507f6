package inproc

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/posagent/posagent/agent/card/emv"
	"github.com/posagent/posagent/provisioning"
)

// The simulated chip's side of a sale (EMV Book 3 §10.9–10.11 in outline):
// the first GENERATE AC answers an ARQC, the host's verdict comes back,
// the card checks the issuer's ARPC (91) when the answer carries one, runs
// the issuer's scripts (71/72) and answers the second GENERATE AC with a
// TC or an AAC.
//
// The cryptograms are simulated, not EMV's: HMAC-SHA256 under a per-card
// key (cardKey) over the objects the card signs, truncated to 8 bytes,
// where a real card computes a 3DES or SM4 MAC under an ATC-derived
// session key. The in-process host derives the same key, as an issuer
// holds its cards' keys, so it can check the ARQC, answer an ARPC and
// check an uploaded TC. Nothing else about them is meant to be real.

// The chip's and its terminal's fixed data objects, as a UnionPay debit card
// on an attended online-only terminal in China has them.
var (
	simAIP = []byte{0x1C, 0x00} // 82: CVM, terminal risk management, issuer authentication; no ODA method (no certificates)
	// 9F33 and 9F35 are the terminal's own, as the kernel derives them
	// from its capability table: a simulated sale claims what a real one
	// on this terminal would.
	simTermCap  = emv.Capabilities.TerminalCapabilities()
	simTermType = emv.Capabilities.TerminalType()
	simCVM      = []byte{0x1E, 0x03, 0x00}    // 9F34: signature (on the slip), result unknown
	simAppVer   = []byte{0x00, 0x30}          // 9F09
	simIFD      = []byte("POSAGENT")          // 9F1E
	simTVR      = []byte{0x80, 0, 0, 0x80, 0} // 95: no offline data authentication performed; floor limit exceeded (an online-only terminal's limit is 0)
	simTSI      = []byte{0x68, 0x00}          // 9B: cardholder verification, card and terminal risk management performed
	cny         = []byte{0x01, 0x56}          // 5F2A and 9F1A: CNY, China
	zeroAmount  = []byte{0, 0, 0, 0, 0, 0}    // 9F03
	arcOffline  = []byte("Z3")                // 8A: unable to go online
)

// TSI and TVR bits the completion sets.
const (
	tsiIssuerAuth = 0x10 // TSI byte 1: issuer authentication was performed
	tsiScripts    = 0x04 // TSI byte 1: script processing was performed
	tvrIssuerAuth = 0x40 // TVR byte 5: issuer authentication failed
)

// Cryptogram information data (9F27).
const (
	cidAAC  = 0x00
	cidTC   = 0x40
	cidARQC = 0x80
)

// cardKey is the simulated chip's secret for card number digits; the
// in-process host derives it too (it plays the issuer).
func cardKey(digits string) []byte {
	k := sha256.Sum256([]byte("posagent inproc simulated card key\x00" + digits))
	return k[:]
}

// acData is what a simulated cryptogram covers: the amount and currency,
// the TVR, the terminal's unpredictable number, the AIP, the ATC and, for
// the second GENERATE AC, the authorisation response code. All but the
// ARC are fixed-length, and the ARC comes last, so the concatenation is
// unambiguous.
type acData struct {
	amount, currency, tvr, un, aip, atc, arc []byte
}

// simCryptogram is the simulated application cryptogram of kind cid.
func simCryptogram(key []byte, cid byte, d acData) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte{cid})
	for _, b := range [][]byte{d.amount, d.currency, d.tvr, d.un, d.aip, d.atc, d.arc} {
		m.Write(b)
	}
	return m.Sum(nil)[:8]
}

// simARPC is the issuer's answer to arqc with response code arc, as the
// card checks it (91 = ARPC || ARC, EMV's method 1 in layout only).
func simARPC(key, arqc, arc []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("ARPC"))
	m.Write(arqc)
	m.Write(arc)
	return m.Sum(nil)[:8]
}

// simUN is the terminal's unpredictable number (9F37). A real kernel draws
// it at random; the simulation derives it from the card number, the ATC
// and the amount, so that a run repeats byte for byte.
func simUN(digits string, atc uint16, amount int64) []byte {
	h := sha256.Sum256(fmt.Appendf(nil, "posagent inproc UN\x00%s\x00%d\x00%d", digits, atc, amount))
	return h[:4]
}

// bcdAmount is amount (fen) as format n 12: six BCD bytes.
func bcdAmount(amount int64) []byte {
	if amount < 0 || amount > 999999999999 {
		amount = 0
	}
	b := make([]byte, 6)
	for i := 5; i >= 0; i-- {
		b[i] = byte(amount%10) | byte(amount/10%10)<<4
		amount /= 100
	}
	return b
}

// bcdDate is t as 9A (YYMMDD, BCD).
func bcdDate(t time.Time) []byte {
	var b []byte
	for _, n := range []int{t.Year() % 100, int(t.Month()), t.Day()} {
		b = append(b, byte(n/10)<<4|byte(n%10))
	}
	return b
}

// iad is the issuer application data (9F10) in UnionPay's layout: length,
// derivation key index, cryptogram version, then the card verification
// results, whose second byte says which cryptograms the card returned
// (first AC: ARQC, second: not requested, TC or AAC).
func iad(cvr byte) []byte {
	return []byte{0x07, 0x01, 0x01, 0x03, cvr, 0x00, 0x00, 0x01, 0x0A, 0x01, 0, 0, 0, 0, 0, 0, 0}
}

// CVR byte 2 values: bits 8-7 the second AC's kind, bits 6-5 the first's.
const (
	cvrARQC     = 0xA0 // first ARQC, second not requested
	cvrARQCTC   = 0x60 // first ARQC, second TC
	cvrARQCAAC  = 0x20 // first ARQC, second AAC
	scriptsDone = 0x20 // issuer script result: processed successfully (high nibble 2)
)

// tlvSet encodes the objects in order; an absent one is left out.
type tlvSet []struct {
	tag emv.Tag
	v   []byte
}

func (s tlvSet) hex() string {
	var b []byte
	for _, o := range s {
		if o.v != nil {
			b = emv.EncodeTLV(b, o.tag, o.v)
		}
	}
	return emv.Hex(b)
}

// chipPayment is one sale on a simulated chip, from its ARQC to its TC or
// AAC.
type chipPayment struct {
	slot    *Card
	profile Profile
	card    provisioning.Card
	key     []byte
	date    []byte
	amount  []byte
	un      []byte
	atc     []byte
	arqc    []byte

	mu        sync.Mutex
	completed bool
	closed    bool
}

var _ provisioning.Payment = (*chipPayment)(nil)

func newChipPayment(slot *Card, p Profile, card provisioning.Card, amount int64, atc uint16, now time.Time) *chipPayment {
	digits := card.PAN.Reveal()
	c := &chipPayment{slot: slot, profile: p, card: card, key: cardKey(digits), date: bcdDate(now), amount: bcdAmount(amount),
		un: simUN(digits, atc, amount), atc: binary.BigEndian.AppendUint16(nil, atc)}
	c.arqc = simCryptogram(c.key, cidARQC, c.acData(simTVR, nil))
	first := c.objects(c.arqc, cidARQC, simTVR, cvrARQC, nil)
	c.card.ICData = first.hex()
	c.card.ICReversal = reversalSet(simTVR, iad(cvrARQC), c.atc, nil).hex()
	c.card.IC = &provisioning.ICData{
		ARQC: emv.Hex(c.arqc), TVR: emv.Hex(simTVR), TSI: emv.Hex(simTSI), ATC: emv.Hex(c.atc), UN: emv.Hex(c.un),
		AIP: emv.Hex(simAIP), CSN: p.Seq, CVM: emv.Hex(simCVM), Reversal: c.card.ICReversal,
	}
	return c
}

func (c *chipPayment) acData(tvr, arc []byte) acData {
	return acData{amount: c.amount, currency: cny, tvr: tvr, un: c.un, aip: simAIP, atc: c.atc, arc: arc}
}

// objects is the field-55 set of one GENERATE AC's answer with the
// terminal data it covers: the online request's for the first (arc nil),
// the TC upload's for the second (with the ARC, 8A).
func (c *chipPayment) objects(ac []byte, cid byte, tvr []byte, cvr byte, arc []byte) tlvSet {
	return tlvSet{
		{0x9F26, ac}, {0x9F27, []byte{cid}}, {0x9F10, iad(cvr)}, {0x9F37, c.un}, {0x9F36, c.atc}, {0x95, tvr},
		{0x9A, c.date}, {0x9C, []byte{0x00}}, {0x9F02, c.amount}, {0x5F2A, cny}, {0x82, simAIP}, {0x9F1A, cny},
		{0x9F03, zeroAmount}, {0x9F33, simTermCap}, {0x9F34, simCVM}, {0x9F35, []byte{simTermType}}, {0x9F1E, simIFD},
		{0x84, aidBytes(c.card.AID)}, {0x9F09, simAppVer}, {0x8A, arc},
	}
}

// reversalSet is field 55 of an IC reversal: 95 9F1E 9F10 9F36, and DF31
// when scripts ran.
func reversalSet(tvr, iad, atc, scripts []byte) tlvSet {
	return tlvSet{{0x95, tvr}, {0x9F1E, simIFD}, {0x9F10, iad}, {0x9F36, atc}, {0xDF31, scripts}}
}

// aidBytes is the card's AID as 84 carries it; nil (84 left out) for one
// that is not hex.
func aidBytes(aid string) []byte {
	b, err := hex.DecodeString(aid)
	if err != nil || len(b) == 0 {
		return nil
	}
	return b
}

// Card is the card as read for the sale, with the first GENERATE AC's IC
// data; each call returns its own copy of the IC record.
func (c *chipPayment) Card() provisioning.Card {
	card := c.card
	ic := *c.card.IC
	card.IC = &ic
	return card
}

// PINBlock is nil: the simulated card's CVM is the signature.
func (c *chipPayment) PINBlock() provisioning.PINBlock { return nil }

// Close ends the card session.
func (c *chipPayment) Close() error {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	return nil
}

// errCompleted is a second Complete: a card answers one second GENERATE
// AC per transaction.
var errCompleted = errors.New("sim card: transaction already completed")

// Complete gives the chip the host's verdict. It pauses at
// "card.second-ac" before the card answers. An approval that counts
// (v.Online and v.Approved) asks for a TC, which the card gives unless its
// profile declines after approval or the issuer's ARPC (91) does not
// verify; anything else asks for an AAC, with the response code Z3 ("unable
// to go online") when no answer counts. An approval without issuer data
// (a host that sends no 91) is taken as it is: issuer authentication is
// then not performed, which this card does not hold against the sale. A
// card profiled as removed mid-sale returns an error wrapping
// provisioning.ErrCardRemoved; a second Complete, or one after Close, an
// error that reaches no card.
func (c *chipPayment) Complete(ctx context.Context, v provisioning.HostVerdict) (provisioning.CardVerdict, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.completed:
		return provisioning.CardVerdict{}, errCompleted
	case c.closed:
		return provisioning.CardVerdict{}, errors.New("sim card: session closed before the second GENERATE AC")
	}
	c.completed = true
	c.slot.Pauses.Point(ctx, "card.second-ac")
	if err := ctx.Err(); err != nil {
		return provisioning.CardVerdict{}, fmt.Errorf("sim card: second GENERATE AC: %w", err)
	}
	if c.profile.RemovedMidSale {
		return provisioning.CardVerdict{}, fmt.Errorf("sim card: second GENERATE AC: %w", provisioning.ErrCardRemoved)
	}
	tvr := bytes.Clone(simTVR)
	tsi := bytes.Clone(simTSI)
	ic := *c.card.IC
	arc := arcOffline
	if v.Online {
		arc = []byte(fmt.Sprintf("%-2.2s", v.RC))
	}
	var scripts []byte
	if v.Online && len(v.IssuerData) > 0 {
		objs, err := emv.DecodeTLV(v.IssuerData)
		if err != nil {
			// The kernel cannot use what it cannot parse: no issuer
			// authentication, no scripts; the card decides on the rest.
			objs = nil
		}
		if d91, ok := emv.Find(objs, 0x91); ok {
			tsi[0] |= tsiIssuerAuth
			ic.IssuerAuth = "ok"
			if len(d91.Value) < 10 || !hmac.Equal(d91.Value[:8], simARPC(c.key, c.arqc, d91.Value[8:10])) {
				ic.IssuerAuth = "failed"
				tvr[4] |= tvrIssuerAuth
			}
		}
		scripts = runScripts(objs)
		if scripts != nil {
			tsi[0] |= tsiScripts
		}
	}
	cid, cvr := byte(cidAAC), byte(cvrARQCAAC)
	if v.Online && v.Approved && !c.profile.DeclineAfterApproval && ic.IssuerAuth != "failed" {
		cid, cvr = cidTC, cvrARQCTC
	}
	ac := simCryptogram(c.key, cid, c.acData(tvr, arc))
	c.slot.mu.Lock()
	c.slot.second++
	c.slot.mu.Unlock()

	ic.Cryptogram, ic.CID = emv.Hex(ac), emv.Hex([]byte{cid})
	ic.TVR, ic.TSI = emv.Hex(tvr), emv.Hex(tsi)
	ic.TC = c.objects(ac, cid, tvr, cvr, arc).hex()
	ic.Reversal = reversalSet(tvr, iad(cvr), c.atc, scripts).hex()
	ic.Scripts = emv.Hex(scripts)
	return provisioning.CardVerdict{Approved: cid == cidTC, IC: &ic}, nil
}

// runScripts "runs" the issuer scripts (71 before, 72 after the second
// GENERATE AC) of the host's answer: the simulated card accepts every
// command, and answers DF31, one 5-byte result per script (processed
// successfully, then the script's identifier 9F18, zeros without one);
// nil when the answer had none.
func runScripts(objs []emv.TLV) []byte {
	var out []byte
	for _, o := range objs {
		if o.Tag != 0x71 && o.Tag != 0x72 {
			continue
		}
		id := make([]byte, 4)
		if s, ok := emv.Find(o.Children, 0x9F18); ok && len(s.Value) == 4 {
			copy(id, s.Value)
		}
		out = append(out, scriptsDone)
		out = append(out, id...)
	}
	return out
}

// decodeHex is a field-55 hex string as TLV objects.
func decodeHex(s string) ([]emv.TLV, error) {
	b, err := hex.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("%w: not hex", emv.ErrTLV)
	}
	return emv.DecodeTLV(b)
}
