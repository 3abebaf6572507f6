package cardsim

import (
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/posagent/posagent/agent/card/emv"
)

// ErrARQC is a cryptogram that does not verify.
var ErrARQC = errors.New("cardsim: ARQC does not verify")

// VerifyField55 checks the ARQC of a sale's field 55 (hex TLV) the way an
// issuer host would for a card built from a profile: it rebuilds the CDOL1
// data from the field-55 objects in CDOL1 order (cdol1 is the DOL, hex; empty
// means DefaultCDOL1) and recomputes ARQC with master key mk and the ATC 9F36.
// The host simulator calls this; the error names tags, never values.
func VerifyField55(mk []byte, cdol1, field55 string) error {
	if cdol1 == "" {
		cdol1 = DefaultCDOL1
	}
	dolBytes, err := hex.DecodeString(cdol1)
	if err != nil {
		return fmt.Errorf("cardsim: CDOL1: %w", err)
	}
	dol, err := emv.ParseDOL(dolBytes)
	if err != nil {
		return fmt.Errorf("cardsim: CDOL1: %w", err)
	}
	raw, err := hex.DecodeString(field55)
	if err != nil {
		return fmt.Errorf("cardsim: field 55: %w", err)
	}
	objs, err := emv.DecodeTLV(raw)
	if err != nil {
		return fmt.Errorf("cardsim: field 55: %w", err)
	}
	get := func(t emv.Tag) ([]byte, error) {
		o, ok := emv.Find(objs, t)
		if !ok {
			return nil, fmt.Errorf("cardsim: field 55 lacks %v", t)
		}
		return o.Value, nil
	}
	var data []byte
	for _, e := range dol {
		v, err := get(e.Tag)
		if err != nil {
			return err
		}
		if len(v) != e.Len {
			return fmt.Errorf("cardsim: field 55 %v is %d bytes, CDOL1 says %d", e.Tag, len(v), e.Len)
		}
		data = append(data, v...)
	}
	atc, err := get(0x9F36)
	if err != nil {
		return err
	}
	ac, err := get(0x9F26)
	if err != nil {
		return err
	}
	if len(atc) != 2 {
		return fmt.Errorf("cardsim: ATC 9F36 is %d bytes", len(atc))
	}
	want, err := ARQC(mk, uint16(atc[0])<<8|uint16(atc[1]), data)
	if err != nil {
		return err
	}
	if subtle.ConstantTimeCompare(want, ac) != 1 {
		return ErrARQC
	}
	return nil
}
