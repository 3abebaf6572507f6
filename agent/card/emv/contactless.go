package emv

import (
	"context"
	"fmt"

	"github.com/posagent/posagent/provisioning"
)

// qPBOC, the contactless path (PBOC 3.0 part 12, JR/T 0025.12, which
// follows Visa's qVSDC as EMV Contactless Book C-3 describes it;
// PROTOCOLS.md "EMV terminal behaviour"): PPSE, SELECT, GET PROCESSING
// OPTIONS with a PDOL holding the TTQ 9F66, then READ RECORD per AFL. The
// card decides inside GET PROCESSING OPTIONS and answers the cryptogram
// there (9F26, 9F27, 9F10, 9F36, with its CTQ 9F6C); no GENERATE AC is
// ever sent, and the card may leave the field once its records are read.
//
// The cryptogram covers the PDOL data as the GPO sent it, so what field 55
// says about those objects must stay what the card saw: the terminal's
// later findings cannot enter an ARQC that is already made. The kernel
// therefore runs none of the contact phases after the GPO (the card did
// its own risk management; the TVR stays as sent, all zeros), and
// contactlessSet refuses to change any object the PDOL carried.

// CTQ 9F6C byte 1 bits (EMV Book C-3 Annex A, qPBOC the same): what the
// card asks the reader to verify the cardholder with.
const (
	ctqOnlinePIN = 0x80 // online PIN required
	ctqSignature = 0x40 // signature required
)

// contactless finishes a contactless payment after readApp: the GPO's
// cryptogram and the cardholder verification the CTQ asks for.
//
//   - ARQC: the payment goes online with it, as a chip sale's does.
//   - AAC: the card declined offline: ErrDeclined.
//   - TC: an offline approval, which this reader's TTQ forbade ("online
//     cryptogram required", TTQ byte 2 bit 8, set because the terminal is
//     online-only and performs no fDDA: Capabilities). A card that approves
//     anyway answered against the reader's terms; the terminal, which
//     approves nothing offline (9F35 21), does not accept the TC, and does
//     not forward an offline approval as if it were an authorisation
//     request. It is ErrCardData, which the flow answers by asking for the
//     card on the contact interface — EMV Contactless Book A's "try
//     another interface" outcome. fDDA (oda.VerifyFDDA) would only matter
//     for accepting the TC offline, so it is not run.
func (s *session) contactless(ctx context.Context, pad provisioning.PINPad, req provisioning.PINRequest) (provisioning.PINBlock, error) {
	if err := s.gpoCryptogram(); err != nil {
		return nil, err
	}
	return s.contactlessCVM(ctx, pad, req)
}

// gpoCryptogram is contactless's check of the GPO's cryptogram.
func (s *session) gpoCryptogram() error {
	defer s.done("qpboc")
	cid, ac, atc := s.cdata[0x9F27], s.cdata[0x9F26], s.cdata[0x9F36]
	if len(cid) != 1 || len(ac) != 8 || len(atc) != 2 {
		return fmt.Errorf("%w: contactless GET PROCESSING OPTIONS answered no cryptogram (9F26, 9F27, 9F36)", ErrCardData)
	}
	switch cid[0] & 0xC0 {
	case acAAC:
		return ErrDeclined
	case acTC:
		return fmt.Errorf("%w: contactless card approved offline (TC) though the TTQ requires an online cryptogram", ErrCardData)
	case acARQC:
		return nil
	}
	return fmt.Errorf("%w: contactless CID %02X", ErrCardData, cid[0])
}

// contactlessCVM performs the cardholder verification the card's CTQ asks
// for: online PIN through pad (when the TTQ offers it), or signature on
// the slip; neither is "no CVM required". 9F34 records it.
func (s *session) contactlessCVM(ctx context.Context, pad provisioning.PINPad, req provisioning.PINRequest) (provisioning.PINBlock, error) {
	// The CTQ is optional: a card without one asks for no CVM.
	var ctq byte
	if v := s.cdata[0x9F6C]; len(v) >= 1 {
		ctq = v[0]
	}
	var pin provisioning.PINBlock
	// 9F34 of a contactless sale: no CVM list was walked, so the code is
	// the method the CTQ asked for, condition "always" (00).
	cvm := []byte{cvmNoCVM, 0x00, cvmResultOK}
	switch {
	case ctq&ctqOnlinePIN != 0 && s.termTTQ(0, 0x04):
		var err error
		pin, err = onlinePIN(ctx, pad, req)
		switch {
		case ctx.Err() != nil:
			return nil, ctx.Err()
		case err != nil:
			// The card requires a PIN the reader could not take: nothing
			// can be sent online, and the cardholder may try contact.
			return nil, fmt.Errorf("emv: contactless online PIN: %w", err)
		}
		cvm = []byte{cvmOnlinePIN, 0x00, cvmResultUnknown}
	case ctq&ctqOnlinePIN != 0:
		return nil, fmt.Errorf("%w: contactless card requires online PIN, which the TTQ does not offer", ErrCardData)
	case ctq&ctqSignature != 0:
		cvm = []byte{cvmSignature, 0x00, cvmResultUnknown}
	}
	if ctq&(ctqOnlinePIN|ctqSignature) != 0 {
		s.tdata[0x9B][0] |= tsiCVPerformed
	}
	s.contactlessSet(0x9F34, cvm)
	s.done("cvm")
	return pin, nil
}

// termTTQ reports whether TTQ byte i has bit mask set.
func (s *session) termTTQ(i int, mask byte) bool {
	t := s.tdata[0x9F66]
	return len(t) > i && t[i]&mask != 0
}

// contactlessSet sets a terminal object after the GPO, unless the PDOL
// carried it: the card's cryptogram covers the value it was sent, and the
// issuer checks the cryptogram against what field 55 says.
func (s *session) contactlessSet(tag Tag, v []byte) {
	if p, ok := s.cdata[0x9F38]; ok {
		if dol, err := ParseDOL(p); err == nil {
			for _, e := range dol {
				if e.Tag == tag {
					return
				}
			}
		}
	}
	s.tdata[tag] = v
}
