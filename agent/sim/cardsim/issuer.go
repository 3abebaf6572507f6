package cardsim

import (
	"crypto/des"
	"crypto/subtle"
	"errors"
	"fmt"

	"github.com/posagent/posagent/agent/card/emv"
)

// The issuer's side of online completion: the authorisation response
// cryptogram (ARPC) a host returns in 91 and the secure-messaging MAC of the
// issuer script commands it returns in 71/72. Both sides of the simulator
// (this card and agent/sim/hostsim) use these functions, so they are pinned
// by known answers computed with openssl, not with this package.
//
// Sources:
//   - EMV Book 2 Annex A1.3.1 (common session key derivation): SK = DES3(MK)[F1]
//     || DES3(MK)[F2] where F1/F2 are R with byte 2 replaced by F0/0F; for the
//     AC session key R = ATC || 00..00, for the secure-messaging keys R = the
//     application cryptogram (ARQC). pyemv (knovichikhin/pyemv kd.py
//     derive_common_sk) documents the same two R values.
//   - EMV Book 2 Annex A1.2.1 (ARPC method 1): ARPC = DES3(SK_AC)[ARQC XOR
//     (ARC || 00 00 00 00 00 00)], 8 bytes; 91 = ARPC || ARC (10 bytes).
//     PBOC cards use method 1 with the same session key as the ARQC and the
//     ARC as two ASCII characters (a public worked example, "PBOC联机交易中
//     ARQC及ARPC的计算", shuzhiduo.com/A/l1dyep1Vde, XORs the ARQC with
//     3030000000000000 for ARC "00" and encrypts under the SKAC of the ARQC).
//     Method 2 (ARPC = MAC(ARQC || CSU || proprietary data), 4 bytes, 91 =
//     ARPC || CSU) is the EMV CVN 18 form; PBOC/UnionPay debit and credit do
//     not use it and neither does this card.
//   - Session key: the PBOC practice derives SKAC from ATC and its complement
//     (000000000000||ATC, 000000000000||~ATC, same page); this simulator's
//     ARQC has always used the EMV common derivation instead, and the ARPC
//     keeps to the key the ARQC was made with, so the pair stays consistent.
//   - Script MAC: EMV Book 2 §9.2.3 and a public PBOC worked example
//     ("金融系列3《锁卡指令》", runxinzhi.com/iplus-p-4467211.html): the MAC is
//     ISO 9797-1 algorithm 3 (retail MAC, padding method 2) over CLA INS P1 P2
//     Lc (Lc counting the MAC) || ATC || ARQC || plaintext data, and the
//     command carries its first 4 bytes (APPLICATION BLOCK is 84 1E 00 00 04
//     followed by the 4-byte MAC). pyemv sm.generate_command_mac computes
//     the same over "command header || ATC || ARQC || data".

// ScriptMACLen is the length of a script command's MAC (PBOC: 4 bytes).
const ScriptMACLen = 4

// ErrARPC is issuer authentication data whose ARPC does not verify.
var ErrARPC = errors.New("cardsim: ARPC does not verify")

// ErrScript is an issuer script template that does not parse.
var ErrScript = errors.New("cardsim: malformed issuer script")

func commonSessionKey(mk []byte, r [8]byte) ([]byte, error) {
	if len(mk) != 16 {
		return nil, errors.New("cardsim: master key must be 16 bytes")
	}
	tdes, err := des.NewTripleDESCipher(cat(mk, mk[:8]))
	if err != nil {
		return nil, err
	}
	f1, f2 := r, r
	f1[2], f2[2] = 0xF0, 0x0F
	sk := make([]byte, 16)
	tdes.Encrypt(sk[:8], f1[:])
	tdes.Encrypt(sk[8:], f2[:])
	return sk, nil
}

// SessionKey is the AC session key ARQC uses (EMV common session key
// derivation with R = ATC || 00 00 00 00 00 00), the key of the ARPC too.
func SessionKey(mk []byte, atc uint16) ([]byte, error) {
	return commonSessionKey(mk, [8]byte{byte(atc >> 8), byte(atc)})
}

// ARPC is method 1: DES3(SessionKey(mk, atc))[arqc XOR (arc || 00..00)].
// arc is the authorisation response code as it goes in 8A (two ASCII
// characters, "00" is 30 30).
func ARPC(mk []byte, atc uint16, arqc, arc []byte) ([]byte, error) {
	if len(arqc) != 8 || len(arc) != 2 {
		return nil, errors.New("cardsim: ARPC wants an 8-byte ARQC and a 2-byte ARC")
	}
	sk, err := SessionKey(mk, atc)
	if err != nil {
		return nil, err
	}
	tdes, err := des.NewTripleDESCipher(cat(sk, sk[:8]))
	if err != nil {
		return nil, err
	}
	y := append([]byte(nil), arqc...)
	y[0] ^= arc[0]
	y[1] ^= arc[1]
	out := make([]byte, 8)
	tdes.Encrypt(out, y)
	return out, nil
}

// IssuerAuthData is the value of tag 91 a host returns: ARPC || ARC.
func IssuerAuthData(mk []byte, atc uint16, arqc, arc []byte) ([]byte, error) {
	a, err := ARPC(mk, atc, arqc, arc)
	if err != nil {
		return nil, err
	}
	return cat(a, arc), nil
}

// VerifyIssuerAuth checks 91 (ARPC || ARC, 10 bytes) against the ARQC the
// card produced at atc. It is the card's check, exported so a test can run
// it on what a host sent. The error names no value.
func VerifyIssuerAuth(mk []byte, atc uint16, arqc, data91 []byte) error {
	if len(data91) != 10 {
		return fmt.Errorf("%w: 91 is %d bytes, method 1 has 10", ErrARPC, len(data91))
	}
	want, err := ARPC(mk, atc, arqc, data91[8:])
	if err != nil {
		return err
	}
	if subtle.ConstantTimeCompare(want, data91[:8]) != 1 {
		return ErrARPC
	}
	return nil
}

// ScriptSessionKey is the secure-messaging integrity session key: EMV common
// session key derivation from the script MAC master key with R = the ARQC.
func ScriptSessionKey(mkSMI, arqc []byte) ([]byte, error) {
	if len(arqc) != 8 {
		return nil, errors.New("cardsim: script key wants an 8-byte ARQC")
	}
	return commonSessionKey(mkSMI, [8]byte(arqc))
}

// ScriptMAC is the 4-byte MAC of a script command: header is CLA INS P1 P2
// (4 bytes), data the plaintext command data (may be empty); Lc in the MAC
// input is len(data) + ScriptMACLen, as it is on the wire.
func ScriptMAC(mkSMI []byte, atc uint16, arqc, header, data []byte) ([]byte, error) {
	if len(header) != 4 || len(data)+ScriptMACLen > 255 {
		return nil, errors.New("cardsim: script MAC wants a 4-byte header and at most 251 bytes of data")
	}
	sk, err := ScriptSessionKey(mkSMI, arqc)
	if err != nil {
		return nil, err
	}
	in := cat(header, []byte{byte(len(data) + ScriptMACLen), byte(atc >> 8), byte(atc)}, arqc, data)
	m, err := retailMAC(sk, in)
	if err != nil {
		return nil, err
	}
	return m[:ScriptMACLen], nil
}

// ScriptCommand is a complete issuer script command APDU: header, Lc, data
// and its MAC, as a host puts it in tag 86.
func ScriptCommand(mkSMI []byte, atc uint16, arqc, header, data []byte) ([]byte, error) {
	m, err := ScriptMAC(mkSMI, atc, arqc, header, data)
	if err != nil {
		return nil, err
	}
	return cat(header, []byte{byte(len(data) + len(m))}, data, m), nil
}

// Script is one issuer script template (71 before, 72 after the second
// GENERATE AC; EMV Book 3 §10.10): its identifier 9F18 (optional) and its
// commands (86), in order.
type Script struct {
	Template byte // 0x71 or 0x72
	ID       []byte
	Commands [][]byte
}

// ParseIssuerScripts returns the 71 and 72 templates of an authorisation
// response's field 55 (or any TLV list), in the order they appear. Other
// objects are skipped. A template must hold only 9F18 (4 bytes, at most
// once) and 86 objects, each a command APDU of at least 5 bytes whose Lc
// matches; anything else is ErrScript, and the error says where, never what.
func ParseIssuerScripts(field55 []byte) ([]Script, error) {
	objs, err := emv.DecodeTLV(field55)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrScript, err)
	}
	var out []Script
	for i, o := range objs {
		if o.Tag != 0x71 && o.Tag != 0x72 {
			continue
		}
		s := Script{Template: byte(o.Tag)}
		for _, c := range o.Children {
			switch c.Tag {
			case 0x9F18:
				if s.ID != nil || len(c.Value) != 4 {
					return nil, fmt.Errorf("%w: object %d: 9F18", ErrScript, i)
				}
				s.ID = c.Value
			case 0x86:
				v := c.Value
				if len(v) < 5 || int(v[4]) != len(v)-5 {
					return nil, fmt.Errorf("%w: object %d: command %d", ErrScript, i, len(s.Commands)+1)
				}
				s.Commands = append(s.Commands, v)
			default:
				return nil, fmt.Errorf("%w: object %d: unexpected %v", ErrScript, i, c.Tag)
			}
		}
		out = append(out, s)
	}
	return out, nil
}

// EncodeScript renders a script template: 71/72 { 9F18 id, 86 cmd ... }.
func EncodeScript(s Script) []byte {
	var body []byte
	if s.ID != nil {
		body = emv.EncodeTLV(body, 0x9F18, s.ID)
	}
	for _, c := range s.Commands {
		body = emv.EncodeTLV(body, 0x86, c)
	}
	return emv.EncodeTLV(nil, emv.Tag(s.Template), body)
}
