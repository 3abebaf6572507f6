package emv

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/posagent/posagent/agent/card/oda"
	"github.com/posagent/posagent/provisioning"
)

// UnionPay application identifiers (PROTOCOLS.md §2). The three that say
// debit or credit are the binding rules' (provisioning.CardTypeOfAID).
const (
	AIDDebit       = provisioning.AIDUnionPayDebit
	AIDCredit      = provisioning.AIDUnionPayCredit
	AIDQuasiCredit = provisioning.AIDUnionPayQuasiCredit
	AIDECash       = "A000000333010106"
	AIDUSCommon    = "A000000333010108"
	// RIDUnionPay is the registered application provider id of every
	// UnionPay AID.
	RIDUnionPay = provisioning.UnionPayRID
)

// DefaultAIDs is the terminal's application list in preference order. It
// includes the international schemes on purpose: a foreign card must be read
// so the binding rules can reject it by name ("not a UnionPay card") rather
// than fail as "no application".
var DefaultAIDs = []string{AIDDebit, AIDCredit, AIDQuasiCredit, AIDECash, AIDUSCommon,
	"A0000000031010", // Visa
	"A0000000041010", // Mastercard
	"A0000000651010", // JCB
}

// Terminal is the terminal-side data the card asks for in its PDOL and CDOL1,
// and the terminal's application list. Fields left zero take DefaultTerminal's
// values, so the zero Terminal is a Chinese contact terminal.
type Terminal struct {
	// AIDs is the terminal's application list (hex), in preference order.
	// An entry allows partial selection (a card AID that extends it
	// matches) unless Exact names it.
	AIDs []string
	// Exact are the entries of AIDs (hex, upper case) that match only a card
	// AID equal to them: the acquirer's application selection indicator
	// (DF01) said so.
	Exact map[string]bool
	// Contactless selects PPSE (2PAY.SYS.DDF01) instead of PSE and the AID list.
	Contactless bool
	// Country (9F1A) and Currency (5F2A): ISO 3166 / ISO 4217 numeric, 4 digits.
	Country, Currency string
	Type              byte   // 9F35 terminal type
	Capabilities      []byte // 9F33, 3 bytes
	AddCapabilities   []byte // 9F40, 5 bytes
	TTQ               []byte // 9F66, 4 bytes: contactless terminal transaction qualifiers
	CVMResults        []byte // 9F34, 3 bytes
	AppVersion        []byte // 9F09, 2 bytes
	SerialNumber      string // 9F1E, 8 characters (the IFD serial)
	// CAPKs are the certification authorities' public keys offline data
	// authentication recovers the issuer's key with: the acquirer's CAPK
	// download (WithCAPKs). None: every method fails for want of the key.
	CAPKs []provisioning.CAPK
	// Revoked are issuer certificates the CAs revoked (RID, CA index,
	// serial): a card presenting one fails its offline data authentication.
	Revoked []oda.Revocation
	// Risk holds the acquirer's risk management parameters per entry of
	// AIDs (hex, upper case), from its IC parameter download: floor limit,
	// random selection and terminal action codes. An application without
	// an entry has floor limit 0, no random selection and zero TACs.
	Risk map[string]RiskParams
	// Rand supplies the unpredictable number 9F37 and the random number of
	// random transaction selection (crypto/rand when nil); a test injects a
	// fixed source to get byte-exact APDUs and a known selection.
	Rand io.Reader
	// Now dates the transaction (9A, 9F21); time.Now when nil.
	Now func() time.Time
}

// RiskParams are one application's terminal risk management and action
// analysis parameters (EMV Book 3 §10.6, §10.7), as the acquirer downloads
// them: amounts in minor units, percentages 0-99, action codes 5 bytes
// (nil when the acquirer sent none).
type RiskParams struct {
	FloorLimit, Threshold            int64
	TargetPercent, MaxTargetPercent  int
	TACDefault, TACDenial, TACOnline []byte
	// DefaultDDOL is the acquirer's DDOL (DF14) for a card without its own
	// (9F49), for INTERNAL AUTHENTICATE.
	DefaultDDOL []byte
	// The contactless reader limits (DF19, DF20, DF21) the qPBOC
	// pre-processing applies; nil: none downloaded, no limit.
	CLFloorLimit, CLTransactionLimit, CVMLimit *int64
}

// DefaultTerminal returns a UnionPay contact terminal in China: country and
// currency 156, and 9F33, 9F35, 9F40 and 9F66 derived from Capabilities
// (attended merchant terminal, online only: 21).
func DefaultTerminal() Terminal {
	return Terminal{
		AIDs:            append([]string(nil), DefaultAIDs...),
		Country:         "0156",
		Currency:        "0156",
		Type:            Capabilities.TerminalType(),
		Capabilities:    Capabilities.TerminalCapabilities(),
		AddCapabilities: Capabilities.AdditionalCapabilities(),
		TTQ:             Capabilities.TTQ(),
		CVMResults:      []byte{0x3F, 0x00, 0x00},
		AppVersion:      []byte{0x00, 0x30},
		SerialNumber:    "POSAGENT",
	}
}

// WithApps is t selecting with the acquirer's downloaded IC parameters:
// their AIDs first, in the host's order, each exact or partial as its DF01
// says, then DefaultAIDs' international schemes, so that a foreign card is
// still read, named and refused by the binding and sale rules rather than
// failing as "no application". 9F09 is the version of the first downloaded
// application that has one. Each application's floor limit, random
// selection and action codes go into Risk. No apps leaves t as it is.
func (t Terminal) WithApps(apps []provisioning.AppParams) Terminal {
	if len(apps) == 0 {
		return t
	}
	t.AIDs, t.Exact, t.Risk = nil, map[string]bool{}, map[string]RiskParams{}
	seen, versioned := map[string]bool{}, false
	for _, a := range apps {
		h := strings.ToUpper(hex.EncodeToString(a.AID))
		if len(a.AID) < 5 || len(a.AID) > 16 || seen[h] {
			continue
		}
		seen[h] = true
		t.AIDs = append(t.AIDs, h)
		if !a.PartialMatch {
			t.Exact[h] = true
		}
		t.Risk[h] = RiskParams{FloorLimit: a.FloorLimit, Threshold: a.Threshold,
			TargetPercent: a.TargetPercent, MaxTargetPercent: a.MaxTargetPercent,
			TACDefault: actionCode(a.TACDefault), TACDenial: actionCode(a.TACDenial), TACOnline: actionCode(a.TACOnline),
			DefaultDDOL:  append([]byte(nil), a.DefaultDDOL...),
			CLFloorLimit: a.CLFloorLimit, CLTransactionLimit: a.CLTransactionLimit, CVMLimit: a.CVMLimit}
		if len(a.Version) == 2 && !versioned {
			t.AppVersion, versioned = append([]byte(nil), a.Version...), true
		}
	}
	for _, h := range DefaultAIDs {
		if !strings.HasPrefix(h, "A000000333") && !seen[h] {
			t.AIDs = append(t.AIDs, h)
		}
	}
	return t
}

// actionCode is a copy of a 5-byte action code; anything else is none.
func actionCode(b []byte) []byte {
	if len(b) != 5 {
		return nil
	}
	return append([]byte(nil), b...)
}

// WithCAPKs is t authenticating cards offline with the acquirer's CA
// public keys; none leaves t as it is.
func (t Terminal) WithCAPKs(capks []provisioning.CAPK) Terminal {
	if len(capks) > 0 {
		t.CAPKs = capks
	}
	return t
}

// matches reports whether card AID aid matches terminal AID h (hex).
func (t Terminal) matches(h string, aid []byte) bool {
	ta, err := hex.DecodeString(h)
	if err != nil || len(ta) == 0 {
		return false
	}
	if t.Exact[strings.ToUpper(h)] {
		return bytes.Equal(aid, ta)
	}
	return bytes.HasPrefix(aid, ta)
}

// withDefaults fills the zero fields from DefaultTerminal.
func (t Terminal) withDefaults() Terminal {
	d := DefaultTerminal()
	if len(t.AIDs) == 0 {
		t.AIDs = d.AIDs
	}
	if t.Country == "" {
		t.Country = d.Country
	}
	if t.Currency == "" {
		t.Currency = d.Currency
	}
	if t.Type == 0 {
		t.Type = d.Type
	}
	if t.Capabilities == nil {
		t.Capabilities = d.Capabilities
	}
	if t.AddCapabilities == nil {
		t.AddCapabilities = d.AddCapabilities
	}
	if t.TTQ == nil {
		t.TTQ = d.TTQ
	}
	if t.CVMResults == nil {
		t.CVMResults = d.CVMResults
	}
	if t.AppVersion == nil {
		t.AppVersion = d.AppVersion
	}
	if t.SerialNumber == "" {
		t.SerialNumber = d.SerialNumber
	}
	return t
}

// Transaction is what is being done with the card: amounts in minor units
// (fen) and the transaction type 9C (00 goods and services, 31 inquiry).
type Transaction struct {
	Amount, Other int64
	Type          byte
}

// terminalData builds the terminal's data objects for DOL filling.
func (t Terminal) terminalData(txn Transaction) (map[Tag][]byte, error) {
	now := time.Now
	if t.Now != nil {
		now = t.Now
	}
	rnd := t.Rand
	if rnd == nil {
		rnd = rand.Reader
	}
	un := make([]byte, 4)
	if _, err := io.ReadFull(rnd, un); err != nil {
		return nil, fmt.Errorf("emv: unpredictable number: %w", err)
	}
	ts := now()
	d := map[Tag][]byte{
		0x9F02: bcdNumber(txn.Amount, 6),
		0x9F03: bcdNumber(txn.Other, 6),
		0x9C:   {txn.Type},
		0x9A:   bcdDigits(ts.Format("060102")),
		0x9F21: bcdDigits(ts.Format("150405")),
		0x9F37: un,
		0x95:   make([]byte, 5), // TVR: every phase sets its bits (phases.go, cvm.go, completion.go)
		0x9B:   make([]byte, 2), // TSI: likewise
		0x9F35: {t.Type},
	}
	for tag, hexNum := range map[Tag]string{0x9F1A: t.Country, 0x5F2A: t.Currency} {
		b := bcdDigits(hexNum)
		if b == nil || len(b) != 2 {
			return nil, fmt.Errorf("emv: terminal %v must be 4 digits", tag)
		}
		d[tag] = b
	}
	for tag, v := range map[Tag][]byte{0x9F33: t.Capabilities, 0x9F40: t.AddCapabilities,
		0x9F66: t.TTQ, 0x9F34: t.CVMResults, 0x9F09: t.AppVersion} {
		if v != nil {
			d[tag] = v
		}
	}
	if t.SerialNumber != "" {
		d[0x9F1E] = []byte(t.SerialNumber)
	}
	return d, nil
}

// numericTags are the format-n objects a DOL may ask for: padded and truncated
// on the left, where the other formats are on the right (EMV Book 3 §5.4).
var numericTags = map[Tag]bool{0x9F02: true, 0x9F03: true, 0x9F1A: true, 0x5F2A: true,
	0x9A: true, 0x9C: true, 0x9F21: true, 0x9F41: true, 0x5F36: true, 0x9F3C: true}

// fillDOL concatenates the values the DOL names, each fitted to its length;
// unknown objects are zeros, as EMV requires.
func fillDOL(dol []DOLEntry, data ...map[Tag][]byte) []byte {
	var out []byte
	for _, e := range dol {
		var v []byte
		for _, m := range data {
			if x, ok := m[e.Tag]; ok {
				v = x
				break
			}
		}
		field := make([]byte, e.Len)
		switch {
		case numericTags[e.Tag] && len(v) >= e.Len:
			copy(field, v[len(v)-e.Len:])
		case numericTags[e.Tag]:
			copy(field[e.Len-len(v):], v)
		default:
			copy(field, v)
		}
		out = append(out, field...)
	}
	return out
}

// bcdNumber encodes v (negative is 0) as n BCD bytes, left-padded.
func bcdNumber(v int64, n int) []byte {
	if v < 0 {
		v = 0
	}
	b := make([]byte, n)
	for i := n - 1; i >= 0 && v > 0; i-- {
		b[i] = byte(v%10) | byte(v/10%10)<<4
		v /= 100
	}
	return b
}

// bcdDigits packs an even number of decimal digits; nil if s is not that.
func bcdDigits(s string) []byte {
	if len(s)%2 != 0 || strings.Trim(s, "0123456789") != "" {
		return nil
	}
	b, err := hex.DecodeString(s)
	if err != nil {
		return nil
	}
	return b
}

// bcdToDigits unpacks BCD, stopping at the first F nibble (EMV pads with F);
// ok is false on any other non-digit nibble.
func bcdToDigits(b []byte) (string, bool) {
	var sb strings.Builder
	for _, c := range b {
		for _, n := range []byte{c >> 4, c & 0x0F} {
			if n == 0x0F {
				return sb.String(), true
			}
			if n > 9 {
				return "", false
			}
			sb.WriteByte('0' + n)
		}
	}
	return sb.String(), true
}
