// Package emv reads a UnionPay (PBOC 3.0 / EMV) chip card through a
// cardreader.Card: application selection (PSE 1PAY.SYS.DDF01 with its
// directory, the terminal's AID list when the card has no PSE, PPSE
// 2PAY.SYS.DDF01 for contactless), GET PROCESSING OPTIONS with the PDOL filled
// from terminal data, READ RECORD for exactly the AFL's records, the
// terminal's own phases (offline data authentication, processing
// restrictions, terminal risk management, terminal action analysis:
// phases.go) recorded in the TVR and TSI, and GENERATE AC with CDOL1 asking
// for an ARQC, or an AAC when the action codes decline; with CDA the card
// signs that answer and the kernel verifies it (cda.go). A contactless
// (qPBOC) card answers its cryptogram in GET PROCESSING OPTIONS and gets
// no GENERATE AC (contactless.go). What the terminal
// tells the card it is (9F33, 9F35, 9F40, 9F66) comes from one table,
// Capabilities. The result carries what the binding and the
// test sale need: PAN, PAN sequence, expiry, cardholder name, track-2
// equivalent (in memory only), label, card type and the field-55 TLV set.
//
// A sale goes further (StartPayment, Source.Pay): cardholder verification
// from the card's CVM list before the first GENERATE AC, then, with the host's
// answer, online completion (Payment.Complete): issuer authentication, issuer
// scripts and the second GENERATE AC. ReadData reads without a cryptogram.
//
// The package depends on the cardreader interfaces only, so it builds with
// CGO_ENABLED=0; the PC/SC backend is plugged in by the composition root.
// Nothing here logs or formats a full PAN or track data: pan.PAN and Track2
// mask themselves, and errors name tags and status words, never values.
package emv

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/encoding/simplifiedchinese"

	"github.com/posagent/posagent/agent/card/oda"
	"github.com/posagent/posagent/drivers/cardreader"
	"github.com/posagent/posagent/provisioning"
	"github.com/posagent/posagent/provisioning/pan"
)

// Errors callers branch on. Transport errors (cardreader.ErrCardRemoved, …)
// are passed through wrapped, so errors.Is finds them too.
var (
	// ErrNoApplication: no application both the card and the terminal support.
	ErrNoApplication = errors.New("emv: no supported application on the card")
	// ErrCardBlocked: SELECT of the PSE answered 6A81.
	ErrCardBlocked = errors.New("emv: card blocked or not an EMV card")
	// ErrCardStatus: the card answered a status word the flow cannot go on
	// with; the SW is wrapped (errors.As to cardreader.SW).
	ErrCardStatus = errors.New("emv: card refused the command")
	// ErrCardData: data the read needs is missing or malformed (PAN, expiry,
	// AFL, CDOL1, inconsistent PAN/track 2, bad TLV).
	ErrCardData = errors.New("emv: card data missing or malformed")
	// ErrDeclined: GENERATE AC returned an AAC (offline decline) instead of
	// the ARQC asked for.
	ErrDeclined error = declined{}
)

// Result is what one read of the card yields. It lives in memory only.
type Result struct {
	PAN    pan.PAN
	Seq    string // PAN sequence number 5F34, two digits ("" if absent)
	Expiry string // YYMM, from 5F24 (YYMMDD) or else track 2
	Name   string // 9F0B when present, else 5F20; GB18030 decoded; trailing spaces trimmed
	Track2 Track2 // track-2 equivalent 57: never log, print or persist
	Label  string // application label 50 (or preferred name 9F12 when printable)
	AID    string // hex of the selected application (DF name 84)
	Type   provisioning.CardType
	// ICData is the field-55 TLV set (hex) for the online request: ARQC 9F26,
	// CID 9F27, IAD 9F10, UN 9F37, ATC 9F36, TVR 95, and the rest of
	// FieldICTags as far as the card and terminal supplied them.
	ICData string
	// TVR (95) and TSI (9B), hex, as they stood after the read's
	// cryptogram; "" from ReadData, which runs no phase.
	TVR, TSI string
	// ODA is the outcome of offline data authentication in words: "not
	// performed", or the method and "passed"/"failed" (", ICC data
	// missing" added when so); for CDA it includes the check of the
	// GENERATE AC signature. "" from ReadData.
	ODA string
	// Transmissions counts the command APDUs sent, GET RESPONSE and 6CXX
	// re-sends included: the benchmark's "APDUs per read".
	Transmissions int
}

// declined is ErrDeclined: the flow's failure E_CARD_DECLINED_OFFLINE.
type declined struct{}

func (declined) Error() string       { return "emv: card declined (AAC)" }
func (declined) FailureCode() string { return "E_CARD_DECLINED_OFFLINE" }

// Track2 is the track-2 equivalent data (tag 57). It masks itself in every
// format a careless log line might use; Reveal is the only way to the bytes.
type Track2 struct{ b []byte }

// Reveal returns a copy of the raw track-2 equivalent (BCD, D separator).
func (t Track2) Reveal() []byte { return append([]byte(nil), t.b...) }

// IsZero reports whether the card carried no track 2.
func (t Track2) IsZero() bool { return len(t.b) == 0 }

// String never shows the data.
func (t Track2) String() string { return fmt.Sprintf("track2[%d bytes]", len(t.b)) }

// GoString never shows the data.
func (t Track2) GoString() string { return t.String() }

// MarshalText never shows the data.
func (t Track2) MarshalText() ([]byte, error) { return []byte(t.String()), nil }

// Wipe zeroes the bytes in place, for callers done with them.
func (t *Track2) Wipe() {
	for i := range t.b {
		t.b[i] = 0
	}
	t.b = nil
}

// FieldICTags are the objects sent in field 55, in the order UnionPay's
// specification lists them.
var FieldICTags = []Tag{0x9F26, 0x9F27, 0x9F10, 0x9F37, 0x9F36, 0x95, 0x9A, 0x9C, 0x9F02,
	0x5F2A, 0x82, 0x9F1A, 0x9F03, 0x9F33, 0x9F34, 0x9F35, 0x9F1E, 0x84, 0x9F09, 0x9F41, 0x9F63}

var (
	pseName  = []byte("1PAY.SYS.DDF01")
	ppseName = []byte("2PAY.SYS.DDF01")
)

// session is one read: the card, the data collected and the APDU count.
type session struct {
	card   *counter
	term   Terminal
	txn    Transaction
	tdata  map[Tag][]byte // terminal data, as sent in the DOLs
	cdata  map[Tag][]byte // card data: FCI, GPO, records, GENERATE AC
	lastFC []byte         // DF name and FCI of the last successful SELECT
	lastID []byte
	// signed are the records the AFL names for offline data
	// authentication, as the card sent them.
	signed []oda.Record
	// pdolData and cdol1Data are the GET PROCESSING OPTIONS data and the
	// first GENERATE AC's CDOL1 data as sent: CDA's transaction data hash
	// covers them (Book 2 §6.6.2).
	pdolData, cdol1Data []byte
	// iccKey is the ICC public key when CDA was selected and the key
	// recovered: each GENERATE AC asking for a TC or ARQC then requests the
	// CDA signature (cda.go). nil otherwise, and after CDA failed.
	iccKey *oda.PublicKey
	// method is the offline data authentication method the ODA step
	// selected (odaNone before it, or when none was).
	method odaMethod
}

// counter counts transmissions below the T=0 handling.
type counter struct {
	cardreader.Card
	n int
}

func (c *counter) Transmit(ctx context.Context, cmd []byte) ([]byte, error) {
	c.n++
	return c.Card.Transmit(ctx, cmd)
}

// Read runs the application flow on card, up to a first GENERATE AC asking
// for an ARQC, and returns what it read with the field-55 set. Offline
// data authentication, processing restrictions, terminal risk management
// and terminal action analysis run as for a sale (phases.go), so the TVR
// and TSI say what was done, and an AAC the action codes ask for is
// ErrDeclined. It performs no cardholder verification (9F34 is the
// terminal's CVMResults): a tool's read or a test's, not a sale, which
// goes through StartPayment. The card is neither closed nor reset: the
// caller owns it.
func Read(ctx context.Context, card cardreader.Card, term Terminal, txn Transaction) (Result, error) {
	return read(ctx, card, term, txn, true)
}

// ReadData is Read without a cryptogram: application selection, GET
// PROCESSING OPTIONS and READ RECORD, no GENERATE AC, so the card spends no
// ATC and keeps no transaction state — the binding's read and the void's
// card check (public UnionPay apps read the card for a void without a
// cryptogram). The Result has no ICData. A contactless (qPBOC) card is the
// exception it cannot avoid: its GET PROCESSING OPTIONS is where it
// decides, so even this read spends an ATC there.
func ReadData(ctx context.Context, card cardreader.Card, term Terminal, txn Transaction) (Result, error) {
	return read(ctx, card, term, txn, false)
}

func read(ctx context.Context, card cardreader.Card, term Terminal, txn Transaction, ac bool) (Result, error) {
	s, err := newSession(card, term, txn)
	if err != nil {
		return Result{}, err
	}
	res, err := s.run(ctx, ac)
	res.Transmissions = s.card.n
	return res, err
}

func newSession(card cardreader.Card, term Terminal, txn Transaction) (*session, error) {
	term = term.withDefaults()
	tdata, err := term.terminalData(txn)
	if err != nil {
		return nil, err
	}
	return &session{card: &counter{Card: card}, term: term, txn: txn, tdata: tdata, cdata: map[Tag][]byte{}}, nil
}

func (s *session) exchange(ctx context.Context, what string, cmd cardreader.Command) (cardreader.Response, error) {
	r, err := cardreader.Exchange(ctx, cardreader.T0{Card: s.card}, cmd)
	if err != nil {
		return r, fmt.Errorf("emv: %s: %w", what, err)
	}
	return r, nil
}

func selectCmd(name []byte, next bool) cardreader.Command {
	c := cardreader.Command{INS: 0xA4, P1: 0x04, Data: name, Ne: 256}
	if next {
		c.P2 = 0x02
	}
	return c
}

// candidate is an application both sides support.
type candidate struct {
	aid   []byte
	label string
	prio  int // 1 highest … 15; 0 (none) sorts last
}

// run reads the card and, when ac is set, asks for the ARQC.
func (s *session) run(ctx context.Context, ac bool) (Result, error) {
	if err := s.readApp(ctx); err != nil {
		return Result{}, err
	}
	switch {
	case ac && s.term.Contactless:
		// qPBOC: the GPO answered the cryptogram; nothing more is sent.
		if err := s.gpoCryptogram(ctx); err != nil {
			return Result{}, err
		}
	case ac:
		if err := s.oda(ctx); err != nil {
			return Result{}, err
		}
		s.restrictions()
		if err := s.firstAC(ctx); err != nil {
			return Result{}, err
		}
	}
	res, err := s.result()
	if err != nil {
		return Result{}, err
	}
	if ac {
		res.ICData = Hex(s.field55())
		res.TVR, res.TSI, res.ODA = Hex(s.tdata[0x95]), Hex(s.tdata[0x9B]), s.odaOutcome()
	}
	return res, nil
}

// odaOutcome says what offline data authentication came to, from the
// method selected and the TVR (whose CDA bit the GENERATE AC may have set
// after the ODA step). A contactless online payment performs none: its
// TVR stays as the card signed it (contactless.go).
func (s *session) odaOutcome() string {
	if s.term.Contactless && s.method == odaNone {
		return "not performed (contactless, online cryptogram)"
	}
	if s.method == odaNone {
		return "not performed"
	}
	tvr := s.tdata[0x95][0]
	out := s.method.String() + " passed"
	if tvr&map[odaMethod]byte{odaSDA: tvrSDAFailed, odaDDA: tvrDDAFailed, odaCDA: tvrCDAFailed, odaFDDA: tvrDDAFailed}[s.method] != 0 {
		out = s.method.String() + " failed"
	}
	if tvr&tvrICCDataMissing != 0 {
		out += ", ICC data missing"
	}
	return out
}

// readApp selects an application, gets its processing options and reads
// its records: everything before the first cryptogram.
func (s *session) readApp(ctx context.Context) error {
	var cands []candidate
	var err error
	if s.term.Contactless {
		cands, err = s.ppse(ctx)
	} else {
		cands, err = s.pse(ctx)
		if err == nil && len(cands) == 0 {
			cands, err = s.aidList(ctx)
		}
	}
	if err != nil {
		return err
	}
	// Stable: equal priorities keep the directory's (or terminal list's) order.
	sort.SliceStable(cands, func(i, j int) bool {
		pi, pj := cands[i].prio, cands[j].prio
		if pi == 0 {
			pi = 16
		}
		if pj == 0 {
			pj = 16
		}
		return pi < pj
	})
	for _, c := range cands {
		fci, err := s.selectFinal(ctx, c.aid)
		if errors.Is(err, errSkip) {
			continue
		}
		if err != nil {
			return err
		}
		aip, afl, err := s.gpo(ctx, fci)
		if errors.Is(err, errSkip) {
			// 6985: conditions of use not satisfied; EMV removes the
			// application and selects the next one.
			continue
		}
		if err != nil {
			return err
		}
		s.cdata[0x82] = aip
		if _, ok := s.cdata[0x50]; !ok && c.label != "" {
			s.cdata[0x50] = []byte(c.label) // the directory's label, when the FCI has none
		}
		return s.readRecords(ctx, afl)
	}
	return ErrNoApplication
}

// errSkip marks an application to pass over (not found, blocked, 6985).
var errSkip = errors.New("emv: application skipped")

// pse selects 1PAY.SYS.DDF01 and reads its directory. A card without a PSE
// (6A82, or any other refusal but 6A81) yields no candidates, which sends the
// caller to the AID list.
func (s *session) pse(ctx context.Context) ([]candidate, error) {
	r, err := s.exchange(ctx, "select PSE", selectCmd(pseName, false))
	if err != nil {
		return nil, err
	}
	switch {
	case r.SW == cardreader.SWFuncNotSupported:
		return nil, ErrCardBlocked
	case !r.SW.OK():
		return nil, nil
	}
	fci, err := DecodeTLV(r.Data)
	if err != nil {
		return nil, nil // a garbled PSE is no PSE (EMV Book 1 §12.3.2)
	}
	sfiObj, ok := Find(fci, 0x88)
	if !ok || len(sfiObj.Value) != 1 || sfiObj.Value[0] < 1 || sfiObj.Value[0] > 30 {
		return nil, nil
	}
	sfi := sfiObj.Value[0]
	var cands []candidate
	for rec := 1; rec <= 255; rec++ {
		r, err := s.exchange(ctx, fmt.Sprintf("read PSE record %d", rec),
			cardreader.Command{INS: 0xB2, P1: byte(rec), P2: sfi<<3 | 4, Ne: 256})
		if err != nil {
			return nil, err
		}
		if r.SW == cardreader.SWRecordNotFound {
			break
		}
		if !r.SW.OK() {
			return nil, nil
		}
		objs, err := DecodeTLV(r.Data)
		if err != nil || len(objs) != 1 || objs[0].Tag != 0x70 {
			return nil, nil
		}
		for _, e := range FindAll(objs[0].Children, 0x61) {
			adf, ok := Find(e.Children, 0x4F)
			if !ok || len(adf.Value) < 5 || len(adf.Value) > 16 || !s.supported(adf.Value) {
				continue
			}
			c := candidate{aid: adf.Value}
			if l, ok := Find(e.Children, 0x50); ok {
				c.label = printable(l.Value)
			}
			if p, ok := Find(e.Children, 0x87); ok && len(p.Value) == 1 {
				c.prio = int(p.Value[0] & 0x0F)
			}
			cands = append(cands, c)
		}
	}
	return cands, nil
}

// ppse selects 2PAY.SYS.DDF01, whose FCI holds the candidates directly.
func (s *session) ppse(ctx context.Context) ([]candidate, error) {
	r, err := s.exchange(ctx, "select PPSE", selectCmd(ppseName, false))
	if err != nil {
		return nil, err
	}
	if !r.SW.OK() {
		return nil, fmt.Errorf("%w: select PPSE: %w", ErrNoApplication, r.SW)
	}
	fci, err := DecodeTLV(r.Data)
	if err != nil {
		return nil, fmt.Errorf("%w: PPSE FCI: %w", ErrCardData, err)
	}
	var cands []candidate
	for _, e := range FindAll(fci, 0x61) {
		adf, ok := Find(e.Children, 0x4F)
		if !ok || len(adf.Value) < 5 || len(adf.Value) > 16 || !s.supported(adf.Value) {
			continue
		}
		c := candidate{aid: adf.Value}
		if p, ok := Find(e.Children, 0x87); ok && len(p.Value) == 1 {
			c.prio = int(p.Value[0] & 0x0F)
		}
		if l, ok := Find(e.Children, 0x50); ok {
			c.label = printable(l.Value)
		}
		cands = append(cands, c)
	}
	if len(cands) == 0 {
		return nil, ErrNoApplication
	}
	return cands, nil
}

// aidList tries each terminal AID with SELECT (EMV "list of AIDs"), keeping
// the FCI of the last success so the final selection need not repeat it.
func (s *session) aidList(ctx context.Context) ([]candidate, error) {
	var cands []candidate
	for _, h := range s.term.AIDs {
		aid, err := hex.DecodeString(h)
		if err != nil || len(aid) < 5 || len(aid) > 16 {
			continue
		}
		r, err := s.exchange(ctx, "select "+strings.ToUpper(h), selectCmd(aid, false))
		if err != nil {
			return nil, err
		}
		// Cards differ on what a failed SELECT leaves selected, so only the
		// answer to the very last SELECT may stand in for the final one.
		s.lastID, s.lastFC = nil, nil
		if !r.SW.OK() {
			continue // 6A82 not on the card, 6283 blocked, anything else: next
		}
		fci, err := DecodeTLV(r.Data)
		if err != nil {
			continue
		}
		df, ok := Find(fci, 0x84)
		if !ok || !s.term.matches(h, df.Value) {
			continue
		}
		c := candidate{aid: df.Value}
		if l, ok := Find(fci, 0x50); ok {
			c.label = printable(l.Value)
		}
		if p, ok := Find(fci, 0x87); ok && len(p.Value) == 1 {
			c.prio = int(p.Value[0] & 0x0F)
		}
		cands = append(cands, c)
		s.lastID, s.lastFC = df.Value, r.Data
	}
	return cands, nil
}

// supported reports whether a card AID matches a terminal AID (partial
// selection, the card's may be longer, unless the entry is exact).
func (s *session) supported(aid []byte) bool {
	for _, h := range s.term.AIDs {
		if s.term.matches(h, aid) {
			return true
		}
	}
	return false
}

// selectFinal selects the chosen application, unless it is the one the AID
// list just selected (a repeated SELECT would cost an APDU for nothing).
func (s *session) selectFinal(ctx context.Context, aid []byte) ([]TLV, error) {
	data := s.lastFC
	if !bytes.Equal(s.lastID, aid) || data == nil {
		r, err := s.exchange(ctx, "select application", selectCmd(aid, false))
		if err != nil {
			return nil, err
		}
		if !r.SW.OK() {
			return nil, errSkip
		}
		data = r.Data
	}
	s.lastID, s.lastFC = nil, nil // GPO changes the card's state: never reuse
	fci, err := DecodeTLV(data)
	if err != nil {
		return nil, fmt.Errorf("%w: application FCI: %w", ErrCardData, err)
	}
	df, ok := Find(fci, 0x84)
	if !ok || !bytes.HasPrefix(df.Value, aid) {
		return nil, fmt.Errorf("%w: FCI DF name does not match the selected AID", ErrCardData)
	}
	s.cdata = map[Tag][]byte{0x84: df.Value} // nothing of an application passed over
	for _, t := range []Tag{0x50, 0x87, 0x9F38, 0x5F2D, 0x9F11, 0x9F12} {
		if o, ok := Find(fci, t); ok {
			s.cdata[t] = o.Value
		}
	}
	return fci, nil
}

// gpo sends GET PROCESSING OPTIONS with the PDOL filled and returns AIP and AFL.
func (s *session) gpo(ctx context.Context, fci []TLV) (aip, afl []byte, err error) {
	var pdolData []byte
	if p, ok := Find(fci, 0x9F38); ok {
		dol, err := ParseDOL(p.Value)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: PDOL: %w", ErrCardData, err)
		}
		if s.term.Contactless {
			if err := s.preprocess(); err != nil {
				return nil, nil, err
			}
		}
		pdolData = fillDOL(dol, s.tdata)
	}
	s.pdolData = pdolData
	r, err := s.exchange(ctx, "get processing options",
		cardreader.Command{CLA: 0x80, INS: 0xA8, Data: EncodeTLV(nil, 0x83, pdolData), Ne: 256})
	if err != nil {
		return nil, nil, err
	}
	if r.SW == cardreader.SWConditionsNotSatisf {
		return nil, nil, errSkip
	}
	if !r.SW.OK() {
		return nil, nil, fmt.Errorf("%w: get processing options: %w", ErrCardStatus, r.SW)
	}
	objs, err := DecodeTLV(r.Data)
	if err != nil || len(objs) != 1 {
		return nil, nil, fmt.Errorf("%w: GPO response: %w", ErrCardData, errors.Join(err, ErrTLV))
	}
	switch objs[0].Tag {
	case 0x80: // format 1: AIP then AFL
		v := objs[0].Value
		if len(v) < 2 {
			return nil, nil, fmt.Errorf("%w: GPO format 1 too short", ErrCardData)
		}
		aip, afl = v[:2], v[2:]
	case 0x77: // format 2: tagged, may carry qPBOC data too
		for _, o := range objs[0].Children {
			s.keep(o)
		}
		a, ok1 := Find(objs[0].Children, 0x82)
		l, ok2 := Find(objs[0].Children, 0x94)
		if !ok1 || len(a.Value) != 2 || !ok2 {
			return nil, nil, fmt.Errorf("%w: GPO format 2 without AIP/AFL", ErrCardData)
		}
		aip, afl = a.Value, l.Value
	default:
		return nil, nil, fmt.Errorf("%w: GPO response template %v", ErrCardData, objs[0].Tag)
	}
	return aip, afl, nil
}

// keep records a primitive card data object; the first occurrence wins.
func (s *session) keep(o TLV) {
	if o.Tag.Constructed() {
		return
	}
	if _, dup := s.cdata[o.Tag]; !dup {
		s.cdata[o.Tag] = o.Value
	}
}

// readRecords reads exactly the records the AFL names, in order.
func (s *session) readRecords(ctx context.Context, afl []byte) error {
	if len(afl) == 0 || len(afl)%4 != 0 {
		return fmt.Errorf("%w: AFL length %d", ErrCardData, len(afl))
	}
	for i := 0; i < len(afl); i += 4 {
		sfi, first, last := afl[i]>>3, afl[i+1], afl[i+2]
		if sfi < 1 || sfi > 30 || first < 1 || last < first {
			return fmt.Errorf("%w: AFL entry %d", ErrCardData, i/4)
		}
		for rec := int(first); rec <= int(last); rec++ {
			r, err := s.exchange(ctx, fmt.Sprintf("read record %d/%d", sfi, rec),
				cardreader.Command{INS: 0xB2, P1: byte(rec), P2: sfi<<3 | 4, Ne: 256})
			if err != nil {
				return err
			}
			if !r.SW.OK() {
				return fmt.Errorf("%w: read record %d/%d: %w", ErrCardStatus, sfi, rec, r.SW)
			}
			// AFL byte 4: how many records from the first are signed.
			if rec < int(first)+int(afl[i+3]) {
				s.signed = append(s.signed, oda.Record{SFI: sfi, Data: append([]byte(nil), r.Data...)})
			}
			objs, err := DecodeTLV(r.Data)
			if err != nil {
				return fmt.Errorf("%w: record %d/%d: %w", ErrCardData, sfi, rec, err)
			}
			if sfi <= 10 && (len(objs) != 1 || objs[0].Tag != 0x70) {
				return fmt.Errorf("%w: record %d/%d is not a 70 template", ErrCardData, sfi, rec)
			}
			for _, o := range objs {
				for _, c := range o.Children {
					s.keep(c)
				}
			}
		}
	}
	return nil
}

// firstAC runs terminal risk management and terminal action analysis and
// sends the first GENERATE AC with the CDOL1 data: an ARQC asked for, or
// an AAC when the action codes decline. An AAC answer is ErrDeclined.
func (s *session) firstAC(ctx context.Context) error {
	if err := s.riskManagement(ctx); err != nil {
		return err
	}
	p1 := s.decision()
	ac, err := s.genAC(ctx, "generate AC", 0x8C, p1, nil)
	if err != nil {
		return err
	}
	s.tdata[0x9B][0] |= tsiCardRisk // the card has run its risk management
	s.done("first AC")
	s.setAC(ac)
	if ac.cdaFailed && ac.cid&0xC0 == acARQC {
		// The ARQC's signature does not verify, so the cryptogram the host
		// would check is not known to be the card's (it travelled only
		// inside the signature). The terminal declines offline (a PBOC 3.0
		// write-up of CDA, cnblogs.com/CQbk/p/9707792.html: "终端应脱机拒绝
		// 交易"; EMV Book 3 §10.8, paraphrased): the card is told with a
		// second GENERATE AC asking for an AAC under "offline declined"
		// (Z1), and nothing goes to the host.
		if _, err := s.genAC(ctx, "second generate AC", 0x8D, acAAC, map[Tag][]byte{0x8A: []byte("Z1")}); err != nil {
			return err
		}
		return fmt.Errorf("%w: the ARQC's CDA signature does not verify (TVR %s)", ErrDeclined, Hex(s.tdata[0x95]))
	}
	switch {
	case ac.cid&0xC0 == acAAC && p1 == acAAC:
		return fmt.Errorf("%w: terminal action analysis declined (TVR %s)", ErrDeclined, Hex(s.tdata[0x95]))
	case ac.cid&0xC0 == acAAC:
		return ErrDeclined
	}
	return nil
}

// setAC records a GENERATE AC answer's objects as the card's latest: a
// cryptogram that could not be trusted (CDA failed) is left out rather
// than kept from an earlier answer.
func (s *session) setAC(ac acResponse) {
	s.cdata[0x9F27], s.cdata[0x9F36] = []byte{ac.cid}, ac.atc
	if ac.ac != nil {
		s.cdata[0x9F26] = ac.ac
	} else {
		delete(s.cdata, 0x9F26)
	}
	if ac.iad != nil {
		s.cdata[0x9F10] = ac.iad
	}
}

// acResponse is a GENERATE AC answer: CID 9F27, ATC 9F36, cryptogram 9F26
// and issuer application data 9F10 (nil when the card sent none). With
// CDA the cryptogram is the one the verified signature carries; cdaFailed
// says the signature was asked for and did not verify, and then ac is nil
// unless the card also sent one in the clear.
type acResponse struct {
	cid          byte
	atc, ac, iad []byte
	cdaFailed    bool
}

// genAC sends GENERATE AC with P1 p1 and the data of the DOL in card object
// dolTag (8C CDOL1, 8D CDOL2), filled from extra, the terminal's and the
// card's data in that order.
func (s *session) genAC(ctx context.Context, what string, dolTag Tag, p1 byte, extra map[Tag][]byte) (acResponse, error) {
	raw, ok := s.cdata[dolTag]
	if !ok {
		return acResponse{}, fmt.Errorf("%w: %s: %v missing", ErrCardData, what, dolTag)
	}
	dol, err := ParseDOL(raw)
	if err != nil {
		return acResponse{}, fmt.Errorf("%w: %s: %v: %w", ErrCardData, what, dolTag, err)
	}
	data := fillDOL(dol, extra, s.tdata, s.cdata)
	// CDA is requested with a TC or an ARQC only: the card signs no AAC
	// (Book 2 §6.6.1), and a terminal asking for an AAC does not ask for
	// CDA (the PBOC write-up cited at performODA).
	cda := s.iccKey != nil && p1&0xC0 != acAAC
	if cda {
		p1 |= p1CDA
	}
	r, err := s.exchange(ctx, what, cardreader.Command{CLA: 0x80, INS: 0xAE, P1: p1, Data: data, Ne: 256})
	if err != nil {
		return acResponse{}, err
	}
	if !r.SW.OK() {
		return acResponse{}, fmt.Errorf("%w: %s: %w", ErrCardStatus, what, r.SW)
	}
	cdolData := data
	if dolTag == 0x8C {
		s.cdol1Data = append([]byte(nil), data...)
	} else {
		cdolData = append(append([]byte(nil), s.cdol1Data...), data...)
	}
	if cda {
		ac, err := s.cdaAnswer(r.Data, cdolData)
		if err != nil {
			return acResponse{}, fmt.Errorf("%s: %w", what, err)
		}
		return ac, nil
	}
	ac, err := parseAC(r.Data)
	if err != nil {
		return acResponse{}, fmt.Errorf("%s: %w", what, err)
	}
	return ac, nil
}

// parseAC decodes a GENERATE AC response, format 1 (80: CID, ATC, AC, IAD)
// or format 2 (77 with tagged objects). It copies what it keeps.
func parseAC(b []byte) (acResponse, error) {
	objs, err := DecodeTLV(b)
	if err != nil || len(objs) != 1 {
		return acResponse{}, fmt.Errorf("%w: response: %w", ErrCardData, errors.Join(err, ErrTLV))
	}
	var cid, atc, ac, iad []byte
	switch objs[0].Tag {
	case 0x80: // format 1: CID(1) ATC(2) AC(8) IAD(rest)
		v := objs[0].Value
		if len(v) < 11 {
			return acResponse{}, fmt.Errorf("%w: format 1 too short", ErrCardData)
		}
		cid, atc, ac = v[0:1], v[1:3], v[3:11]
		if len(v) > 11 {
			iad = v[11:]
		}
	case 0x77:
		get := func(t Tag) []byte {
			if o, ok := Find(objs[0].Children, t); ok {
				return o.Value
			}
			return nil
		}
		cid, atc, ac, iad = get(0x9F27), get(0x9F36), get(0x9F26), get(0x9F10)
	default:
		return acResponse{}, fmt.Errorf("%w: template %v", ErrCardData, objs[0].Tag)
	}
	if len(cid) != 1 || len(ac) != 8 || len(atc) != 2 {
		return acResponse{}, fmt.Errorf("%w: no CID/ATC/AC", ErrCardData)
	}
	clone := func(b []byte) []byte {
		if b == nil {
			return nil
		}
		return append([]byte(nil), b...)
	}
	return acResponse{cid: cid[0], atc: clone(atc), ac: clone(ac), iad: clone(iad)}, nil
}

// result assembles and validates the cardholder data.
func (s *session) result() (Result, error) {
	var res Result
	d := s.cdata
	res.AID = Hex(d[0x84])
	res.Type = provisioning.CardTypeOfAID(res.AID)
	if t2, ok := d[0x57]; ok {
		res.Track2 = Track2{b: append([]byte(nil), t2...)}
	}
	t2digits, _ := track2Digits(d[0x57])
	t2pan, t2rest, _ := strings.Cut(t2digits, "D")
	digits := t2pan
	if v, ok := d[0x5A]; ok {
		p, ok := bcdToDigits(v)
		if !ok {
			return Result{}, fmt.Errorf("%w: PAN (5A) is not BCD", ErrCardData)
		}
		if t2pan != "" && p != t2pan {
			return Result{}, fmt.Errorf("%w: PAN (5A) and track 2 (57) differ", ErrCardData)
		}
		digits = p
	}
	p, err := pan.Parse(digits)
	if err != nil {
		return Result{}, fmt.Errorf("%w: PAN: %w", ErrCardData, err)
	}
	res.PAN = p
	if v, ok := d[0x5F24]; ok {
		e, ok := bcdToDigits(v)
		if !ok || len(e) != 6 || !validMonth(e[2:4]) {
			return Result{}, fmt.Errorf("%w: expiry (5F24)", ErrCardData)
		}
		res.Expiry = e[:4]
	} else if len(t2rest) >= 4 && validMonth(t2rest[2:4]) {
		res.Expiry = t2rest[:4]
	} else {
		return Result{}, fmt.Errorf("%w: expiry missing", ErrCardData)
	}
	if v, ok := d[0x5F34]; ok {
		if q, ok := bcdToDigits(v); ok && len(q) == 2 {
			res.Seq = q
		}
	}
	for _, t := range []Tag{0x9F0B, 0x5F20} {
		if v, ok := d[t]; ok {
			if n, ok := decodeName(v); ok && n != "" {
				res.Name = n
				break
			}
		}
	}
	res.Label = printable(d[0x50])
	if res.Label == "" {
		res.Label = printable(d[0x9F12])
	}
	return res, nil
}

// field55 is the FieldICTags set as the card and terminal data stand now:
// after the first GENERATE AC the online request's, after the second the
// TC upload's.
func (s *session) field55() []byte { return s.tlvList(FieldICTags) }

// tlvList encodes the objects of tags that the card or the terminal has,
// card data first.
func (s *session) tlvList(tags []Tag) []byte {
	var out []byte
	for _, t := range tags {
		v, ok := s.cdata[t]
		if !ok {
			v, ok = s.tdata[t]
		}
		if ok {
			out = EncodeTLV(out, t, v)
		}
	}
	return out
}

// track2Digits turns the BCD track-2 equivalent into digits with 'D' as the
// separator, dropping the F pad.
func track2Digits(b []byte) (string, bool) {
	var sb strings.Builder
	for _, c := range b {
		for _, n := range []byte{c >> 4, c & 0x0F} {
			switch {
			case n <= 9:
				sb.WriteByte('0' + n)
			case n == 0x0D:
				sb.WriteByte('D')
			case n == 0x0F:
				return sb.String(), true
			default:
				return "", false
			}
		}
	}
	return sb.String(), true
}

func validMonth(mm string) bool { return mm >= "01" && mm <= "12" && len(mm) == 2 }

// decodeName decodes a cardholder name: ASCII as is, otherwise GB18030 (the
// PBOC character set for 9F0B), rejecting anything that decodes to control or
// replacement characters. Trailing spaces and NULs are padding.
func decodeName(b []byte) (string, bool) {
	b = bytes.TrimRight(b, " \x00")
	ascii := true
	for _, c := range b {
		if c < 0x20 || c > 0x7E {
			ascii = false
			break
		}
	}
	if ascii {
		return string(b), true
	}
	out, err := simplifiedchinese.GB18030.NewDecoder().Bytes(b)
	if err != nil || !utf8.Valid(out) {
		return "", false
	}
	s := string(out)
	for _, r := range s {
		if r == utf8.RuneError || unicode.IsControl(r) {
			return "", false
		}
	}
	return strings.TrimSpace(s), true
}

// printable returns b when it is printable ASCII (labels are format ans).
func printable(b []byte) string {
	for _, c := range b {
		if c < 0x20 || c > 0x7E {
			return ""
		}
	}
	return strings.TrimSpace(string(b))
}
