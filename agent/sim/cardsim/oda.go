package cardsim

import (
	"crypto/rand"
	"crypto/sha1"

	"github.com/posagent/posagent/agent/card/emv"
)

// The card's dynamic signatures: INTERNAL AUTHENTICATE (DDA), GENERATE AC
// with CDA, and qPBOC's GET PROCESSING OPTIONS with fDDA. The signature
// layouts are in pki.go; this file decides when the card signs what.

// idnLen is the ICC dynamic number's length (Book 2 Table 17: 2 to 8).
const idnLen = 8

func dynamicNumber() []byte {
	b := make([]byte, idnLen)
	rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return b
}

// internalAuthenticate answers INTERNAL AUTHENTICATE (00 88 00 00, data =
// the DDOL data; EMV Book 3 §6.5.9) with the signed dynamic application
// data of Book 2 §6.5.1: ICC dynamic data = IDN length || IDN (9F4C), the
// hash over the terminal's DDOL data. Format 1 (80) answers the SDAD bare,
// format 2 (77) in 9F4B, following the application's GPO format.
func (c *Card) internalAuthenticate(p1, p2 byte, data []byte) ([]byte, uint16) {
	if p1 != 0 || p2 != 0 {
		return nil, 0x6A86
	}
	if c.oda == nil || c.oda.key == nil || c.p.ODA.Method == ODAQPBOC {
		return nil, 0x6D00 // no DDA on this card
	}
	if c.app < 0 || !c.gpoDone {
		return nil, 0x6985
	}
	ddol, _ := unhex(c.p.ODA.DDOL)
	if len(data) != dolLen(ddol) {
		return nil, 0x6700
	}
	idn := dynamicNumber()
	sdad, err := SignDynamicData(c.oda.key, cat([]byte{byte(len(idn))}, idn), data)
	if err != nil {
		return nil, 0x6F00
	}
	if c.p.Applications[c.app].GPOFormat == 2 {
		return tlv("77", tlv("9F4B", sdad)), 0x9000
	}
	return tlv("80", sdad), 0x9000
}

// cdaRequested: the terminal set GENERATE AC P1 bit 5 ("CDA signature
// requested", Book 3 §6.5.5.2 Table 12), the card is a CDA card, and the
// cryptogram is a TC or ARQC — Book 2 §6.6.1 signs only those; an AAC goes
// back unsigned in format 1.
func (c *Card) cdaRequested(p1, cid byte) bool {
	return p1&0x10 != 0 && c.p.ODA != nil && c.p.ODA.Method == ODACDA && c.oda != nil &&
		c.oda.key != nil && cid&0xC0 != 0x00
}

// cdaAnswer is the GENERATE AC answer with CDA (Book 2 §6.6.1): format 2,
// 77 { 9F27 CID, 9F36 ATC, 9F4B SDAD, 9F10 IAD }, the cryptogram only
// inside the SDAD. ICC dynamic data (Table 18) = IDN length || IDN || CID
// || AC || transaction data hash code, where the hash code is SHA-1 over
// txData (the PDOL data, the CDOL1 data and, for the second GENERATE AC,
// the CDOL2 data) followed by the TLVs of this answer except 9F4B, in the
// order they are answered. The SDAD's own hash covers the unpredictable
// number 9F37 of the command's DOL data.
func (c *Card) cdaAnswer(cid byte, ac, iad, dol, dolData []byte, txData ...[]byte) ([]byte, uint16) {
	vals, err := dolValues(dol, dolData)
	if err != nil {
		return nil, 0x6700
	}
	un, ok := vals[0x9F37]
	if !ok {
		return nil, 0x6985 // CDA needs the terminal's unpredictable number
	}
	atc := []byte{byte(c.atc >> 8), byte(c.atc)}
	t27, t36, t10 := tlv("9F27", []byte{cid}), tlv("9F36", atc), tlv("9F10", iad)
	h := sha1.New()
	for _, d := range txData {
		h.Write(d)
	}
	h.Write(t27)
	h.Write(t36)
	h.Write(t10)
	idn := dynamicNumber()
	dyn := cat([]byte{byte(len(idn))}, idn, []byte{cid}, ac, h.Sum(nil))
	sdad, err := SignDynamicData(c.oda.key, dyn, un)
	if err != nil {
		return nil, 0x6F00
	}
	return tlv("77", cat(t27, t36, tlv("9F4B", sdad), t10)), 0x9000
}

// TTQ (9F66) bits the qPBOC card reads (EMV Book C-3 / PBOC 3.0 part 12).
const (
	ttqQPBOC          = 0x20 // byte 1 bit 6: qVSDC / qPBOC supported
	ttqOfflineOnly    = 0x08 // byte 1 bit 4: offline-only reader
	ttqOnlineRequired = 0x80 // byte 2 bit 8: online cryptogram required
	ttqFDDA01         = 0x80 // byte 4 bit 8: the reader supports fDDA version 01
)

// qpbocGPO is the contactless quick path: the card decides in GET
// PROCESSING OPTIONS and answers the cryptogram there, in format 2 with 82,
// 94, 9F36, 9F26, 9F27, 9F10 and the CTQ 9F6C (PROTOCOLS.md "qPBOC"; the
// public card simulator mrautio/emv-card-simulator answers its qVSDC GPO
// the same way and refuses a later GENERATE AC with 6985, as this card
// does).
//
// The reader's TTQ decides: a card allowed offline approves with a TC when
// the reader does not require an online cryptogram; a reader that does
// gets an ARQC; an offline-only reader that the card will not approve
// offline gets an AAC. The cryptogram is the card's ARQC over the PDOL
// values arranged as CDOL1 data (82 is the AIP, a CDOL1 object the PDOL
// lacks is zeros), so the host checks it as it checks a contact ARQC.
//
// An offline approval carries fDDA (JR/T 0025.12 Annex B "快速DDA"): 9F4B
// signed by the ICC key, the ATC as the ICC dynamic number. Which version
// the TTQ's byte 4 bit 8 says (a public PBOC 3.0 write-up, "EMV/PBOC之关于
// fDDA01算法", e-com-net.com/article/3810417.htm):
//   - fDDA 01: the signature covers 9F37 || 9F02 || 5F2A || 9F69, and the
//     card answers 9F69 (card authentication related data: version 01 ||
//     card unpredictable number (4) || CTQ (2)) in its records — the
//     profile lists 9F69 in its last record, as EMV Book C-3 places it;
//   - fDDA 00: the signature covers 9F37 only, and there is no 9F69.
//
// RfidResearchGroup/proxmark3 client/src/emv/emv_pki.c
// (emv_pki_recover_atc_ex) verifies version 01 with the same input and
// reads the dynamic number as the ATC.
func (c *Card) qpbocGPO(pdolData []byte) ([]byte, uint16) {
	a := c.p.Applications[c.app]
	pdol, _ := unhex(a.PDOL)
	vals, err := dolValues(pdol, pdolData)
	if err != nil {
		return nil, 0x6700
	}
	ttq := vals[0x9F66]
	if len(ttq) < 2 || ttq[0]&ttqQPBOC == 0 {
		return nil, 0x6985
	}
	aip := c.aip()
	cdol1, _ := unhex(a.CDOL1)
	entries, _ := emv.ParseDOL(cdol1)
	var acData []byte
	for _, e := range entries {
		v := make([]byte, e.Len)
		if e.Tag == 0x82 {
			copy(v, aip)
		} else if pv, ok := vals[e.Tag]; ok {
			copy(v, pv)
		}
		acData = append(acData, v...)
	}
	c.atc++
	cid := byte(0x80)
	switch {
	case c.blocked[c.app]:
		cid = 0x00
	case c.p.ODA.Offline && ttq[1]&ttqOnlineRequired == 0:
		cid = 0x40
	case ttq[0]&ttqOfflineOnly != 0:
		cid = 0x00
	}
	ac, err := ARQC(c.key, c.atc, acData)
	if err != nil {
		return nil, 0x6F00
	}
	c.tx.cdol1, c.tx.arqc, c.tx.phase = acData, ac, phaseDone
	// CVR byte 2: second GENERATE AC not requested (10), and what the GPO
	// returned in bits 6-5 (AAC 00, TC 01, ARQC 10).
	b2 := byte(0x80) | (cid>>6)<<4
	atc := []byte{byte(c.atc >> 8), byte(c.atc)}
	ctq := []byte{0x00, 0x00}
	resp := cat(tlv("82", aip), tlv("94", c.afl()), tlv("9F36", atc), tlv("9F26", ac),
		tlv("9F27", []byte{cid}), tlv("9F10", c.iad(b2)), tlv("9F6C", ctq))
	if cid == 0x40 && c.oda != nil && c.oda.key != nil {
		un, amt, cur := vals[0x9F37], vals[0x9F02], vals[0x5F2A]
		if un == nil {
			return nil, 0x6985 // fDDA needs the reader's unpredictable number
		}
		terminal := un
		if len(ttq) >= 4 && ttq[3]&ttqFDDA01 != 0 {
			if amt == nil || cur == nil {
				return nil, 0x6985 // fDDA 01 signs them: the PDOL must ask
			}
			cun := make([]byte, 4)
			rand.Read(cun)
			c.tx.card69 = cat([]byte{0x01}, cun, ctq)
			terminal = cat(un, amt, cur, c.tx.card69)
		}
		sdad, err := SignDynamicData(c.oda.key, cat([]byte{byte(len(atc))}, atc), terminal)
		if err != nil {
			return nil, 0x6F00
		}
		resp = cat(resp, tlv("9F4B", sdad))
	}
	return tlv("77", resp), 0x9000
}
