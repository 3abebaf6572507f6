package emv

import (
	"errors"
	"fmt"

	"github.com/posagent/posagent/drivers/cardreader"
)

// The issuer's part of an authorisation response (field 55 of the answer,
// EMV Book 3 §10.9–10.10): issuer authentication data 91 and the issuer
// script templates 71 (run before the second GENERATE AC) and 72 (after).
// It comes from the network, so it is parsed strictly and never trusted
// further than its shape: a malformed answer is refused as a whole, and the
// terminal completes as if the host had sent no issuer data.

// ErrIssuerData wraps every error of ParseIssuerResponse and
// ParseScriptCommand. Messages say where (object, command number), never
// what the bytes are.
var ErrIssuerData = errors.New("emv: malformed issuer data")

// IssuerResponse is the issuer data of an authorisation response.
type IssuerResponse struct {
	// Auth is the issuer authentication data 91 (ARPC and ARC or CSU, 8 to
	// 16 bytes); nil when the host sent none.
	Auth []byte
	// Scripts are the 71 and 72 templates in the order they came.
	Scripts []Script
}

// Script is one issuer script template.
type Script struct {
	// Template is 0x71 (before the final GENERATE AC) or 0x72 (after).
	Template Tag
	// ID is the script identifier 9F18 (4 bytes), nil when absent.
	ID []byte
	// Commands are the 86 objects, each a complete command APDU as it is
	// sent to the card.
	Commands [][]byte
}

// ParseIssuerResponse decodes field 55 of an authorisation response. Only
// the top level counts: 91 once, of 8 to 16 bytes (EMV Book 3 Annex A); 71
// and 72 templates, each with at most one 9F18 of 4 bytes and 86 commands
// that ParseScriptCommand accepts. Other objects are ignored, at the top
// level and inside a template, since acquirers add their own. Empty input
// is no issuer data. Values are copied: the result does not alias b.
func ParseIssuerResponse(b []byte) (IssuerResponse, error) {
	var out IssuerResponse
	if len(b) == 0 {
		return out, nil
	}
	objs, err := DecodeTLV(b)
	if err != nil {
		return IssuerResponse{}, fmt.Errorf("%w: %w", ErrIssuerData, err)
	}
	for i, o := range objs {
		switch o.Tag {
		case 0x91:
			if out.Auth != nil {
				return IssuerResponse{}, fmt.Errorf("%w: object %d: second 91", ErrIssuerData, i)
			}
			if len(o.Value) < 8 || len(o.Value) > 16 {
				return IssuerResponse{}, fmt.Errorf("%w: object %d: 91 is %d bytes, want 8 to 16", ErrIssuerData, i, len(o.Value))
			}
			out.Auth = append([]byte{}, o.Value...)
		case 0x71, 0x72:
			sc := Script{Template: o.Tag}
			for _, c := range o.Children {
				switch c.Tag {
				case 0x9F18:
					if sc.ID != nil || len(c.Value) != 4 {
						return IssuerResponse{}, fmt.Errorf("%w: object %d: 9F18", ErrIssuerData, i)
					}
					sc.ID = append([]byte{}, c.Value...)
				case 0x86:
					if _, err := ParseScriptCommand(c.Value); err != nil {
						return IssuerResponse{}, fmt.Errorf("object %d: command %d: %w", i, len(sc.Commands)+1, err)
					}
					sc.Commands = append(sc.Commands, append([]byte{}, c.Value...))
				}
			}
			out.Scripts = append(out.Scripts, sc)
		}
	}
	return out, nil
}

// ParseScriptCommand checks that b is one complete short command APDU, as
// an issuer script command (86) must be: a 4-byte header and P3, then
// either nothing more (P3 is Le), exactly Lc = P3 data bytes, or those and
// an Le byte. The Command it returns encodes back to exactly b, so sending
// it sends the issuer's bytes as they are.
func ParseScriptCommand(b []byte) (cardreader.Command, error) {
	if len(b) < 5 {
		return cardreader.Command{}, fmt.Errorf("%w: script command of %d bytes, want at least 5", ErrIssuerData, len(b))
	}
	c := cardreader.Command{CLA: b[0], INS: b[1], P1: b[2], P2: b[3]}
	p3 := int(b[4])
	switch {
	case len(b) == 5: // case 2: P3 is Le, 00 meaning 256
		c.Ne = p3
		if p3 == 0 {
			c.Ne = 256
		}
	case p3 > 0 && len(b) == 5+p3: // case 3
		c.Data = b[5:]
	case p3 > 0 && len(b) == 6+p3: // case 4
		c.Data = b[5 : 5+p3]
		c.Ne = int(b[5+p3])
		if c.Ne == 0 {
			c.Ne = 256
		}
	default:
		return cardreader.Command{}, fmt.Errorf("%w: script command Lc %d does not match its %d bytes", ErrIssuerData, p3, len(b))
	}
	return c, nil
}
