package emv

import (
	"encoding/json"
	"fmt"
	"strings"
)

// tagNames names the data objects a PBOC read meets, for traces and for
// `posctl decode tlv`.
var tagNames = map[Tag]string{
	0x4F: "Application Identifier (ADF Name)", 0x50: "Application Label",
	0x56: "Track 1 Data", 0x57: "Track 2 Equivalent Data", 0x5A: "Application PAN",
	0x5F20: "Cardholder Name", 0x5F24: "Application Expiration Date",
	0x5F25: "Application Effective Date", 0x5F28: "Issuer Country Code",
	0x5F2A: "Transaction Currency Code", 0x5F2D: "Language Preference",
	0x5F34: "PAN Sequence Number", 0x61: "Application Template", 0x6F: "FCI Template",
	0x70: "Record Template", 0x77: "Response Message Template Format 2",
	0x80: "Response Message Template Format 1", 0x82: "Application Interchange Profile",
	0x83: "Command Template", 0x84: "DF Name", 0x87: "Application Priority Indicator",
	0x88: "Short File Identifier", 0x8C: "CDOL1", 0x8D: "CDOL2", 0x8E: "CVM List",
	0x94: "Application File Locator", 0x95: "Terminal Verification Results",
	0x9A: "Transaction Date", 0x9B: "Transaction Status Information",
	0x9F13: "Last Online ATC Register", 0x9F14: "Lower Consecutive Offline Limit",
	0x9F1B: "Terminal Floor Limit", 0x9F23: "Upper Consecutive Offline Limit", 0x9C: "Transaction Type", 0xA5: "FCI Proprietary Template",
	0x9F02: "Amount, Authorised", 0x9F03: "Amount, Other", 0x9F07: "Application Usage Control",
	0x9F08: "Application Version Number (card)", 0x9F09: "Application Version Number (terminal)",
	0x9F0B: "Cardholder Name Extended", 0x9F0D: "IAC Default", 0x9F0E: "IAC Denial",
	0x9F0F: "IAC Online", 0x9F10: "Issuer Application Data", 0x9F11: "Issuer Code Table Index",
	0x9F12: "Application Preferred Name", 0x9F1A: "Terminal Country Code",
	0x9F1E: "IFD Serial Number", 0x9F1F: "Track 1 Discretionary Data", 0x9F20: "Track 2 Discretionary Data",
	0x9F21: "Transaction Time",
	0x9F26: "Application Cryptogram", 0x9F27: "Cryptogram Information Data",
	0x9F33: "Terminal Capabilities", 0x9F34: "CVM Results", 0x9F35: "Terminal Type",
	0x9F36: "Application Transaction Counter", 0x9F37: "Unpredictable Number",
	0x9F38: "PDOL", 0x9F40: "Additional Terminal Capabilities", 0x9F41: "Transaction Sequence Counter",
	0x9F4E: "Merchant Name and Location", 0x9F63: "Card Product Identification",
	0x9F66: "Terminal Transaction Qualifiers", 0x9F6B: "Track 2 Data", 0xBF0C: "FCI Issuer Discretionary Data",
}

// sensitive objects are shown masked: cardholder data (PCI DSS 3.3/3.4) —
// the PAN, the tracks and their discretionary data, the cardholder's name.
var sensitive = map[Tag]bool{
	0x56: true, 0x57: true, 0x5A: true, 0x5F20: true, 0x9F0B: true,
	0x9F1F: true, 0x9F20: true, 0x9F6B: true,
}

// TagName is the EMV name of t, or "" when unknown.
func TagName(t Tag) string { return tagNames[t] }

// Sensitive reports whether t carries cardholder data that every
// description of EMV data masks unless revealing explicitly: the PAN (5A),
// the tracks (56, 57, 9F6B) and their discretionary data (9F1F, 9F20), the
// cardholder's name (5F20, 9F0B). Field 55 of a host message is described
// with the same list (agent/acquirer).
func Sensitive(t Tag) bool { return sensitive[t] }

// Node is a TLV object described for people: tag, name, hex value (masked
// for cardholder data), what the value means where Explain knows, and
// children. It marshals to JSON as is.
type Node struct {
	Tag    string `json:"tag"`
	Name   string `json:"name,omitempty"`
	Len    int    `json:"len"`
	Value  string `json:"value,omitempty"`
	Masked bool   `json:"masked,omitempty"`
	// Meaning names what a TVR, TSI, CVM results or terminal capabilities
	// or type value says (Explain).
	Meaning  string `json:"meaning,omitempty"`
	Children []Node `json:"children,omitempty"`
}

// Describe decodes b into a tree of Nodes. PAN, track and name values are
// replaced by their masked form ("622202*****0128" for 5A, stars otherwise),
// so the output is safe to print or attach to a ticket.
func Describe(b []byte) ([]Node, error) { return describeBytes(b, false) }

// Reveal is Describe with every value in clear, the cardholder data
// included: for a support engineer's own terminal, never for a ticket.
func Reveal(b []byte) ([]Node, error) { return describeBytes(b, true) }

func describeBytes(b []byte, reveal bool) ([]Node, error) {
	objs, err := DecodeTLV(b)
	if err != nil {
		return nil, err
	}
	return describe(objs, reveal), nil
}

func describe(objs []TLV, reveal bool) []Node {
	out := make([]Node, 0, len(objs))
	for _, o := range objs {
		n := Node{Tag: o.Tag.String(), Name: tagNames[o.Tag], Len: len(o.Value)}
		switch {
		case o.Children != nil || o.Tag.Constructed():
			n.Children = describe(o.Children, reveal)
		case sensitive[o.Tag] && !reveal:
			n.Masked = true
			n.Value = maskHex(o.Tag, o.Value)
		default:
			n.Value = Hex(o.Value)
			n.Meaning = Explain(o.Tag, o.Value)
		}
		out = append(out, n)
	}
	return out
}

func maskHex(t Tag, v []byte) string {
	if t == 0x5A {
		if d, ok := bcdToDigits(v); ok && len(d) > 10 {
			return d[:6] + stars(len(d)-10) + d[len(d)-4:]
		}
	}
	return stars(2 * len(v))
}

func stars(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = '*'
	}
	return string(b)
}

// DescribeJSON is Describe rendered as indented JSON.
func DescribeJSON(b []byte) ([]byte, error) {
	n, err := Describe(b)
	if err != nil {
		return nil, err
	}
	return json.MarshalIndent(n, "", "  ")
}

// RevealJSON is Reveal rendered as indented JSON.
func RevealJSON(b []byte) ([]byte, error) {
	n, err := Reveal(b)
	if err != nil {
		return nil, err
	}
	return json.MarshalIndent(n, "", "  ")
}

// Bit names, byte by byte from bit 8 to bit 1; "" is RFU. TVR and TSI as
// EMV 4.4 Book 3 Annex C5/C6 name them (openemv/emv-utils
// src/emv_fields.h), terminal capabilities as Book 4 Annex A2.
var (
	tvrBitNames = [][8]string{
		{"offline data authentication was not performed", "SDA failed", "ICC data missing",
			"card appears on terminal exception file", "DDA failed", "CDA failed", "SDA selected", "XDA selected"},
		{"ICC and terminal have different application versions", "expired application",
			"application not yet effective", "requested service not allowed for card product", "new card", "",
			"biometric performed and successful", "biometric template format not supported"},
		{"cardholder verification was not successful", "unrecognised CVM", "PIN try limit exceeded",
			"PIN entry required and PIN pad not present or not working",
			"PIN entry required, PIN pad present, but PIN was not entered", "online PIN entered (online CVM captured)",
			"biometric required but biometric capture device not working",
			"biometric required, biometric capture device present, but biometric subtype entry was bypassed"},
		{"transaction exceeds floor limit", "lower consecutive offline limit exceeded",
			"upper consecutive offline limit exceeded", "transaction selected randomly for online processing",
			"merchant forced transaction online", "biometric try limit exceeded",
			"a selected biometric type not supported", "XDA signature verification failed"},
		{"default TDOL used", "issuer authentication failed", "script processing failed before final GENERATE AC",
			"script processing failed after final GENERATE AC", "reserved for the EMV contactless specifications",
			"CA ECC key missing", "ECC key recovery failed", "reserved for the EMV contactless specifications"},
	}
	tsiBitNames = [][8]string{
		{"offline data authentication was performed", "cardholder verification was performed",
			"card risk management was performed", "issuer authentication was performed",
			"terminal risk management was performed", "script processing was performed", "", ""},
		{},
	}
	capsBitNames = [][8]string{
		{"manual key entry", "magnetic stripe", "IC with contacts"},
		{"plaintext PIN for ICC verification", "enciphered PIN for online verification", "signature (paper)",
			"enciphered PIN for offline verification", "no CVM required"},
		{"SDA", "DDA", "card capture", "", "CDA"},
	}
)

// cvmNames and cvmConditions name a CVM rule (Book 3 Annex C3).
var (
	cvmNames = map[byte]string{0x00: "fail CVM processing", 0x01: "plaintext PIN verified by ICC",
		0x02: "enciphered PIN verified online", 0x03: "plaintext PIN verified by ICC and signature",
		0x04: "enciphered PIN verified by ICC", 0x05: "enciphered PIN verified by ICC and signature",
		0x1E: "signature", 0x1F: "no CVM required", 0x3F: "no CVM performed"}
	cvmConditions = map[byte]string{0x00: "always", 0x01: "if unattended cash",
		0x02: "if not unattended cash and not manual cash and not purchase with cashback",
		0x03: "if terminal supports the CVM", 0x04: "if manual cash", 0x05: "if purchase with cashback",
		0x06: "if transaction in application currency and under X", 0x07: "if transaction in application currency and over X",
		0x08: "if transaction in application currency and under Y", 0x09: "if transaction in application currency and over Y"}
	cvmResultNames = map[byte]string{0x00: "unknown", 0x01: "failed", 0x02: "successful"}
)

// Explain says in words what a value means for the objects whose bits or
// codes people look up: every bit set in the TVR (95), the TSI (9B) and
// the terminal capabilities (9F33), the CVM results (9F34) and the
// terminal type (9F35). It is "" for other tags and for a value of the
// wrong length; a set RFU bit is named by its position.
func Explain(t Tag, v []byte) string {
	switch t {
	case 0x95:
		return explainBits(tvrBitNames, v)
	case 0x9B:
		return explainBits(tsiBitNames, v)
	case 0x9F33:
		return explainBits(capsBitNames, v)
	case 0x9F34:
		return explainCVMResults(v)
	case 0x9F35:
		return explainTerminalType(v)
	}
	return ""
}

func explainBits(names [][8]string, v []byte) string {
	if len(v) != len(names) {
		return ""
	}
	var out []string
	for i, b := range v {
		for j := range 8 {
			if b&(0x80>>j) == 0 {
				continue
			}
			n := names[i][j]
			if n == "" {
				n = fmt.Sprintf("byte %d bit %d (RFU)", i+1, 8-j)
			}
			out = append(out, n)
		}
	}
	if len(out) == 0 {
		return "no bit set"
	}
	return strings.Join(out, "; ")
}

func explainCVMResults(v []byte) string {
	if len(v) != 3 {
		return ""
	}
	code := v[0] & 0x3F
	name, ok := cvmNames[code]
	if !ok {
		name = fmt.Sprintf("CVM %02X (not an EMV method)", code)
	}
	cond, ok := cvmConditions[v[1]]
	if !ok {
		cond = fmt.Sprintf("condition %02X", v[1])
	}
	if code == cvmNonePerfomed {
		cond = "" // 3F: no rule applied, no condition to speak of
	}
	res, ok := cvmResultNames[v[2]]
	if !ok {
		res = fmt.Sprintf("%02X (RFU)", v[2])
	}
	out := name
	if v[0]&cvmApplyNext != 0 {
		out += " (apply succeeding rule if unsuccessful)"
	}
	if cond != "" {
		out += ", " + cond
	}
	return out + "; result " + res
}

func explainTerminalType(v []byte) string {
	if len(v) != 1 {
		return ""
	}
	op := map[byte]string{1: "financial institution", 2: "merchant", 3: "cardholder"}[v[0]>>4]
	env := map[byte]string{1: "attended, online only", 2: "attended, offline with online capability",
		3: "attended, offline only", 4: "unattended, online only",
		5: "unattended, offline with online capability", 6: "unattended, offline only"}[v[0]&0x0F]
	if op == "" || env == "" {
		return fmt.Sprintf("terminal type %02X (not an EMV type)", v[0])
	}
	return op + " terminal, " + env
}
