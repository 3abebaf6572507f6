package cardsim

import (
	"bytes"
	"crypto/subtle"
	"errors"
	"fmt"
	"strings"

	"github.com/posagent/posagent/agent/card/emv"
)

// Online completion on the card side: EXTERNAL AUTHENTICATE, the second
// GENERATE AC with CDOL2 data and the issuer script commands (EMV Book 3
// §6.5, §10.9-10.10; the PBOC debit/credit application follows them).

// Transaction phases.
const (
	phaseNone   = iota // no cryptogram yet since GET PROCESSING OPTIONS
	phaseOnline        // the first GENERATE AC returned an ARQC
	phaseDone          // a TC or AAC was returned: the transaction is over
)

// txn is what the card remembers of one transaction.
type txn struct {
	phase int
	arqc  []byte
	// extAuth: EXTERNAL AUTHENTICATE not received (0), passed (1), failed (2).
	extAuth int
	authARC []byte // the ARC that came authenticated in 91
	// iaFailed / iaMissing: issuer authentication failed, or was not
	// performed after an online authorisation (CVR byte 3 in the next one).
	iaFailed, iaMissing bool
	// scripts: script commands received after the second GENERATE AC;
	// scriptFailed: one of them (or one before it) was refused.
	scripts      int
	scriptFailed bool
	// pdol and cdol1 are the DOL data of GET PROCESSING OPTIONS and the
	// first GENERATE AC: CDA's transaction data hash covers them.
	pdol, cdol1 []byte
	// card69 is 9F69 of a qPBOC offline approval with fDDA 01, which the
	// card answers in its records until the next GET PROCESSING OPTIONS.
	card69 []byte
}

// startTxn begins a transaction (GET PROCESSING OPTIONS): the last one's
// issuer outcome moves to c.last for the CVR.
func (c *Card) startTxn() {
	c.endTxn()
	c.tx = txn{}
}

// endTxn keeps a transaction that did anything as "the last transaction".
func (c *Card) endTxn() {
	if c.tx.phase != phaseNone {
		c.last = c.tx
	}
	c.tx = txn{}
}

// aip is the application interchange profile: SDA, DDA, cardholder
// verification, terminal risk management and — for cards that authenticate
// the issuer with EXTERNAL AUTHENTICATE — issuer authentication (byte 1 bit
// 3, EMV Book 3 Annex C1: "Issuer authentication is supported", meaning the
// EXTERNAL AUTHENTICATE command). A card that takes 91 in its CDOL2 clears
// the bit: the terminal then sends 91 in the second GENERATE AC instead.
//
// A card with an oda section claims exactly its method in byte 1 (bit 7
// SDA, bit 6 DDA, bit 1 CDA; qPBOC's fDDA is the DDA bit, as qVSDC cards
// signal it), so a terminal that picks CDA > DDA > SDA lands on the
// method under test. A card without one carries no certificate and claims
// no method: a terminal records "offline data authentication not
// performed" for it, as for a real card without ODA.
func (c *Card) aip() []byte { return c.aipFor(c.app) }

func (c *Card) aipFor(app int) []byte {
	b := []byte{0x1C, 0x00}
	if c.p.Applications[app].IssuerAuth == IssuerAuthCDOL2 {
		b[0] = 0x18
	}
	if c.p.ODA != nil {
		b[0] &^= 0x61
		switch c.p.ODA.Method {
		case ODASDA:
			b[0] |= 0x40
		case ODADDA, ODAQPBOC:
			b[0] |= 0x20
		case ODACDA:
			b[0] |= 0x01
		}
	}
	return b
}

// iad is the PBOC issuer application data: length 07, derivation key index
// 01, cryptogram version 01, CVR (4 bytes: length 03, then bytes 2-4). b2 is
// CVR byte 2 (which cryptograms were returned); bytes 3 and 4 report the
// last transaction (the layout of a public PBOC template, "EMVTag系列16《AC
// 响应数据》", 796t.com/content/1547717779.html):
//   - byte 3 bit 4: issuer authentication failed in the last online one;
//     bit 3: issuer authentication not performed after online authorisation.
//   - byte 4 bits 8-5: issuer script commands with secure messaging received
//     after the last transaction's second GENERATE AC; bit 4: issuer script
//     processing failed in the last transaction.
func (c *Card) iad(b2 byte) []byte {
	var b3, b4 byte
	if c.last.iaFailed {
		b3 |= 0x08
	}
	if c.last.iaMissing {
		b3 |= 0x04
	}
	b4 = byte(min(c.last.scripts, 15)) << 4
	if c.last.scriptFailed {
		b4 |= 0x08
	}
	return []byte{0x07, 0x01, 0x01, 0x03, b2, b3, b4}
}

// approvedARC reports whether an authorisation response code approves: 00,
// and the approvals 10 (partial) and 11 (VIP) of the ISO 8583 code table.
// Y3/Z3 (unable to go online) and every decline do not.
func approvedARC(arc []byte) bool {
	switch string(arc) {
	case "00", "10", "11":
		return true
	}
	return false
}

// ErrCDOL is CDOL data that does not match the DOL.
var ErrCDOL = errors.New("cardsim: CDOL data does not match the DOL")

// dolValues splits data the terminal built from a DOL into its objects. The
// lengths must add up exactly (EMV Book 3 §5.4: the terminal pads or
// truncates every object to the DOL's length, so the card can cut blindly).
func dolValues(dol, data []byte) (map[emv.Tag][]byte, error) {
	entries, err := emv.ParseDOL(dol)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCDOL, err)
	}
	out := make(map[emv.Tag][]byte, len(entries))
	i := 0
	for _, e := range entries {
		if i+e.Len > len(data) {
			return nil, fmt.Errorf("%w: %v runs past the data", ErrCDOL, e.Tag)
		}
		if _, dup := out[e.Tag]; !dup {
			out[e.Tag] = data[i : i+e.Len]
		}
		i += e.Len
	}
	if i != len(data) {
		return nil, fmt.Errorf("%w: %d bytes left over", ErrCDOL, len(data)-i)
	}
	return out, nil
}

// externalAuthenticate checks 91 (ARPC || ARC) between the two GENERATE ACs.
// EMV Book 3 §6.5.4: only one per transaction (a second is 6985), 6300 when
// authentication fails. The 6300 is recalled from Book 3 and was not found
// in a public copy this round (unverified); a terminal treats any status
// other than 9000 as "issuer authentication failed" (Book 3 §10.9), so the
// exact code does not change its course.
func (c *Card) externalAuthenticate(p1, p2 byte, data []byte) uint16 {
	if p1 != 0 || p2 != 0 {
		return 0x6A86
	}
	if c.app < 0 || c.tx.phase != phaseOnline || c.tx.extAuth != 0 ||
		c.p.Applications[c.app].IssuerAuth == IssuerAuthCDOL2 {
		return 0x6985
	}
	if len(data) < 8 || len(data) > 16 {
		return 0x6700
	}
	if VerifyIssuerAuth(c.key, c.atc, c.tx.arqc, data) != nil {
		c.tx.extAuth = 2
		return 0x6300
	}
	c.tx.extAuth, c.tx.authARC = 1, append([]byte(nil), data[8:]...)
	return 0x9000
}

// secondAC completes an online transaction. The card answers a TC only when
// the terminal asks for one (P1 40), the authorisation response code
// approves, issuer authentication did not fail (and was performed, when the
// profile requires it), the application is not blocked and the profile's
// card risk rule does not decline after approval; otherwise an AAC. The ATC
// does not move: it counts transactions, not cryptograms.
func (c *Card) secondAC(p1 byte, data []byte) ([]byte, uint16) {
	a := c.p.Applications[c.app]
	cdol2, _ := unhex(a.CDOL2)
	vals, err := dolValues(cdol2, data)
	if err != nil {
		return nil, 0x6700
	}
	arc := vals[0x8A]
	performed, failed := c.tx.extAuth != 0, c.tx.extAuth == 2
	authARC := c.tx.authARC
	if d91, in := vals[0x91]; in && a.IssuerAuth == IssuerAuthCDOL2 {
		// A terminal without 91 from the host fills the slot with zeros
		// (EMV Book 3 §5.4): issuer authentication not performed.
		if !bytes.Equal(d91, make([]byte, len(d91))) {
			performed = true
			if VerifyIssuerAuth(c.key, c.atc, c.tx.arqc, d91) != nil {
				failed = true
			} else {
				authARC = d91[8:]
			}
		}
	}
	// An authenticated ARC the terminal contradicts in 8A is not an approval:
	// the card trusts what the issuer signed.
	arcOK := approvedARC(arc) && (authARC == nil || subtle.ConstantTimeCompare(authARC, arc) == 1)
	tc := p1&0xC0 == 0x40 && arcOK && !failed && (performed || !c.p.RequireIssuerAuth) &&
		!c.blocked[c.app] && !c.p.DeclineAfterApproval
	ac, err := ARQC(c.key, c.atc, data)
	if err != nil {
		return nil, 0x6F00
	}
	c.tx.phase = phaseDone
	// Y3/Z3: the terminal could not go online, so there was no online
	// authorisation whose issuer went unauthenticated.
	offline := string(arc) == "Y3" || string(arc) == "Z3"
	c.tx.iaFailed, c.tx.iaMissing = failed, !performed && !offline
	if approvedARC(arc) {
		c.lastOnline = c.atc
	}
	cid, b2 := byte(0x00), byte(0x20) // AAC; first GENERATE AC returned ARQC
	if tc {
		cid, b2 = 0x40, 0x60
	}
	if failed {
		b2 |= 0x08 // CVR byte 2 bit 4: issuer authentication performed and failed
	}
	if c.cdaRequested(p1, cid) {
		return c.cdaAnswer(cid, ac, c.iad(b2), cdol2, data, c.tx.pdol, c.tx.cdol1, data)
	}
	atc := []byte{byte(c.atc >> 8), byte(c.atc)}
	return tlv("80", cat([]byte{cid}, atc, ac, c.iad(b2))), 0x9000
}

// getData answers GET DATA for the counters a terminal or test reads (ATC
// 9F36, last online ATC register 9F13, PIN try counter 9F17) and for any
// object an issuer script put.
func (c *Card) getData(p1, p2 byte) ([]byte, uint16) {
	tag := fmt.Sprintf("%02X%02X", p1, p2)
	var v []byte
	switch tag {
	case "9F36":
		v = []byte{byte(c.atc >> 8), byte(c.atc)}
	case "9F13":
		v = []byte{byte(c.lastOnline >> 8), byte(c.lastOnline)}
	case "9F17":
		v = []byte{3}
	default:
		o, ok := c.objects[tag]
		if !ok {
			return nil, 0x6A88
		}
		v = o
	}
	return tlv(tag, v), 0x9000
}

// isScriptINS reports the issuer script commands the card knows: EMV Book 3
// §6.5 APPLICATION BLOCK (84 1E), APPLICATION UNBLOCK (84 18), CARD BLOCK
// (84 16), and the PBOC data updates UPDATE RECORD (04 DC) and PUT DATA
// (04 DA). CLA 8C/0C (enciphered data) is not supported.
func isScriptINS(cla, ins byte) bool {
	if cla == 0x84 {
		return ins == 0x1E || ins == 0x18 || ins == 0x16
	}
	return ins == 0xDC || ins == 0xDA
}

// script runs one issuer script command. Secure messaging first: the last
// ScriptMACLen bytes of the data are the MAC over header, ATC, ARQC and
// data (see ScriptMAC); a wrong one is 6988 (ISO 7816-4: incorrect secure
// messaging data objects) and changes nothing. Scripts need the ARQC of
// the transaction (6985 before the first GENERATE AC).
func (c *Card) script(apdu, data []byte) uint16 {
	if c.tx.phase == phaseNone || c.tx.arqc == nil {
		return 0x6985
	}
	if c.tx.phase == phaseDone {
		c.tx.scripts++
	}
	fail := func(s uint16) uint16 {
		c.tx.scriptFailed = true
		c.scriptsBad++
		return s
	}
	if len(data) < ScriptMACLen {
		return fail(0x6700)
	}
	plain, mac := data[:len(data)-ScriptMACLen], data[len(data)-ScriptMACLen:]
	want, err := ScriptMAC(c.macKey, c.atc, c.tx.arqc, apdu[:4], plain)
	if err != nil || subtle.ConstantTimeCompare(want, mac) != 1 {
		return fail(0x6988)
	}
	ins, p1, p2 := apdu[1], apdu[2], apdu[3]
	switch ins {
	case 0x1E: // APPLICATION BLOCK
		c.blocked[c.app] = true
	case 0x18: // APPLICATION UNBLOCK
		delete(c.blocked, c.app)
	case 0x16: // CARD BLOCK
		c.cardBlock = true
	case 0xDC: // UPDATE RECORD: P1 record, P2 SFI << 3 | 100
		sfi, n := int(p2>>3), int(p1)
		if p2&7 != 4 || !c.hasRecord(sfi, n) {
			return fail(0x6A83)
		}
		if len(plain) < 2 || plain[0] != 0x70 {
			return fail(0x6A80)
		}
		c.records[[2]int{sfi, n}] = append([]byte(nil), plain...)
	case 0xDA: // PUT DATA: P1 P2 the tag, data its new value
		if len(plain) == 0 {
			return fail(0x6A80)
		}
		c.objects[fmt.Sprintf("%02X%02X", p1, p2)] = append([]byte(nil), plain...)
	}
	c.scriptsOK++
	return 0x9000
}

func (c *Card) hasRecord(sfi, n int) bool {
	for _, r := range c.p.Records {
		if r.SFI == sfi && r.Record == n {
			return true
		}
	}
	return false
}

// Profile is the card's profile, validated and with its defaults filled
// in. It is the card's own: read it, do not change it.
func (c *Card) Profile() *Profile { return c.p }

// TraceEntry is one processed command: the fault step it counted as (empty
// for commands without one), CLA INS P1 P2, and the status word answered
// before faults. It carries no command data.
type TraceEntry struct {
	Step   string
	Header [4]byte
	SW     uint16
}

// traceLen bounds the trace: a cardsim that runs for days keeps the last
// commands only.
const traceLen = 512

func (c *Card) note(step string, apdu []byte, status uint16) {
	e := TraceEntry{Step: step, SW: status}
	copy(e.Header[:], apdu)
	if len(c.trace) == traceLen {
		c.trace = append(c.trace[:0], c.trace[1:]...)
	}
	c.trace = append(c.trace, e)
}

// Trace returns a copy of the last commands processed (at most 512).
func (c *Card) Trace() []TraceEntry {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]TraceEntry(nil), c.trace...)
}

// Steps is how many commands of a step (generate_ac, generate_ac2,
// external_authenticate, script …) the card processed since New.
func (c *Card) Steps(step string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.steps[step]
}

// ScriptResults is the card's count of issuer script commands executed and
// refused (bad MAC, bad data, out of order) since New.
func (c *Card) ScriptResults() (executed, refused int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.scriptsOK, c.scriptsBad
}

// Blocked reports whether an issuer script blocked the application with
// this AID (hex) or the whole card.
func (c *Card) Blocked(aid string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cardBlock {
		return true
	}
	for i, a := range c.p.Applications {
		if strings.EqualFold(a.AID, aid) {
			return c.blocked[i]
		}
	}
	return false
}
