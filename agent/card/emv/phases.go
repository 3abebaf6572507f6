package emv

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/posagent/posagent/drivers/cardreader"
)

// The terminal's phases between reading the card and its first cryptogram
// (EMV 4.3 Book 3 §10.3-10.7): offline data authentication, processing
// restrictions, (cardholder verification, cvm.go,) terminal risk
// management and terminal action analysis. Each records what happened in
// the TVR (95) and TSI (9B), which go to the card in the CDOL1 data, to
// the host in field 55 and into the sale's record. Bit names as
// openemv/emv-utils src/emv_fields.h spells them; describe.go names them
// for people.

// phaseHook, when set (by the tests only), sees the TVR and TSI after each
// phase of a read or sale.
var phaseHook func(phase string, tvr, tsi []byte)

// done reports the end of a phase to phaseHook.
func (s *session) done(phase string) {
	if phaseHook != nil {
		phaseHook(phase, s.tdata[0x95], s.tdata[0x9B])
	}
}

// TVR (index: byte - 1) and TSI bits of these phases.
const (
	tvrODANotPerformed  = 0x80 // byte 1: offline data authentication was not performed
	tvrSDAFailed        = 0x40 // byte 1: SDA failed
	tvrICCDataMissing   = 0x20 // byte 1: ICC data missing
	tvrExceptionFile    = 0x10 // byte 1: card appears on terminal exception file
	tvrDDAFailed        = 0x08 // byte 1: DDA failed
	tvrCDAFailed        = 0x04 // byte 1: CDA failed
	tvrSDASelected      = 0x02 // byte 1: SDA selected (EMV 4.x)
	tvrVersionsDiffer   = 0x80 // byte 2: ICC and terminal have different application versions
	tvrExpired          = 0x40 // byte 2: expired application
	tvrNotEffective     = 0x20 // byte 2: application not yet effective
	tvrServiceNotAllow  = 0x10 // byte 2: requested service not allowed for card product
	tvrNewCard          = 0x08 // byte 2: new card
	tvrFloorLimit       = 0x80 // byte 4: transaction exceeds floor limit
	tvrLowerOffline     = 0x40 // byte 4: lower consecutive offline limit exceeded
	tvrUpperOffline     = 0x20 // byte 4: upper consecutive offline limit exceeded
	tvrRandomlySelected = 0x10 // byte 4: transaction selected randomly for online processing
	tsiODAPerformed     = 0x80 // TSI byte 1: offline data authentication was performed
	tsiCardRisk         = 0x20 // TSI byte 1: card risk management was performed
	tsiTerminalRisk     = 0x08 // TSI byte 1: terminal risk management was performed
)

// AIP byte 1 bits (Book 3 Annex C1).
const (
	aipSDA = 0x40
	aipDDA = 0x20
	aipCDA = 0x01
)

// odaMethod is an offline data authentication method.
type odaMethod int

const (
	odaNone odaMethod = iota
	odaSDA
	odaDDA
	odaCDA
	// odaFDDA is qPBOC's fast DDA of an offline approval (contactless.go).
	odaFDDA
)

func (m odaMethod) String() string {
	return [...]string{"none", "SDA", "DDA", "CDA", "fDDA"}[m]
}

// selectODA chooses the method both the card (AIP 82) and the terminal
// (9F33 byte 3) support, CDA before DDA before SDA (Book 3 §10.3), as
// openemv/emv-utils src/emv_oda.c does.
func selectODA(aip, caps []byte) odaMethod {
	if len(aip) < 1 || len(caps) < 3 {
		return odaNone
	}
	switch a, c := aip[0], caps[2]; {
	case a&aipCDA != 0 && c&0x08 != 0:
		return odaCDA
	case a&aipDDA != 0 && c&0x40 != 0:
		return odaDDA
	case a&aipSDA != 0 && c&0x80 != 0:
		return odaSDA
	}
	return odaNone
}

// odaResult is what the ODA step found.
type odaResult struct {
	method odaMethod // odaNone: not performed
	failed bool      // the method's verification failed
	// iccDataMissing: an object the method needs (certificate, CA key
	// index, signed data) was not on the card or the CA key not in the
	// terminal.
	iccDataMissing bool
	// exceptionFile: the card's PAN is on the terminal's exception file.
	exceptionFile bool
}

// apply records r in TVR byte 1 and TSI byte 1 (Book 3 §10.3): not
// performed sets its TVR bit and leaves the TSI alone; a method that was
// performed sets the TSI bit whatever its outcome, SDA marks itself
// selected, and a failure sets the method's own bit.
func (r odaResult) apply(tvr, tsi []byte) {
	if r.exceptionFile {
		tvr[0] |= tvrExceptionFile
	}
	if r.iccDataMissing {
		tvr[0] |= tvrICCDataMissing
	}
	if r.method == odaNone {
		tvr[0] |= tvrODANotPerformed
		return
	}
	tsi[0] |= tsiODAPerformed
	if r.method == odaSDA {
		tvr[0] |= tvrSDASelected
	}
	if r.failed {
		tvr[0] |= map[odaMethod]byte{odaSDA: tvrSDAFailed, odaDDA: tvrDDAFailed, odaCDA: tvrCDAFailed, odaFDDA: tvrDDAFailed}[r.method]
	}
}

// oda is offline data authentication: the method is selected from the AIP
// and 9F33, performed, and its outcome recorded.
func (s *session) oda(ctx context.Context) error {
	s.method = selectODA(s.cdata[0x82], s.term.Capabilities)
	r, err := s.performODA(ctx, s.method)
	if err != nil {
		return err
	}
	r.apply(s.tdata[0x95], s.tdata[0x9B])
	s.done("oda")
	return nil
}

// restrictions is processing restrictions (Book 3 §10.4), as
// openemv/emv-utils src/emv.c emv_processing_restrictions checks them:
// application versions (9F08 against 9F09), application usage control
// (9F07 against the terminal and, with the issuer country 5F28, the
// transaction type at home or abroad), effective (5F25) and expiry (5F24)
// dates against the transaction date 9A. Objects the card lacks pass.
func (s *session) restrictions() {
	defer s.done("restrictions")
	tvr := s.tdata[0x95]
	if v, ok := s.cdata[0x9F08]; ok {
		if t := s.tdata[0x9F09]; t != nil && !bytes.Equal(v, t) {
			tvr[1] |= tvrVersionsDiffer
		}
	}
	if auc, ok := s.cdata[0x9F07]; ok && len(auc) == 2 {
		if !s.usageAllowed(auc) {
			tvr[1] |= tvrServiceNotAllow
		}
	}
	today, ok := emvDate(s.tdata[0x9A])
	if !ok {
		return // terminalData always sets it
	}
	if v, ok := s.cdata[0x5F25]; ok {
		// A date that is not one cannot show the application effective.
		if d, ok := emvDate(v); !ok || today < d {
			tvr[1] |= tvrNotEffective
		}
	}
	if v, ok := s.cdata[0x5F24]; ok {
		if d, ok := emvDate(v); !ok || today > d {
			tvr[1] |= tvrExpired
		}
	}
}

// usageAllowed checks the application usage control (Book 3 §10.4.2 and
// its table of transaction types; AUC bits Book 3 Annex C2).
func (s *session) usageAllowed(auc []byte) bool {
	env := s.term.Type & 0x0F
	atm := s.term.Type>>4 == 1 && env >= 4 && env <= 6 && len(s.term.AddCapabilities) > 0 &&
		s.term.AddCapabilities[0]&0x80 != 0 // Book 4 Annex A1: an unattended bank terminal that gives cash
	if atm && auc[0]&0x02 == 0 || !atm && auc[0]&0x01 == 0 {
		return false
	}
	country, ok := s.cdata[0x5F28]
	if !ok {
		return true // the type checks need the issuer's country
	}
	domestic := bytes.Equal(country, s.tdata[0x9F1A])
	pick := func(dom, intl byte) byte {
		if domestic {
			return dom
		}
		return intl
	}
	switch s.txn.Type {
	case 0x00: // goods and services: either kind of use will do
		return auc[0]&pick(0x20|0x08, 0x10|0x04) != 0
	case 0x01: // cash
		return auc[0]&pick(0x80, 0x40) != 0
	case 0x09: // purchase with cashback
		return auc[1]&pick(0x80, 0x40) != 0
	}
	return true
}

// emvDate is a YYMMDD date (BCD) as the number YYYYMMDD; YY below 50 is
// 20YY, else 19YY (EMV Book 4 §6.7.3, as emv-utils src/emv_date.c).
func emvDate(b []byte) (int, bool) {
	d, ok := bcdToDigits(b)
	if !ok || len(d) != 6 || len(b) != 3 || !validMonth(d[2:4]) || d[4:6] < "01" || d[4:6] > "31" {
		return 0, false
	}
	n := 0
	for _, c := range d {
		n = n*10 + int(c-'0')
	}
	if n/10000 < 50 {
		return 20000000 + n, true
	}
	return 19000000 + n, true
}

// risk returns the acquirer's parameters for the selected application:
// those of the first terminal AID entry that matches it and has any.
func (s *session) risk() RiskParams {
	df := s.cdata[0x84]
	for _, h := range s.term.AIDs {
		if r, ok := s.term.Risk[h]; ok && s.term.matches(h, df) {
			return r
		}
	}
	return RiskParams{}
}

// riskManagement is terminal risk management (Book 3 §10.6): floor limit,
// random transaction selection and velocity checking, done whatever the
// AIP's "terminal risk management is to be performed" bit says, as
// emv-utils does. No transaction log is kept, so the floor limit is
// checked on this amount alone; no exception file is held.
func (s *session) riskManagement(ctx context.Context) error {
	tvr, tsi := s.tdata[0x95], s.tdata[0x9B]
	tsi[0] |= tsiTerminalRisk
	defer s.done("risk")
	r := s.risk()
	floor := r.FloorLimit
	if onlineOnlyType(s.term.Type) {
		// An online-only terminal's floor limit is zero, whatever the
		// download says: every sale goes online (PROTOCOLS.md §2).
		floor = 0
	}
	amount := max(s.txn.Amount, 0)
	if amount >= floor {
		tvr[3] |= tvrFloorLimit
	} else if r.TargetPercent > 0 {
		sel, err := randomSelection(s.rand(), amount, floor, r)
		if err != nil {
			return err
		}
		if sel {
			tvr[3] |= tvrRandomlySelected
		}
	}
	return s.velocity(ctx)
}

func (s *session) rand() io.Reader {
	if s.term.Rand != nil {
		return s.term.Rand
	}
	return rand.Reader
}

// randomSelection is Book 3 §10.6.2 for an amount below the floor limit:
// below the threshold the transaction is selected with the target
// percentage; from the threshold up to the floor limit the percentage
// rises linearly to the maximum target (Book 3 figure 15). The random
// number is uniform in 1-99, drawn from rnd. Parameters out of range
// (percentages over 99, a target above the maximum, a threshold not below
// the floor limit) select nothing.
func randomSelection(rnd io.Reader, amount, floor int64, r RiskParams) (bool, error) {
	if r.TargetPercent <= 0 || r.TargetPercent > 99 || r.MaxTargetPercent > 99 ||
		r.TargetPercent > r.MaxTargetPercent || r.Threshold < 0 || r.Threshold >= floor {
		return false, nil
	}
	x, err := randomPercent(rnd)
	if err != nil {
		return false, err
	}
	target := int64(r.TargetPercent)
	if amount >= r.Threshold {
		target += int64(r.MaxTargetPercent-r.TargetPercent) * (amount - r.Threshold) / (floor - r.Threshold)
	}
	return int64(x) <= target, nil
}

// randomPercent draws a number uniform in 1-99: bytes of 198 and above are
// drawn again so that the remainder carries no bias.
func randomPercent(rnd io.Reader) (int, error) {
	var b [1]byte
	for range 64 {
		if _, err := io.ReadFull(rnd, b[:]); err != nil {
			return 0, fmt.Errorf("emv: random transaction selection: %w", err)
		}
		if b[0] < 198 {
			return int(b[0])%99 + 1, nil
		}
	}
	return 0, errors.New("emv: random transaction selection: random source stuck above 197")
}

// velocity is velocity checking (Book 3 §10.6.3), done when the card has
// both consecutive offline limits (9F14 lower, 9F23 upper): GET DATA of
// the ATC (9F36) and the last online ATC register (9F13); the offline
// transactions since the last online one are compared with each limit.
// Either counter missing, or the ATC not above the register, sets both
// limit bits, and a register of zero is a new card (as emv-utils does).
func (s *session) velocity(ctx context.Context) error {
	lower, ok1 := s.cdata[0x9F14]
	upper, ok2 := s.cdata[0x9F23]
	if !ok1 || !ok2 || len(lower) != 1 || len(upper) != 1 {
		return nil
	}
	tvr := s.tdata[0x95]
	atc, err := s.getData(ctx, 0x9F36)
	if err != nil {
		return err
	}
	last, err := s.getData(ctx, 0x9F13)
	if err != nil {
		return err
	}
	if last != nil && binary.BigEndian.Uint16(last) == 0 {
		tvr[1] |= tvrNewCard
	}
	if atc == nil || last == nil || binary.BigEndian.Uint16(atc) <= binary.BigEndian.Uint16(last) {
		tvr[3] |= tvrLowerOffline | tvrUpperOffline
		return nil
	}
	n := int(binary.BigEndian.Uint16(atc) - binary.BigEndian.Uint16(last))
	if n > int(lower[0]) {
		tvr[3] |= tvrLowerOffline
	}
	if n > int(upper[0]) {
		tvr[3] |= tvrUpperOffline
	}
	return nil
}

// getData sends GET DATA for a 2-byte counter and returns its value, nil
// when the card refuses or answers something else: only the transport
// failing is an error.
func (s *session) getData(ctx context.Context, tag Tag) ([]byte, error) {
	r, err := s.exchange(ctx, fmt.Sprintf("get data %v", tag),
		cardreader.Command{CLA: 0x80, INS: 0xCA, P1: byte(tag >> 8), P2: byte(tag), Ne: 256})
	if err != nil {
		return nil, err
	}
	if !r.SW.OK() {
		return nil, nil
	}
	return parseGetData(r.Data, tag), nil
}

// parseGetData is the 2-byte value of tag in a GET DATA answer (the object
// itself, 9F36 02 XXXX), nil when the answer is not that.
func parseGetData(b []byte, tag Tag) []byte {
	objs, err := DecodeTLV(b)
	if err != nil || len(objs) != 1 || objs[0].Tag != tag || len(objs[0].Value) != 2 {
		return nil
	}
	return append([]byte(nil), objs[0].Value...)
}

// Cryptogram types a GENERATE AC asks for (P1 bits 8-7, Book 3 §6.5.5).
const (
	acAAC  = 0x00
	acTC   = 0x40
	acARQC = 0x80
)

// actionAnalysis is terminal action analysis (Book 3 §10.7): the TVR
// against the card's issuer action codes (9F0E denial, 9F0F online, 9F0D
// default) ORed with the acquirer's terminal action codes. Absent IACs are
// all zeros for denial and all ones for online and default (Book 3 §10.7,
// as the O2Xfs EMV kernel, at.o2xfs.emv.TerminalActionAnalysis, has it);
// an absent TAC asks for nothing. A denial match declines offline (AAC);
// an online-only terminal otherwise goes online (ARQC); a terminal that
// can approve offline goes online on an online match, else approves (TC)
// unless the default codes match; an offline-only one approves unless the
// default codes match.
func actionAnalysis(tvr []byte, iacDenial, iacOnline, iacDefault []byte, r RiskParams, termType byte) byte {
	code := func(iac []byte, fill byte) []byte {
		if len(iac) == 5 {
			return iac
		}
		return bytes.Repeat([]byte{fill}, 5)
	}
	match := func(iac, tac []byte) bool {
		for i := range 5 {
			var t byte
			if len(tac) == 5 {
				t = tac[i]
			}
			if tvr[i]&(iac[i]|t) != 0 {
				return true
			}
		}
		return false
	}
	switch {
	case match(code(iacDenial, 0x00), r.TACDenial):
		return acAAC
	case onlineOnlyType(termType):
		return acARQC
	case !offlineOnlyType(termType) && match(code(iacOnline, 0xFF), r.TACOnline):
		return acARQC
	case match(code(iacDefault, 0xFF), r.TACDefault):
		return acAAC
	}
	return acTC
}

// decision runs terminal action analysis for this card. The kernel has no
// offline approval, so a TC decision is asked for as an ARQC: a terminal
// may always ask for less than it may accept.
func (s *session) decision() byte {
	d := actionAnalysis(s.tdata[0x95], s.cdata[0x9F0E], s.cdata[0x9F0F], s.cdata[0x9F0D], s.risk(), s.term.Type)
	if d == acTC {
		return acARQC
	}
	return d
}
