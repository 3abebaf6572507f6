package emv

import "encoding/json"

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
	0x9A: "Transaction Date", 0x9C: "Transaction Type", 0xA5: "FCI Proprietary Template",
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
// for cardholder data) and children. It marshals to JSON as is.
type Node struct {
	Tag      string `json:"tag"`
	Name     string `json:"name,omitempty"`
	Len      int    `json:"len"`
	Value    string `json:"value,omitempty"`
	Masked   bool   `json:"masked,omitempty"`
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
