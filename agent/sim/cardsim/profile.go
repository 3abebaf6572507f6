// Package cardsim is a virtual UnionPay (PBOC) chip card: it answers the EMV
// command set — SELECT of PSE and applications, READ RECORD, GET PROCESSING
// OPTIONS, GENERATE AC with a real 3DES ARQC, GET RESPONSE — from a profile
// file, with T=0 quirks (61XX, 6CXX) and faults (mute card, wrong status
// words, truncated TLV, card pulled) on demand.
//
// The same card serves in-process tests (AsCard, a cardreader.Card) and real
// pcscd through vsmartcard's vpcd (Plug, vpcd's TCP protocol on loopback), so
// the EMV flow is exercised identically with and without the PC/SC stack.
// It is pure Go: the card side needs no PC/SC library.
//
// A profile with an oda section adds offline data authentication (EMV Book
// 2): the issuer and ICC certificates that cmd/mkcerts generates into
// testdata/pki under the TEST-ONLY CA of agent/sim/testca, and SDA (93),
// DDA (INTERNAL AUTHENTICATE), CDA (GENERATE AC P1 bit 5) or qPBOC (the
// cryptogram in the GPO answer, fDDA offline) on the card side.
package cardsim

import (
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/posagent/posagent/agent/card/emv"
)

// Profile describes a card. Hex fields are hex strings (spaces allowed); the
// YAML keys are the lower-case field names shown in the tags.
type Profile struct {
	Name string `yaml:"name"`
	// ATR decides the protocol pcscd uses: 3B6800000073C84012009000 is T=0,
	// 3B800181 (the default) T=1.
	ATR           string `yaml:"atr"`
	PAN           string `yaml:"pan"`
	Seq           string `yaml:"seq"`            // 5F34, two digits
	Cardholder    string `yaml:"cardholder"`     // 5F20, ASCII
	CardholderExt string `yaml:"cardholder_ext"` // 9F0B, written in UTF-8 here, GB18030 on the card
	Expiry        string `yaml:"expiry"`         // 5F24 YYMMDD
	Effective     string `yaml:"effective"`      // 5F25 YYMMDD
	ServiceCode   string `yaml:"service_code"`   // track 2, three digits
	// PSE: the card has a 1PAY.SYS.DDF01 directory listing its applications.
	PSE bool `yaml:"pse"`
	// PPSE: the card also answers 2PAY.SYS.DDF01 (contactless interface).
	PPSE bool `yaml:"ppse"`
	// Key is the 16-byte (2-key 3DES) application cryptogram master key the
	// ARQC session keys derive from (see ARQC).
	Key string `yaml:"key"`
	// MACKey is the 16-byte issuer script MAC master key (MK_SMI, see
	// ScriptMAC); empty means Key (one key for both, as the shipped test
	// cards have).
	MACKey string `yaml:"mac_key"`
	// CVMList is the CVM list 8E (hex); empty means DefaultCVMList.
	CVMList string `yaml:"cvm_list"`
	// DeclineAfterApproval is a card risk rule that answers every second
	// GENERATE AC with an AAC, even when the host approved and authenticated
	// itself: the "card declined after approval" a terminal must reverse.
	DeclineAfterApproval bool `yaml:"decline_after_approval"`
	// RequireIssuerAuth makes the card decline (AAC) an online approval
	// when the issuer was not authenticated at all (no 91 from the host).
	RequireIssuerAuth bool          `yaml:"require_issuer_auth"`
	ATC               uint16        `yaml:"atc"` // last ATC used; GENERATE AC increments first
	Applications      []Application `yaml:"applications"`
	// Records lays out the data objects in files; nil means DefaultRecords.
	// Every record listed is in the AFL.
	Records []Record `yaml:"records"`
	T0      T0       `yaml:"t0"`
	Faults  []Fault  `yaml:"faults"`
	// ODA gives the card offline data authentication: certificates in its
	// records and the AIP bit of its method; nil keeps the card as it was.
	ODA *ODA `yaml:"oda"`

	dir string // the profile file's directory: ODA paths are relative to it
}

// ODA methods (ODA.Method).
const (
	ODASDA   = "sda"   // static data authentication: 93 in the records, AIP 40
	ODADDA   = "dda"   // dynamic: INTERNAL AUTHENTICATE signs the DDOL data, AIP 20
	ODACDA   = "cda"   // combined DDA/AC generation: GENERATE AC P1 bit 5, AIP 01
	ODAQPBOC = "qpboc" // contactless: cryptogram in the GPO answer, fDDA when offline, AIP 20
)

// ODA is the offline data authentication a card performs.
type ODA struct {
	Method string `yaml:"method"`
	// CAPKIndex is 8F, the index of the CA key (under the AID's RID) that
	// signed the issuer certificate — or, in a broken card, another one.
	CAPKIndex string `yaml:"capk_index"`
	// Certs is the generated certificate file (testdata/pki/NAME.yaml),
	// relative to the profile file; mkcerts writes it.
	Certs string `yaml:"certs"`
	// SignKey is the RSA key the card signs dynamic data with; empty means
	// the ICC key its certificate certifies (a broken card names another).
	SignKey string `yaml:"sign_key"`
	// DDOL is 9F49 (hex); empty means DefaultDDOL.
	DDOL string `yaml:"ddol"`
	// Offline lets a qPBOC card approve offline (TC with fDDA) when the
	// reader's TTQ does not require an online cryptogram.
	Offline bool `yaml:"offline"`
}

// DefaultDDOL asks for the terminal's unpredictable number only.
const DefaultDDOL = "9F3704"

// Application is one payment application.
type Application struct {
	AID      string `yaml:"aid"`
	Label    string `yaml:"label"`
	Priority int    `yaml:"priority"` // 87, 0 = none
	PDOL     string `yaml:"pdol"`     // DOL hex; empty = DefaultPDOL, "-" = no PDOL
	CDOL1    string `yaml:"cdol1"`    // DOL hex; empty = DefaultCDOL1
	// CDOL2 is the second GENERATE AC's DOL (8D, hex); empty means
	// DefaultCDOL2, or DefaultCDOL2IssuerAuth when IssuerAuth is "cdol2".
	CDOL2 string `yaml:"cdol2"`
	// IssuerAuth is how the card authenticates the issuer's ARPC:
	// IssuerAuthExternal (the default: EXTERNAL AUTHENTICATE, the AIP says
	// so) or IssuerAuthCDOL2 (91 in the CDOL2 data of the second GENERATE AC).
	IssuerAuth string `yaml:"issuer_auth"`
	// GPOFormat is 1 (tag 80, the default) or 2 (tag 77).
	GPOFormat int `yaml:"gpo_format"`
}

// Record is one record of a file (SFI 1–10) and the tags it carries.
type Record struct {
	SFI    int      `yaml:"sfi"`
	Record int      `yaml:"record"`
	Tags   []string `yaml:"tags"`
	// ODA puts the record in the static data to be authenticated (the AFL
	// counts it in byte 4 of its entry).
	ODA bool `yaml:"oda"`
}

// T0 selects the T=0 procedure quirks pcscd leaves to the application.
type T0 struct {
	// GetResponse: every response with data is announced as 61XX and must be
	// fetched with GET RESPONSE (in chunks of at most Chunk bytes when set).
	GetResponse bool `yaml:"get_response"`
	Chunk       int  `yaml:"chunk"`
	// WrongLength: READ RECORD with a Le other than the exact record length
	// answers 6CXX first.
	WrongLength bool `yaml:"wrong_length"`
}

// Fault injects a failure at the Nth (1-based, default 1) command of a kind.
type Fault struct {
	// At: select_pse, read_pse, select_aid, gpo, read_record, generate_ac,
	// generate_ac2 (the second GENERATE AC), external_authenticate, script
	// (an issuer script command), get_data, internal_authenticate.
	At string `yaml:"at"`
	N  int    `yaml:"n"`
	// Kind: mute (no answer), status (answer SW only), truncate (cut the
	// response data in the middle of a TLV), remove (card pulled out).
	Kind string `yaml:"kind"`
	SW   string `yaml:"sw"` // for status
}

// Defaults for a UnionPay contact card.
const (
	ATRT1        = "3B800181"
	ATRT0        = "3B6800000073C84012009000"
	DefaultPDOL  = "9F66049F02069F03069F1A0295055F2A029A039C019F3704"
	DefaultCDOL1 = "9F02069F03069F1A0295055F2A029A039C019F37048202"
	// DefaultCDOL2 asks for the authorisation response code, the TVR and a
	// new unpredictable number (8A 95 9F37); DefaultCDOL2IssuerAuth adds the
	// issuer authentication data 91 (ARPC || ARC, 10 bytes), as PBOC cards
	// that authenticate the issuer inside the second GENERATE AC do.
	DefaultCDOL2           = "8A0295059F3704"
	DefaultCDOL2IssuerAuth = "8A02910A95059F3704"
	// DefaultCVMList: no amounts; enciphered PIN online if the terminal
	// supports it (42 03, apply the next rule on failure), else signature
	// (1E 03), else no CVM (1F 00).
	DefaultCVMList = "0000000000000000" + "4203" + "1E03" + "1F00"
	// DefaultKey is the test master key of the shipped profiles. It is a test
	// key, not a secret: never load it on a real terminal.
	DefaultKey = "0123456789ABCDEFFEDCBA9876543210"
)

// How a card authenticates the issuer (Application.IssuerAuth).
const (
	IssuerAuthExternal = "external"
	IssuerAuthCDOL2    = "cdol2"
)

// DefaultRecords is a typical PBOC layout: track 2 and name in SFI 1, the
// card data objects in SFI 2 (two records), read with an AFL of 3 records.
var DefaultRecords = []Record{
	{SFI: 1, Record: 1, Tags: []string{"57", "5F20", "9F1F"}},
	{SFI: 2, Record: 1, Tags: []string{"5A", "5F24", "5F25", "5F34", "5F28", "9F07", "9F08"}},
	{SFI: 2, Record: 2, Tags: []string{"8C", "8D", "8E", "9F0D", "9F0E", "9F0F", "9F0B"}},
}

var faultSteps = map[string]bool{"select_pse": true, "read_pse": true, "select_aid": true,
	"gpo": true, "read_record": true, "generate_ac": true, "generate_ac2": true,
	"external_authenticate": true, "script": true, "get_data": true, "internal_authenticate": true}

// ErrProfile wraps every profile validation error.
var ErrProfile = errors.New("cardsim: invalid profile")

// LoadProfile reads and validates a YAML profile file.
func LoadProfile(path string) (*Profile, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	p, err := ParseProfile(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	p.dir = filepath.Dir(path)
	return p, nil
}

// ParseProfile decodes YAML (unknown keys are errors: a typo must not silently
// produce a different card) and validates it.
func ParseProfile(b []byte) (*Profile, error) {
	var p Profile
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	dec.KnownFields(true)
	if err := dec.Decode(&p); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrProfile, err)
	}
	if err := p.validate(); err != nil {
		return nil, err
	}
	return &p, nil
}

func (p *Profile) validate() error {
	bad := func(f string, a ...any) error { return fmt.Errorf("%w: %s", ErrProfile, fmt.Sprintf(f, a...)) }
	if len(p.PAN) < 12 || len(p.PAN) > 19 || strings.Trim(p.PAN, "0123456789") != "" {
		return bad("pan must be 12 to 19 digits")
	}
	if len(p.Expiry) != 6 || strings.Trim(p.Expiry, "0123456789") != "" {
		return bad("expiry must be YYMMDD")
	}
	if p.ServiceCode == "" {
		p.ServiceCode = "220"
	}
	if p.Effective == "" {
		p.Effective = "200101"
	}
	if p.Key == "" {
		p.Key = DefaultKey
	}
	if k, err := unhex(p.Key); err != nil || len(k) != 16 {
		return bad("key must be 16 bytes of hex")
	}
	if p.MACKey == "" {
		p.MACKey = p.Key
	}
	if k, err := unhex(p.MACKey); err != nil || len(k) != 16 {
		return bad("mac_key must be 16 bytes of hex")
	}
	if p.CVMList == "" {
		p.CVMList = DefaultCVMList
	}
	if b, err := unhex(p.CVMList); err != nil || len(b) < 8 || len(b)%2 != 0 {
		return bad("cvm_list must be X and Y (8 bytes) and 2-byte rules, in hex")
	}
	if p.ATR == "" {
		p.ATR = ATRT1
	}
	if _, err := unhex(p.ATR); err != nil {
		return bad("atr: %v", err)
	}
	if len(p.Applications) == 0 {
		return bad("no applications")
	}
	for i, a := range p.Applications {
		if b, err := unhex(a.AID); err != nil || len(b) < 5 || len(b) > 16 {
			return bad("application %d: aid must be 5 to 16 bytes of hex", i)
		}
		if a.PDOL == "" {
			p.Applications[i].PDOL = DefaultPDOL
		}
		if a.CDOL1 == "" {
			p.Applications[i].CDOL1 = DefaultCDOL1
		}
		switch a.IssuerAuth {
		case "":
			p.Applications[i].IssuerAuth = IssuerAuthExternal
		case IssuerAuthExternal, IssuerAuthCDOL2:
		default:
			return bad("application %d: issuer_auth %q: want external or cdol2", i, a.IssuerAuth)
		}
		if a.CDOL2 == "" {
			p.Applications[i].CDOL2 = DefaultCDOL2
			if a.IssuerAuth == IssuerAuthCDOL2 {
				p.Applications[i].CDOL2 = DefaultCDOL2IssuerAuth
			}
		}
		for _, d := range []string{p.Applications[i].PDOL, p.Applications[i].CDOL1, p.Applications[i].CDOL2} {
			if _, err := unhex(strings.TrimPrefix(d, "-")); err != nil {
				return bad("application %d: DOL: %v", i, err)
			}
		}
		cdol2, _ := unhex(p.Applications[i].CDOL2)
		dol, err := emv.ParseDOL(cdol2)
		if err != nil {
			return bad("application %d: cdol2: %v", i, err)
		}
		var has8A, has91 bool
		for _, e := range dol {
			has8A = has8A || e.Tag == 0x8A && e.Len == 2
			has91 = has91 || e.Tag == 0x91 && e.Len == 10
		}
		if !has8A {
			return bad("application %d: cdol2 must ask for 8A (2 bytes)", i)
		}
		if p.Applications[i].IssuerAuth == IssuerAuthCDOL2 && !has91 {
			return bad("application %d: issuer_auth cdol2 needs 91 (10 bytes) in the cdol2", i)
		}
	}
	if p.Records == nil {
		p.Records = DefaultRecords
	}
	for i, r := range p.Records {
		if r.SFI < 1 || r.SFI > 10 || r.Record < 1 || r.Record > 255 {
			return bad("record %d: sfi 1-10, record 1-255", i)
		}
		for _, t := range r.Tags {
			if r.ODA && odaTags[strings.ToUpper(t)] {
				return bad("record %d: %s cannot be in a record for offline data authentication", i, t)
			}
		}
	}
	if err := p.validateODA(); err != nil {
		return err
	}
	for i, f := range p.Faults {
		if !faultSteps[f.At] {
			return bad("fault %d: unknown step %q", i, f.At)
		}
		switch f.Kind {
		case "mute", "truncate", "remove":
		case "status":
			if b, err := unhex(f.SW); err != nil || len(b) != 2 {
				return bad("fault %d: sw must be 4 hex digits", i)
			}
		default:
			return bad("fault %d: unknown kind %q", i, f.Kind)
		}
		if f.N == 0 {
			p.Faults[i].N = 1
		}
	}
	return nil
}

func unhex(s string) ([]byte, error) {
	return hex.DecodeString(strings.Join(strings.Fields(s), ""))
}

// Open loads the profile at path, lets edit adjust it (a fault, another
// name) when edit is not nil, and returns the card.
func Open(path string, edit func(*Profile)) (*Card, error) {
	p, err := LoadProfile(path)
	if err != nil {
		return nil, err
	}
	if edit != nil {
		edit(p)
	}
	return New(p)
}

// odaTags must stay out of the static data to be authenticated: the
// certificate objects are signed over it, and 9F69 changes with every
// transaction.
var odaTags = map[string]bool{"90": true, "92": true, "9F32": true, "9F46": true, "9F47": true,
	"9F48": true, "93": true, "8F": true, "9F69": true}

func (p *Profile) validateODA() error {
	o := p.ODA
	if o == nil {
		return nil
	}
	bad := func(f string, a ...any) error {
		return fmt.Errorf("%w: oda: %s", ErrProfile, fmt.Sprintf(f, a...))
	}
	switch o.Method {
	case ODASDA, ODADDA, ODACDA, ODAQPBOC:
	default:
		return bad("method %q: want sda, dda, cda or qpboc", o.Method)
	}
	if b, err := unhex(o.CAPKIndex); err != nil || len(b) != 1 {
		return bad("capk_index must be one byte of hex")
	}
	if len(p.Applications) != 1 {
		// The ICC certificate signs one AIP: a card with two applications
		// would need a certificate set for each.
		return bad("an ODA card has exactly one application")
	}
	if o.DDOL == "" {
		o.DDOL = DefaultDDOL
	}
	if b, err := unhex(o.DDOL); err != nil || len(b) == 0 {
		return bad("ddol must be a DOL in hex")
	} else if _, err := emv.ParseDOL(b); err != nil {
		return bad("ddol: %v", err)
	}
	if o.Method == ODAQPBOC {
		for i, a := range p.Applications {
			pdol, _ := unhex(a.PDOL)
			if a.PDOL == "-" || dolLen(pdol) == 0 {
				return bad("application %d: a qpboc card needs a PDOL (with 9F66)", i)
			}
		}
	}
	return nil
}
