package hostsim

import (
	"encoding/binary"
	"fmt"

	"github.com/moov-io/iso8583"
	"github.com/posagent/posagent/agent/acquirer"
	"github.com/posagent/posagent/agent/card/emv"
	"github.com/posagent/posagent/agent/sim/cardsim"
)

// The issuer's answer to a chip sale: field 55 with the issuer
// authentication data 91 (ARPC || ARC, EMV Book 2 A1.2.1 method 1, the
// form PBOC cards check) and, when configured, issuer scripts 71/72 (EMV
// Book 3 §10.10). The objects an authorisation response carries for the
// card are 91, 71 and 72 (PROTOCOLS.md "EMV online processing"; the field
// lists of public gateway guides, e.g. Heartland Portico's "EMV Response
// Tags" and MagTek's ARPC command, name exactly these, in this order); the
// terminal derives 8A from field 39, so the host does not send it.

// ScriptCommand is one issuer script command: Template 0x71 (run before the
// second GENERATE AC) or 0x72 (after), the command header CLA INS P1 P2
// and its plaintext data. The host appends the secure-messaging MAC for the
// card and transaction (cardsim.ScriptCommand).
type ScriptCommand struct {
	Template byte
	Header   [4]byte
	Data     []byte
}

// DefaultScripts is what SendScripts sends when Config.Scripts is empty: a
// 72 script that PUTs DATA 9F79 (the PBOC electronic cash balance) to zero,
// harmless to a debit sale and visible to a test through GET DATA.
var DefaultScripts = []ScriptCommand{
	{Template: 0x72, Header: [4]byte{0x04, 0xDA, 0x9F, 0x79}, Data: make([]byte, 6)},
}

// issuerAuth is what the issuer keeps of a verified ARQC to answer it.
type issuerAuth struct {
	ck   CardKey
	atc  uint16
	arqc []byte
}

// chipAuth returns the ARQC of a sale's field 55 when the host knows the
// card and the cryptogram verifies; nil otherwise (no cards configured, a
// swipe, an unknown card, a bad cryptogram: the answer then has no 55).
func (s *Server) chipAuth(m *iso8583.Message, card string) *issuerAuth {
	f55 := acquirer.GetBytes(m, 55)
	if f55 == nil || s.cfg.Cards == nil {
		return nil
	}
	ck, ok := s.cfg.Cards[card]
	if !ok || !verifyARQC(ck, f55) {
		return nil
	}
	objs, err := emv.DecodeTLV(f55)
	if err != nil {
		return nil
	}
	atc, ok1 := emv.Find(objs, 0x9F36)
	ac, ok2 := emv.Find(objs, 0x9F26)
	if !ok1 || !ok2 || len(atc.Value) != 2 || len(ac.Value) != 8 {
		return nil
	}
	return &issuerAuth{ck: ck, atc: binary.BigEndian.Uint16(atc.Value), arqc: append([]byte(nil), ac.Value...)}
}

// answer55 builds the answer's field 55 for response code rc (the ARC, two
// ASCII characters), with the fault act applied.
func (s *Server) answer55(a *issuerAuth, rc string, act Action) ([]byte, error) {
	if len(rc) != 2 {
		rc = "96"
	}
	d91, err := cardsim.IssuerAuthData(a.ck.MK, a.atc, a.arqc, []byte(rc))
	if err != nil {
		return nil, fmt.Errorf("hostsim: ARPC: %w", err)
	}
	if act == BadARPC {
		d91[0] ^= 0xFF
	}
	out := emv.EncodeTLV(nil, 0x91, d91)
	cmds := s.cfg.Scripts
	if len(cmds) == 0 && (act == SendScripts || act == BadScriptMAC) {
		cmds = DefaultScripts
	}
	for i, tmpl := range []byte{0x71, 0x72} {
		sc := cardsim.Script{Template: tmpl, ID: []byte{0, 0, 0, byte(i + 1)}}
		for _, c := range cmds {
			if c.Template != tmpl {
				continue
			}
			cmd, err := cardsim.ScriptCommand(a.ck.SMI, a.atc, a.arqc, c.Header[:], c.Data)
			if err != nil {
				return nil, fmt.Errorf("hostsim: script: %w", err)
			}
			if act == BadScriptMAC {
				cmd[len(cmd)-1] ^= 0xFF
			}
			sc.Commands = append(sc.Commands, cmd)
		}
		if len(sc.Commands) > 0 {
			out = append(out, cardsim.EncodeScript(sc)...)
		}
	}
	if len(out) > 255 {
		// Field 55 is LLLVAR of at most 255 bytes here; scripts that do not
		// fit are a configuration error the log names, and the answer goes
		// with 91 alone.
		s.cfg.Log.Error("issuer scripts do not fit in field 55", "bytes", len(out))
		return emv.EncodeTLV(nil, 0x91, d91), nil
	}
	return out, nil
}
