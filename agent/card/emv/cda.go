package emv

import (
	"bytes"
	"fmt"

	"github.com/posagent/posagent/agent/card/oda"
)

// Combined DDA/application cryptogram generation, the second half (EMV
// Book 2 §6.6, Book 3 §6.5.5 and §10.8): performODA recovered the ICC key;
// each GENERATE AC asking for a TC or an ARQC sets P1 bit 5, and the card
// answers format 2 with the cryptogram inside its signed dynamic
// application data 9F4B instead of in the clear.

// p1CDA is GENERATE AC P1 bit 5, "CDA signature requested" (Book 3
// §6.5.5.2, Table 12).
const p1CDA = 0x10

// cdaFields are the objects of a GENERATE AC answer that matter to CDA.
type cdaFields struct {
	format1 bool // an 80 template: no signature can be in it
	cid     byte
	atc     []byte
	ac      []byte // 9F26 in the clear, nil when absent (as CDA has it)
	iad     []byte
	sdad    []byte // 9F4B, nil when absent
}

// parseCDAFields decodes a GENERATE AC answer that may carry CDA: format 1
// (80, as parseAC reads it) or format 2 (77) where 9F26 is optional and
// 9F4B may be present. CID and ATC are required. It copies what it keeps.
func parseCDAFields(b []byte) (cdaFields, error) {
	objs, err := DecodeTLV(b)
	if err != nil || len(objs) != 1 {
		return cdaFields{}, fmt.Errorf("%w: response: %w", ErrCardData, errJoinTLV(err))
	}
	if objs[0].Tag == 0x80 {
		ac, err := parseAC(b)
		if err != nil {
			return cdaFields{}, err
		}
		return cdaFields{format1: true, cid: ac.cid, atc: ac.atc, ac: ac.ac, iad: ac.iad}, nil
	}
	if objs[0].Tag != 0x77 {
		return cdaFields{}, fmt.Errorf("%w: template %v", ErrCardData, objs[0].Tag)
	}
	get := func(t Tag) []byte {
		if o, ok := Find(objs[0].Children, t); ok {
			return bytes.Clone(o.Value)
		}
		return nil
	}
	f := cdaFields{atc: get(0x9F36), ac: get(0x9F26), iad: get(0x9F10), sdad: get(0x9F4B)}
	cid := get(0x9F27)
	if len(cid) != 1 || len(f.atc) != 2 || f.ac != nil && len(f.ac) != 8 {
		return cdaFields{}, fmt.Errorf("%w: no CID/ATC, or a malformed AC", ErrCardData)
	}
	f.cid = cid[0]
	return f, nil
}

// errJoinTLV is err, or ErrTLV when the decoder succeeded but the answer
// was not one object.
func errJoinTLV(err error) error {
	if err != nil {
		return err
	}
	return ErrTLV
}

// cdaAnswer checks the answer to a GENERATE AC that requested CDA.
// cdolData is the CDOL1 data (first GENERATE AC) or CDOL1 || CDOL2 data
// (second). An AAC may come unsigned (Book 2 §6.6.1 signs only a TC or an
// ARQC); a TC or ARQC must carry 9F4B, which is recovered with the ICC key
// over the unpredictable number and checked against the CID and the
// transaction data hash (oda.RecoverCDA over oda.CDATransactionData, Book 2
// §6.6.2). Verified, the AC is the signature's and the ICC dynamic number
// is kept (9F4C). Not verified — no signature, a bad one, a clear 9F26
// that contradicts it — sets "CDA failed" (TVR byte 1 bit 3, Book 3 §10.8,
// Annex C5), marks the answer, and drops the ICC key so that no later
// GENERATE AC asks for CDA again. Only malformed answers are errors.
func (s *session) cdaAnswer(raw, cdolData []byte) (acResponse, error) {
	f, err := parseCDAFields(raw)
	if err != nil {
		return acResponse{}, err
	}
	ac := acResponse{cid: f.cid, atc: f.atc, ac: f.ac, iad: f.iad}
	if f.cid&0xC0 == acAAC && f.sdad == nil {
		if f.ac == nil {
			return acResponse{}, fmt.Errorf("%w: AAC without a cryptogram", ErrCardData)
		}
		return ac, nil
	}
	verified, err := s.verifyCDA(f, raw, cdolData)
	if err != nil {
		s.tdata[0x95][0] |= tvrCDAFailed
		s.iccKey = nil
		ac.cdaFailed = true
		return ac, nil
	}
	ac.ac = verified.AC
	s.cdata[0x9F4C] = verified.ICCDynamicNumber
	return ac, nil
}

// verifyCDA is the signature check of cdaAnswer.
func (s *session) verifyCDA(f cdaFields, raw, cdolData []byte) (oda.CDA, error) {
	if f.format1 || f.sdad == nil {
		return oda.CDA{}, fmt.Errorf("%w: no signed dynamic application data", oda.ErrCDA)
	}
	txn, err := oda.CDATransactionData(s.pdolData, cdolData, raw)
	if err != nil {
		return oda.CDA{}, err
	}
	v, err := oda.RecoverCDA(*s.iccKey, f.sdad, s.tdata[0x9F37], f.cid, txn)
	if err != nil {
		return oda.CDA{}, err
	}
	if f.ac != nil && !bytes.Equal(f.ac, v.AC) {
		return oda.CDA{}, fmt.Errorf("%w: the clear AC differs from the signed one", oda.ErrCDA)
	}
	return v, nil
}
