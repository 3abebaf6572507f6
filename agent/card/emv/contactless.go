package emv

import (
	"bytes"
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
//   - TC: an offline approval. Where the reader's TTQ required an online
//     cryptogram (byte 2 bit 8: always on this online-only terminal,
//     Capabilities, 9F35 21), a card that approves anyway answered against
//     the reader's terms: the TC is not accepted, nor forwarded as if it
//     were an authorisation request. It is ErrCardData, which the flow
//     answers by asking for the card on the contact interface — EMV
//     Contactless Book A's "try another interface" outcome. Where the TTQ
//     left the card free to approve offline (a caller that cleared the bit:
//     `posctl card read --contactless --offline` examining a card), the TC
//     stands only on fDDA (fdda): verified, the card's offline approval is
//     the result; failed, the card is declined offline (ErrDeclined), or
//     sent to the contact interface when its CTQ asks for that.
func (s *session) contactless(ctx context.Context, pad provisioning.PINPad, req provisioning.PINRequest) (provisioning.PINBlock, error) {
	if err := s.gpoCryptogram(ctx); err != nil {
		return nil, err
	}
	if s.cdata[0x9F27][0]&0xC0 != acARQC {
		// A payment goes online: even a verified offline approval is not
		// what the flow can send (its TTQ always requires the ARQC).
		return nil, fmt.Errorf("%w: contactless card approved offline (TC); this payment needs an online cryptogram", ErrCardData)
	}
	return s.contactlessCVM(ctx, pad, req)
}

// gpoCryptogram is contactless's check of the GPO's cryptogram.
func (s *session) gpoCryptogram(ctx context.Context) error {
	defer s.done("qpboc")
	cid, ac, atc := s.cdata[0x9F27], s.cdata[0x9F26], s.cdata[0x9F36]
	if len(cid) != 1 || len(ac) != 8 || len(atc) != 2 {
		return fmt.Errorf("%w: contactless GET PROCESSING OPTIONS answered no cryptogram (9F26, 9F27, 9F36)", ErrCardData)
	}
	switch cid[0] & 0xC0 {
	case acAAC:
		return ErrDeclined
	case acTC:
		if s.termTTQ(1, ttqOnlineRequired) {
			return fmt.Errorf("%w: contactless card approved offline (TC) though the TTQ requires an online cryptogram", ErrCardData)
		}
		return s.fdda(ctx)
	case acARQC:
		return nil
	}
	return fmt.Errorf("%w: contactless CID %02X", ErrCardData, cid[0])
}

// TTQ byte 2 bits the pre-processing sets per transaction (EMV Book C-3
// Annex A; they are transient, the others static: emv.cool's TTQ page for
// qPBOC says the same), and the CTQ's interface-switch bit.
const (
	ttqOnlineRequired = 0x80 // byte 2 bit 8: online cryptogram required
	ttqCVMRequired    = 0x40 // byte 2 bit 7: CVM required
	ctqSwitchOnODA    = 0x10 // CTQ byte 1 bit 5: switch interface if ODA fails
)

// ErrUseContact sends the card to the contact interface or the stripe
// (E_CARD_USE_CONTACT): a sale at or above the application's contactless
// transaction limit (DF20), or a card whose fDDA failed and whose CTQ asks
// for the contact interface then.
var ErrUseContact error = useContact{}

type useContact struct{}

func (useContact) Error() string {
	return "emv: not a contactless transaction (amount at or above the contactless limit, or the card asks for contact): insert or swipe the card"
}
func (useContact) FailureCode() string { return "E_CARD_USE_CONTACT" }

// preprocess is the reader's pre-processing (EMV Book C-3 §5.2, which
// qPBOC follows: JR/T 0025.12 "预处理"), with the selected application's
// limits from the acquirer's IC parameter download (DF19, DF20, DF21),
// before GET PROCESSING OPTIONS: at or above the contactless transaction
// limit the card is not read contactless; at or above the CVM required
// limit the TTQ asks for a CVM; above the contactless floor limit it
// requires an online cryptogram — which this online-only terminal's TTQ
// already does for every amount (Capabilities). The transient bits start
// from the terminal's TTQ each time, so one transaction's cannot leak into
// the next.
func (s *session) preprocess() error {
	r := s.risk()
	amount := max(s.txn.Amount, 0)
	if r.CLTransactionLimit != nil && amount >= *r.CLTransactionLimit {
		return ErrUseContact
	}
	ttq := append([]byte(nil), s.tdata[0x9F66]...)
	if len(ttq) != 4 {
		return nil // withDefaults gives every terminal one; a caller's odd TTQ is sent as it is
	}
	if r.CVMLimit != nil && amount >= *r.CVMLimit {
		ttq[1] |= ttqCVMRequired
	}
	if r.CLFloorLimit != nil && amount > *r.CLFloorLimit {
		ttq[1] |= ttqOnlineRequired
	}
	s.tdata[0x9F66] = ttq
	return nil
}

// fdda is fast DDA (JR/T 0025.12 Annex B, EMV Book C-3 §5.9) of a card's
// offline approval: the issuer and ICC keys recovered as for DDA over the
// records the AFL marks, then 9F4B, which the card returned with its
// cryptogram, verified over the terminal's fixed dynamic data
// (fddaTerminalData). Verified: TSI "ODA performed", the TC stands.
// Failed: TVR "DDA failed" (fDDA is reported as DDA), and the card is
// declined offline, or sent to contact when its CTQ asks for that.
func (s *session) fdda(ctx context.Context) error {
	s.method = odaFDDA
	r, err := s.performODA(ctx, odaFDDA)
	if err != nil {
		return err
	}
	r.apply(s.tdata[0x95], s.tdata[0x9B])
	if !r.failed {
		return nil
	}
	if ctq := s.cdata[0x9F6C]; len(ctq) >= 1 && ctq[0]&ctqSwitchOnODA != 0 {
		return ErrUseContact
	}
	return fmt.Errorf("%w: fDDA failed", ErrDeclined)
}

// fddaTerminalData is what fDDA's signature covers besides the card's
// dynamic number, by the version the card names in 9F69's first byte:
// version 01, 9F37 || 9F02 || 5F2A || 9F69 (proxmark3
// client/src/emv/emv_pki.c emv_pki_recover_atc_ex hashes the same four);
// version 00 (no 9F69), the unpredictable number alone (the PBOC write-up
// e-com-net.com/article/3810417.htm, "EMV/PBOC之关于fDDA01算法", which
// contrasts the two versions).
func (s *session) fddaTerminalData() []byte {
	un := s.tdata[0x9F37]
	c69, ok := s.cdata[0x9F69]
	if !ok || len(c69) == 0 || c69[0] != 0x01 {
		return append([]byte(nil), un...)
	}
	return bytes.Join([][]byte{un, s.tdata[0x9F02], s.tdata[0x5F2A], c69}, nil)
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
