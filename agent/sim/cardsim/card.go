package cardsim

import (
	"bytes"
	"context"
	"crypto/des"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"
	"sync"

	"golang.org/x/text/encoding/simplifiedchinese"

	"github.com/posagent/posagent/drivers/cardreader"
)

// Action is what the card does besides answering.
type Action int

// Actions a fault can cause.
const (
	Answer Action = iota // send the response
	Mute                 // send nothing (the card hangs)
	Remove               // the card leaves the reader
)

// Card is a running virtual card. Its methods are safe for concurrent use.
type Card struct {
	p   *Profile
	key []byte

	mu       sync.Mutex
	app      int  // selected application index, -1 none
	pse      bool // PSE selected
	gpoDone  bool
	atc      uint16
	pending  []byte // data awaiting GET RESPONSE
	steps    map[string]int
	commands int
	trace    []TraceEntry // the last traceLen commands

	macKey []byte // MK_SMI, the script MAC master key
	tx     txn    // the transaction since the last GET PROCESSING OPTIONS
	last   txn    // the one before: its issuer outcome goes into the CVR
	// What issuer scripts changed, for the card's lifetime.
	blocked    map[int]bool      // application index -> APPLICATION BLOCK
	cardBlock  bool              // CARD BLOCK: every SELECT is refused
	records    map[[2]int][]byte // UPDATE RECORD: {sfi, record} -> record
	objects    map[string][]byte // PUT DATA: tag (upper hex) -> value
	scriptsOK  int               // script commands executed
	scriptsBad int               // script commands refused
	lastOnline uint16            // 9F13, ATC of the last completed online transaction
	onStep     func(step string)
	oda        *odaData // certificates and the signing key; nil without ODA
}

// OnStep sets f to be called with each command's fault step (select_aid,
// generate_ac, generate_ac2 …) once the card has processed it and before
// its answer leaves: the crash campaign kills the terminal there. f runs
// with the card locked and must not call the card.
func (c *Card) OnStep(f func(step string)) {
	c.mu.Lock()
	c.onStep = f
	c.mu.Unlock()
}

// New returns a powered card for the profile (validated by ParseProfile).
func New(p *Profile) (*Card, error) {
	if err := p.validate(); err != nil {
		return nil, err
	}
	key, _ := unhex(p.Key)
	mac, _ := unhex(p.MACKey)
	oda, err := p.loadODA()
	if err != nil {
		return nil, err
	}
	return &Card{p: p, key: key, macKey: mac, app: -1, atc: p.ATC, steps: map[string]int{},
		blocked: map[int]bool{}, records: map[[2]int][]byte{}, objects: map[string][]byte{}, oda: oda}, nil
}

// ATR is the profile's answer to reset.
func (c *Card) ATR() []byte {
	b, _ := unhex(c.p.ATR)
	return b
}

// Reset returns the card to its power-on state (nothing selected). The ATC
// survives, as on a real card.
func (c *Card) Reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.app, c.pse, c.gpoDone, c.pending = -1, false, false, nil
	c.endTxn()
}

// Commands is the number of command APDUs processed since New.
func (c *Card) Commands() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.commands
}

// ATCValue is the current application transaction counter.
func (c *Card) ATCValue() uint16 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.atc
}

// AFLRecords is the number of records the card's AFL lists: with the PSE
// directory and the command count it gives the minimum APDUs of a read.
func (c *Card) AFLRecords() int { return len(c.p.Records) }

func sw(s uint16) []byte { return []byte{byte(s >> 8), byte(s)} }

// Process answers one command APDU.
func (c *Card) Process(apdu []byte) ([]byte, Action) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.commands++
	if len(apdu) < 4 {
		return sw(0x6700), Answer
	}
	ins := apdu[1]
	if ins == 0xC0 { // GET RESPONSE
		return c.getResponse(apdu), Answer
	}
	c.pending = nil
	data, le, ok := body(apdu)
	if !ok {
		return sw(0x6700), Answer
	}
	step, resp, status := c.dispatch(apdu, data)
	c.note(step, apdu, status)
	if step != "" {
		c.steps[step]++
		if c.onStep != nil {
			c.onStep(step)
		}
		for _, f := range c.p.Faults {
			if f.At != step || f.N != c.steps[step] {
				continue
			}
			switch f.Kind {
			case "mute":
				return nil, Mute
			case "remove":
				return nil, Remove
			case "status":
				b, _ := unhex(f.SW)
				return b, Answer
			case "truncate":
				if len(resp) > 4 {
					resp = resp[:len(resp)-len(resp)/3]
				}
			}
		}
	}
	if status == 0x6283 && len(resp) > 0 && !c.p.T0.GetResponse {
		return append(resp, sw(status)...), Answer // a blocked application's FCI
	}
	if status != 0x9000 || len(resp) == 0 {
		return sw(status), Answer
	}
	if c.p.T0.WrongLength && ins == 0xB2 && le != len(resp) {
		return []byte{0x6C, byte(len(resp))}, Answer // 256 never happens: records are short
	}
	if c.p.T0.GetResponse {
		c.pending = resp
		return []byte{0x61, byte(c.chunk(len(resp)))}, Answer
	}
	return append(resp, 0x90, 0x00), Answer
}

func (c *Card) chunk(n int) int {
	if c.p.T0.Chunk > 0 && n > c.p.T0.Chunk {
		return c.p.T0.Chunk
	}
	if n >= 256 {
		return 0 // 00 means 256
	}
	return n
}

func (c *Card) getResponse(apdu []byte) []byte {
	if len(c.pending) == 0 {
		return sw(0x6985)
	}
	le := 256
	if len(apdu) == 5 && apdu[4] != 0 {
		le = int(apdu[4])
	}
	n := min(le, len(c.pending))
	out := append([]byte(nil), c.pending[:n]...)
	c.pending = c.pending[n:]
	if len(c.pending) > 0 {
		return append(out, 0x61, byte(c.chunk(len(c.pending))))
	}
	return append(out, 0x90, 0x00)
}

// body splits the command into data and Le (256 for 00, 0 when absent).
func body(apdu []byte) (data []byte, le int, ok bool) {
	switch {
	case len(apdu) == 4:
		return nil, 0, true
	case len(apdu) == 5:
		le = int(apdu[4])
		if le == 0 {
			le = 256
		}
		return nil, le, true
	}
	lc := int(apdu[4])
	switch len(apdu) {
	case 5 + lc:
		return apdu[5:], 0, true
	case 6 + lc:
		le = int(apdu[5+lc])
		if le == 0 {
			le = 256
		}
		return apdu[5 : 5+lc], le, true
	}
	return nil, 0, false
}

// dispatch runs the command and names its fault step.
func (c *Card) dispatch(apdu, data []byte) (step string, resp []byte, status uint16) {
	cla, ins, p1, p2 := apdu[0], apdu[1], apdu[2], apdu[3]
	switch {
	case cla == 0x00 && ins == 0xA4 && p1 == 0x04:
		if bytes.Equal(data, []byte("1PAY.SYS.DDF01")) {
			c.app, c.gpoDone = -1, false
			if !c.p.PSE {
				c.pse = false
				return "select_pse", nil, 0x6A82
			}
			c.pse = true
			return "select_pse", c.pseFCI(), 0x9000
		}
		if bytes.Equal(data, []byte("2PAY.SYS.DDF01")) {
			c.app, c.gpoDone, c.pse = -1, false, false
			if !c.p.PPSE {
				return "select_pse", nil, 0x6A82
			}
			return "select_pse", c.ppseFCI(), 0x9000
		}
		c.pse = false
		r, s := c.selectApp(data, p2)
		return "select_aid", r, s
	case cla == 0x00 && ins == 0xB2:
		sfi := int(p2 >> 3)
		if p2&7 != 4 {
			return "", nil, 0x6A86
		}
		if c.pse && sfi == 1 {
			r, s := c.pseRecord(int(p1))
			return "read_pse", r, s
		}
		if c.app < 0 {
			return "read_record", nil, 0x6985
		}
		r, s := c.record(sfi, int(p1))
		return "read_record", r, s
	case cla == 0x80 && ins == 0xA8:
		r, s := c.gpo(data)
		return "gpo", r, s
	case cla == 0x80 && ins == 0xAE && c.tx.phase == phaseOnline:
		r, s := c.secondAC(p1, data)
		return "generate_ac2", r, s
	case cla == 0x80 && ins == 0xAE:
		r, s := c.generateAC(p1, data)
		return "generate_ac", r, s
	case cla == 0x00 && ins == 0x88:
		r, s := c.internalAuthenticate(p1, p2, data)
		return "internal_authenticate", r, s
	case cla == 0x00 && ins == 0x82:
		return "external_authenticate", nil, c.externalAuthenticate(p1, p2, data)
	case cla == 0x80 && ins == 0xCA:
		r, s := c.getData(p1, p2)
		return "get_data", r, s
	case (cla == 0x84 || cla == 0x04) && isScriptINS(cla, ins):
		return "script", nil, c.script(apdu, data)
	case cla != 0x00 && cla != 0x80:
		return "", nil, 0x6E00
	}
	return "", nil, 0x6D00
}

func tlv(tag string, v []byte) []byte {
	t, _ := hex.DecodeString(tag)
	out := append([]byte(nil), t...)
	switch n := len(v); {
	case n < 0x80:
		out = append(out, byte(n))
	case n <= 0xFF:
		out = append(out, 0x81, byte(n))
	default:
		out = append(out, 0x82, byte(n>>8), byte(n))
	}
	return append(out, v...)
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func (c *Card) pseFCI() []byte {
	return tlv("6F", cat(tlv("84", []byte("1PAY.SYS.DDF01")), tlv("A5", cat(tlv("88", []byte{1}), tlv("5F2D", []byte("zhen"))))))
}

func (c *Card) ppseFCI() []byte {
	var entries []byte
	for _, a := range c.p.Applications {
		aid, _ := unhex(a.AID)
		e := cat(tlv("4F", aid), tlv("50", []byte(a.Label)))
		if a.Priority > 0 {
			e = cat(e, tlv("87", []byte{byte(a.Priority)}))
		}
		entries = cat(entries, tlv("61", e))
	}
	return tlv("6F", cat(tlv("84", []byte("2PAY.SYS.DDF01")), tlv("A5", tlv("BF0C", entries))))
}

// pseRecord: one directory entry per record, as most PBOC cards do.
func (c *Card) pseRecord(n int) ([]byte, uint16) {
	if n < 1 || n > len(c.p.Applications) {
		return nil, 0x6A83
	}
	a := c.p.Applications[n-1]
	aid, _ := unhex(a.AID)
	e := cat(tlv("4F", aid), tlv("50", []byte(a.Label)))
	if a.Priority > 0 {
		e = cat(e, tlv("87", []byte{byte(a.Priority)}))
	}
	return tlv("70", tlv("61", e)), 0x9000
}

func (c *Card) selectApp(name []byte, p2 byte) (resp []byte, status uint16) {
	if c.cardBlock {
		// EMV Book 3 §6.5.1 (CARD BLOCK): every later SELECT answers 6A81.
		c.app = -1
		return nil, 0x6A81
	}
	for i, a := range c.p.Applications {
		aid, _ := unhex(a.AID)
		if len(name) < 5 || !bytes.HasPrefix(aid, name) || (p2 == 0x02 && i <= c.app) {
			continue
		}
		c.app, c.gpoDone = i, false
		a2 := cat(tlv("50", []byte(a.Label)))
		if a.Priority > 0 {
			a2 = cat(a2, tlv("87", []byte{byte(a.Priority)}))
		}
		if a.PDOL != "-" {
			pdol, _ := unhex(a.PDOL)
			a2 = cat(a2, tlv("9F38", pdol))
		}
		a2 = cat(a2, tlv("5F2D", []byte("zhen")), tlv("9F11", []byte{1}))
		if c.blocked[i] {
			// EMV Book 1 §12.4 / Book 3 §6.5.2: a blocked application is
			// still selectable and answers its FCI with 6283 (selected file
			// invalidated); the terminal drops it from the candidate list.
			return tlv("6F", cat(tlv("84", aid), tlv("A5", a2))), 0x6283
		}
		return tlv("6F", cat(tlv("84", aid), tlv("A5", a2))), 0x9000
	}
	c.app = -1
	return nil, 0x6A82
}

func (c *Card) sortedRecords() []Record {
	recs := append([]Record(nil), c.p.Records...)
	sort.SliceStable(recs, func(i, j int) bool {
		if recs[i].SFI != recs[j].SFI {
			return recs[i].SFI < recs[j].SFI
		}
		return recs[i].Record < recs[j].Record
	})
	return recs
}

// afl groups the record layout into AFL entries (consecutive records of one
// SFI). Byte 4 of an entry counts the records, from its first, that are in
// the static data to be authenticated (EMV Book 3 §10.2): those must lead
// the entry, so a record for ODA after one that is not starts a new entry.
func (c *Card) afl() []byte {
	recs := c.sortedRecords()
	var out []byte
	for i := 0; i < len(recs); {
		j := i
		for j+1 < len(recs) && recs[j+1].SFI == recs[i].SFI && recs[j+1].Record == recs[j].Record+1 &&
			(!recs[j+1].ODA || recs[j].ODA) {
			j++
		}
		n := 0
		for k := i; k <= j && recs[k].ODA; k++ {
			n++
		}
		out = append(out, byte(recs[i].SFI<<3), byte(recs[i].Record), byte(recs[j].Record), byte(n))
		i = j + 1
	}
	return out
}

func dolLen(dol []byte) int {
	n := 0
	for i := 0; i < len(dol); {
		if dol[i]&0x1F == 0x1F {
			i++
			for i < len(dol) && dol[i]&0x80 != 0 {
				i++
			}
		}
		i++
		if i < len(dol) {
			n += int(dol[i])
		}
		i++
	}
	return n
}

func (c *Card) gpo(data []byte) ([]byte, uint16) {
	if c.app < 0 {
		return nil, 0x6985
	}
	a := c.p.Applications[c.app]
	want := 0
	if a.PDOL != "-" {
		pdol, _ := unhex(a.PDOL)
		want = dolLen(pdol)
	}
	if len(data) < 2 || data[0] != 0x83 || int(data[1]) != len(data)-2 || int(data[1]) != want {
		return nil, 0x6700
	}
	c.gpoDone = true
	c.startTxn()
	c.tx.pdol = append([]byte(nil), data[2:]...)
	if c.p.ODA != nil && c.p.ODA.Method == ODAQPBOC {
		return c.qpbocGPO(data[2:])
	}
	aip := c.aip()
	if a.GPOFormat == 2 {
		return tlv("77", cat(tlv("82", aip), tlv("94", c.afl()))), 0x9000
	}
	return tlv("80", cat(aip, c.afl())), 0x9000
}

// dataObject is the value of a card data object, from the profile.
func (c *Card) dataObject(tag string) ([]byte, bool) {
	p := c.p
	if v, ok := c.objects[strings.ToUpper(tag)]; ok {
		return v, true // PUT DATA of an issuer script
	}
	if c.oda != nil {
		if v, ok := c.oda.objects[strings.ToUpper(tag)]; ok {
			return v, true
		}
		if strings.EqualFold(tag, "9F69") {
			return c.tx.card69, c.tx.card69 != nil
		}
	}
	switch strings.ToUpper(tag) {
	case "5A":
		return bcdPadF(p.PAN), true
	case "57":
		return bcdPadF(p.PAN + "D" + p.Expiry[:4] + p.ServiceCode + "0000000000"), true
	case "5F20":
		return []byte(p.Cardholder), p.Cardholder != ""
	case "9F0B":
		if p.CardholderExt == "" {
			return nil, false
		}
		b, err := simplifiedchinese.GB18030.NewEncoder().Bytes([]byte(p.CardholderExt))
		return b, err == nil
	case "5F24":
		return bcdPadF(p.Expiry), true
	case "5F25":
		return bcdPadF(p.Effective), true
	case "5F34":
		return bcdPadF(p.Seq), p.Seq != ""
	case "5F28":
		return []byte{0x01, 0x56}, true
	case "9F07":
		return []byte{0xFF, 0x00}, true
	case "9F08":
		return []byte{0x00, 0x30}, true
	case "9F1F":
		return []byte("000000"), true
	case "8C":
		if c.app < 0 {
			return nil, false
		}
		b, _ := unhex(p.Applications[c.app].CDOL1)
		return b, true
	case "8D":
		if c.app < 0 {
			return nil, false
		}
		b, _ := unhex(p.Applications[c.app].CDOL2)
		return b, true
	case "8E":
		b, _ := unhex(p.CVMList)
		return b, true
	case "9F0D", "9F0E", "9F0F":
		return []byte{0, 0, 0, 0, 0}, true
	}
	return nil, false
}

func (c *Card) record(sfi, n int) ([]byte, uint16) {
	if !c.gpoDone {
		return nil, 0x6985
	}
	for _, r := range c.p.Records {
		if r.SFI != sfi || r.Record != n {
			continue
		}
		if b, ok := c.records[[2]int{sfi, n}]; ok {
			return b, 0x9000 // UPDATE RECORD of an issuer script
		}
		var body []byte
		for _, t := range r.Tags {
			if v, ok := c.dataObject(t); ok {
				body = cat(body, tlv(strings.ToUpper(t), v))
			}
		}
		return tlv("70", body), 0x9000
	}
	return nil, 0x6A83
}

func (c *Card) generateAC(p1 byte, data []byte) ([]byte, uint16) {
	if !c.gpoDone || c.app < 0 {
		return nil, 0x6985
	}
	if c.p.ODA != nil && c.p.ODA.Method == ODAQPBOC {
		// qPBOC completes in GET PROCESSING OPTIONS: no GENERATE AC.
		return nil, 0x6985
	}
	cdol, _ := unhex(c.p.Applications[c.app].CDOL1)
	if len(data) != dolLen(cdol) {
		return nil, 0x6700
	}
	c.tx.cdol1 = append([]byte(nil), data...)
	c.atc++
	cid := byte(0x80) // ARQC
	if p1&0xC0 == 0x00 || c.blocked[c.app] {
		cid = 0x00 // the terminal asked for an AAC, or the application is blocked
	}
	ac, err := ARQC(c.key, c.atc, data)
	if err != nil {
		return nil, 0x6F00
	}
	atc := []byte{byte(c.atc >> 8), byte(c.atc)}
	c.gpoDone = false // one cryptogram per GPO
	c.tx.phase = phaseDone
	if cid == 0x80 {
		c.tx.phase, c.tx.arqc = phaseOnline, ac
	}
	// CVR byte 2: second GENERATE AC not requested (10), first returned
	// ARQC (10) or AAC (00).
	b2 := byte(0x80)
	if cid == 0x80 {
		b2 |= 0x20
	}
	if c.cdaRequested(p1, cid) {
		return c.cdaAnswer(cid, ac, c.iad(b2), cdol, data, c.tx.pdol, data)
	}
	return tlv("80", cat([]byte{cid}, atc, ac, c.iad(b2))), 0x9000
}

// bcdPadF packs digits (and 'D') into BCD, padding an odd count with F.
func bcdPadF(s string) []byte {
	if len(s)%2 != 0 {
		s += "F"
	}
	b, _ := hex.DecodeString(s)
	return b
}

// ARQC computes the application cryptogram the way the host simulator checks
// it: session key per EMV Book 2 A1.3 (common session key derivation, see
// SessionKey) from the 16-byte master key mk and the ATC, then ISO 9797-1 MAC
// algorithm 3 (retail MAC, padding method 2) over the CDOL1 data followed by
// the ATC. The TC or AAC of the second GENERATE AC is the same computation
// over the CDOL2 data.
func ARQC(mk []byte, atc uint16, cdol1Data []byte) ([]byte, error) {
	sk, err := SessionKey(mk, atc)
	if err != nil {
		return nil, err
	}
	return retailMAC(sk, cat(cdol1Data, []byte{byte(atc >> 8), byte(atc)}))
}

func retailMAC(key, data []byte) ([]byte, error) {
	kl, err := des.NewCipher(key[:8])
	if err != nil {
		return nil, err
	}
	kr, err := des.NewCipher(key[8:16])
	if err != nil {
		return nil, err
	}
	m := append(append([]byte(nil), data...), 0x80)
	for len(m)%8 != 0 {
		m = append(m, 0)
	}
	h := make([]byte, 8)
	for i := 0; i < len(m); i += 8 {
		for j := 0; j < 8; j++ {
			h[j] ^= m[i+j]
		}
		kl.Encrypt(h, h)
	}
	kr.Decrypt(h, h)
	kl.Encrypt(h, h)
	return h, nil
}

// AsCard wraps the virtual card as a cardreader.Card for in-process use: Mute
// becomes cardreader.ErrCardMute and Remove cardreader.ErrCardRemoved (and
// every later command fails the same way, as a pulled card would).
func (c *Card) AsCard(reader string) cardreader.Card { return &inproc{c: c, name: reader} }

type inproc struct {
	c       *Card
	name    string
	mu      sync.Mutex
	removed bool
}

func (i *inproc) Transmit(ctx context.Context, cmd []byte) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.removed {
		return nil, fmt.Errorf("cardsim: %w", cardreader.ErrCardRemoved)
	}
	resp, act := i.c.Process(cmd)
	switch act {
	case Mute:
		return nil, fmt.Errorf("cardsim: %w", cardreader.ErrCardMute)
	case Remove:
		i.removed = true
		return nil, fmt.Errorf("cardsim: %w", cardreader.ErrCardRemoved)
	}
	return resp, nil
}

func (i *inproc) ATR() []byte    { return i.c.ATR() }
func (i *inproc) Reader() string { return i.name }
func (i *inproc) Close() error   { return nil }
