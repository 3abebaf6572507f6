package emv

import (
	"context"
	"errors"
	"time"

	"github.com/posagent/posagent/agent/card/oda"
	"github.com/posagent/posagent/drivers/cardreader"
)

// performODA runs method m (EMV Book 3 §10.3, Book 2 §5-6) with the
// package oda: the CA key the card names (8F, under the AID's RID) from
// the terminal's CAPKs, the issuer's key from its certificate, then for
// SDA the signed static data (93) over the records the AFL marks, for DDA
// the ICC's key and INTERNAL AUTHENTICATE's signed dynamic data over the
// DDOL data. An object the method needs that the card lacks is "ICC data
// missing" and the method failed; a CA key the terminal does not hold
// fails the method (Book 2 §5.2, §6.2). A card error during INTERNAL
// AUTHENTICATE other than its removal fails DDA; its removal ends the read.
//
// CDA here is its first half (Book 2 §6.6, Book 3 §10.3): the issuer and
// ICC keys are recovered as for DDA and the ICC key kept, but nothing is
// sent — the card signs inside its GENERATE AC answers (cda.go). A key
// that cannot be recovered is "CDA failed" now, and then no GENERATE AC
// asks for CDA (a PBOC 3.0 write-up of the same rule, "PBOC规范研究之十一
// ---复合动态数据认证", cnblogs.com/CQbk/p/9707792.html: an error found
// before terminal action analysis means CDA is not requested).
func (s *session) performODA(ctx context.Context, m odaMethod) (odaResult, error) {
	if m == odaNone {
		return odaResult{method: odaNone}, nil
	}
	res := odaResult{method: m}
	fail := func(missing bool) (odaResult, error) {
		res.failed, res.iccDataMissing = true, missing
		return res, nil
	}
	d := s.cdata
	aid := d[0x84]
	idx, ok := d[0x8F]
	if !ok || len(idx) != 1 || len(aid) < 5 {
		return fail(true)
	}
	for _, tag := range []Tag{0x90, 0x9F32} {
		if _, ok := d[tag]; !ok {
			return fail(true)
		}
	}
	now := time.Now()
	if s.term.Now != nil {
		now = s.term.Now()
	}
	capk, err := oda.FindCAPK(s.term.CAPKs, aid[:5], idx[0], now)
	if err != nil {
		return fail(false)
	}
	pan, _ := bcdToDigits(d[0x5A])
	issuer, err := oda.RecoverIssuerKey(capk, d[0x90], d[0x92], d[0x9F32], pan, now, s.term.Revoked)
	if err != nil {
		return fail(errors.Is(err, oda.ErrMissingData))
	}
	static, err := oda.StaticData(s.signed, d[0x9F4A], d[0x82])
	if err != nil {
		return fail(false)
	}
	if m == odaSDA {
		ssad, ok := d[0x93]
		if !ok {
			return fail(true)
		}
		dac, err := oda.VerifySDA(issuer, ssad, static)
		if err != nil {
			return fail(false)
		}
		s.cdata[0x9F45] = dac
		return res, nil
	}
	for _, tag := range []Tag{0x9F46, 0x9F47} {
		if _, ok := d[tag]; !ok {
			return fail(true)
		}
	}
	icc, err := oda.RecoverICCKey(issuer, d[0x9F46], d[0x9F48], d[0x9F47], static, pan, now)
	if err != nil {
		return fail(errors.Is(err, oda.ErrMissingData))
	}
	if m == odaCDA {
		s.iccKey = &icc
		return res, nil
	}
	if m == odaFDDA {
		sdad, ok := d[0x9F4B]
		if !ok {
			return fail(true)
		}
		if _, err := oda.VerifyFDDA(icc, sdad, s.fddaTerminalData()); err != nil {
			return fail(false)
		}
		return res, nil
	}
	ddolRaw, ok := d[0x9F49]
	if !ok {
		ddolRaw = s.risk().DefaultDDOL
	}
	ddol, err := ParseDOL(ddolRaw)
	if err != nil || len(ddol) == 0 {
		return fail(true)
	}
	data := fillDOL(ddol, s.tdata, s.cdata)
	r, err := s.exchange(ctx, "internal authenticate", cardreader.Command{INS: 0x88, Data: data, Ne: 256})
	if err != nil {
		if errors.Is(err, cardreader.ErrCardRemoved) {
			return res, err
		}
		return fail(false)
	}
	if !r.SW.OK() {
		return fail(false)
	}
	sdad, ok := signedDynamic(r.Data)
	if !ok {
		return fail(true)
	}
	dyn, err := oda.VerifyDDA(icc, sdad, data)
	if err != nil {
		return fail(false)
	}
	s.cdata[0x9F4C] = dyn
	return res, nil
}

// signedDynamic is the signed dynamic application data of an INTERNAL
// AUTHENTICATE answer: format 1 (80, the signature alone) or format 2 (77
// with 9F4B).
func signedDynamic(b []byte) ([]byte, bool) {
	objs, err := DecodeTLV(b)
	if err != nil || len(objs) != 1 {
		return nil, false
	}
	switch objs[0].Tag {
	case 0x80:
		return objs[0].Value, len(objs[0].Value) > 0
	case 0x77:
		if o, ok := Find(objs[0].Children, 0x9F4B); ok {
			return o.Value, len(o.Value) > 0
		}
	}
	return nil, false
}
