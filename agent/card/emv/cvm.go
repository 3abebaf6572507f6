package emv

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/posagent/posagent/provisioning"
)

// Cardholder verification (EMV Book 3 §10.5 and Annex C3; CVM Results per
// Book 4 Annex A4; bit names as openemv/emv-utils src/emv_fields.h spells
// them). The terminal walks the card's CVM list 8E and performs the first
// method whose condition holds; a method that fails moves on to the next
// rule only when its "apply succeeding rule" bit is set.
//
// What this terminal can do: enciphered PIN verified online (through the
// Source's PINPad), signature on the slip and "no CVM required", each as
// far as the terminal capabilities 9F33 claim it. Offline PIN (plaintext or
// enciphered, with or without signature) is not implemented, so those rules
// fail as methods the terminal does not support.

// CVM codes (rule byte 1, bits 6-1) and the "apply succeeding rule" bit.
const (
	cvmFail         = 0x00
	cvmOnlinePIN    = 0x02
	cvmSignature    = 0x1E
	cvmNoCVM        = 0x1F
	cvmApplyNext    = 0x40
	cvmCodeMask     = 0x3F
	cvmNonePerfomed = 0x3F // 9F34 byte 1 when no CVM was performed
)

// CVM results (9F34 byte 3).
const (
	cvmResultUnknown = 0x00
	cvmResultFailed  = 0x01
	cvmResultOK      = 0x02
)

// TVR byte 3 (index 2) and TSI byte 1 (index 0) bits this file sets.
const (
	tvrCVFailed       = 0x80 // cardholder verification was not successful
	tvrUnrecognisedCV = 0x40 // unrecognised CVM
	tvrNoPINPad       = 0x10 // PIN entry required and PIN pad not present or not working
	tvrPINNotEntered  = 0x08 // PIN entry required, PIN pad present, but PIN was not entered
	tvrOnlinePIN      = 0x04 // online PIN entered (EMV 4.4: online CVM captured)
	tsiCVPerformed    = 0x40 // cardholder verification was performed
)

// recognisedCVM reports the CVM codes EMV defines (Book 3 Annex C3; 06-0F
// are the biometric methods of EMV 4.4). Anything else sets "unrecognised
// CVM" in the TVR.
func recognisedCVM(code byte) bool {
	return code <= 0x0F || code == cvmSignature || code == cvmNoCVM
}

// supportsCVM reports whether this terminal performs a method: it must be
// implemented here and claimed in 9F33 byte 2 (Book 4 Annex A2).
func (s *session) supportsCVM(code byte) bool {
	var caps byte
	if len(s.term.Capabilities) >= 2 {
		caps = s.term.Capabilities[1]
	}
	switch code {
	case cvmFail:
		return true
	case cvmOnlinePIN:
		return caps&0x40 != 0
	case cvmSignature:
		return caps&0x20 != 0
	case cvmNoCVM:
		return caps&0x08 != 0
	}
	return false
}

// cvmCondition reports whether a rule's condition code holds for this
// transaction; x and y are the list's amounts. Conditions this terminal
// does not know (RFU, payment-system specific) do not hold, so the rule is
// passed over (Book 3 §10.5).
func (s *session) cvmCondition(cond, code byte, x, y uint32) bool {
	env := s.term.Type & 0x0F
	unattended := env >= 4 && env <= 6
	cash := s.txn.Type == 0x01
	cashback := s.txn.Type == 0x09 || s.txn.Other > 0
	switch cond {
	case 0x00: // always
		return true
	case 0x01: // unattended cash
		return unattended && cash
	case 0x02: // not unattended cash, not manual cash, not purchase with cashback
		return !cash && !cashback
	case 0x03: // terminal supports the CVM
		return s.supportsCVM(code)
	case 0x04: // manual cash
		return !unattended && cash
	case 0x05: // purchase with cashback
		return cashback
	case 0x06, 0x07, 0x08, 0x09:
		// Amounts X and Y are in the application currency 9F42: a
		// transaction in another currency satisfies none of these.
		ac, ok := s.cdata[0x9F42]
		tc := s.tdata[0x5F2A]
		if !ok || len(ac) != 2 || len(tc) != 2 || ac[0] != tc[0] || ac[1] != tc[1] {
			return false
		}
		amt := max(s.txn.Amount, 0)
		switch cond {
		case 0x06:
			return amt < int64(x)
		case 0x07:
			return amt > int64(x)
		case 0x08:
			return amt < int64(y)
		default:
			return amt > int64(y)
		}
	}
	return false
}

// errCVMList is a CVM list that is not X, Y and 2-byte rules.
var errCVMList = errors.New("CVM list (8E) is not two amounts and 2-byte rules")

// verifyCardholder runs cardholder verification and sets 9F34, the TVR's
// byte 3 and the TSI. It returns the PIN block when online PIN was entered.
// pad nil means no PIN pad. Only the context's end stops it with an error:
// a PIN pad that fails is a CVM that failed.
func (s *session) verifyCardholder(ctx context.Context, pad provisioning.PINPad, req provisioning.PINRequest) (provisioning.PINBlock, error) {
	tvr, tsi := s.tdata[0x95], s.tdata[0x9B]
	s.tdata[0x9F34] = []byte{cvmNonePerfomed, 0x00, cvmResultUnknown}
	aip := s.cdata[0x82]
	list, ok := s.cdata[0x8E]
	// AIP byte 1 bit 5 clear: the card does not do cardholder
	// verification; no list or one without rules is the same as none.
	if len(aip) < 1 || aip[0]&0x10 == 0 || !ok || len(list) <= 8 {
		return nil, nil
	}
	if len(list)%2 != 0 {
		return nil, fmt.Errorf("%w: %w", ErrCardData, errCVMList)
	}
	tsi[0] |= tsiCVPerformed
	x, y := binary.BigEndian.Uint32(list[0:4]), binary.BigEndian.Uint32(list[4:8])
	var last []byte // 9F34 of the last method performed
	for i := 8; i+1 < len(list); i += 2 {
		rule, cond := list[i], list[i+1]
		code := rule & cvmCodeMask
		if !s.cvmCondition(cond, code, x, y) {
			continue
		}
		var ok bool
		var result byte = cvmResultFailed
		var pin provisioning.PINBlock
		switch {
		case !recognisedCVM(code):
			tvr[2] |= tvrUnrecognisedCV
		case !s.supportsCVM(code):
			// A method the terminal does not perform fails without being
			// performed: 9F34 keeps the last one that was.
		case code == cvmFail:
			last = []byte{rule, cond, cvmResultFailed}
		case code == cvmSignature:
			// Verified later, by the merchant against the slip.
			ok, result = true, cvmResultUnknown
		case code == cvmNoCVM:
			ok, result = true, cvmResultOK
		case code == cvmOnlinePIN:
			var err error
			pin, err = onlinePIN(ctx, pad, req)
			switch {
			case ctx.Err() != nil:
				return nil, ctx.Err()
			case errors.Is(err, provisioning.ErrPINCancelled):
				// The cardholder stopped the sale: nothing goes to the
				// card or the host (the flow says E_PIN_CANCELLED).
				return nil, err
			case errors.Is(err, provisioning.ErrPINBypassed):
				tvr[2] |= tvrPINNotEntered
			case err != nil:
				tvr[2] |= tvrNoPINPad
			default:
				tvr[2] |= tvrOnlinePIN
				// The issuer verifies the PIN: unknown until the answer.
				ok, result = true, cvmResultUnknown
			}
			last = []byte{rule, cond, cvmResultFailed}
		}
		if ok {
			s.tdata[0x9F34] = []byte{rule, cond, result}
			return pin, nil
		}
		if rule&cvmApplyNext == 0 {
			break
		}
	}
	tvr[2] |= tvrCVFailed
	if last == nil {
		last = []byte{cvmNonePerfomed, 0x00, cvmResultFailed}
	}
	s.tdata[0x9F34] = last
	return nil, nil
}

// errNoPINPad stands for the PIN pad a terminal without one would have
// failed with.
var errNoPINPad = errors.New("emv: no PIN pad")

// onlinePIN asks the pad for the PIN block. A pad that answers with
// anything but an 8-byte block did not work.
func onlinePIN(ctx context.Context, pad provisioning.PINPad, req provisioning.PINRequest) (provisioning.PINBlock, error) {
	if pad == nil {
		return nil, errNoPINPad
	}
	b, err := pad.OnlinePIN(ctx, req)
	if err != nil {
		return nil, err
	}
	if len(b) != 8 {
		return nil, fmt.Errorf("emv: PIN pad returned a %d-byte block", len(b))
	}
	return b, nil
}
