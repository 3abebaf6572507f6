package hostsim

import (
	"bytes"
	"crypto/hmac"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"time"

	"github.com/moov-io/iso8583"

	"github.com/posagent/posagent/agent/acquirer"
	"github.com/posagent/posagent/agent/card/emv"
	"github.com/posagent/posagent/agent/sim/ledger"
	"github.com/posagent/posagent/provisioning/pan"
)

// The chip notices: a sale's TC upload before settlement (0320, the
// table's TCUpload, 203) or in the batch upload after an unbalanced one
// (205), and the issuer-script result notice (0620, 951). Their formats are
// the public apps' (LiaoYang_POS Src/tranproc.c BatchSendICCOnLineTrans and
// Src/emvtranproc.c SendScriptResult; the Centerm app's union_pay.xml,
// TRANS_IC_DETAIL and UPLOAD_SCRIPT_RESULT): the TC upload carries the
// sale's own STAN in field 11 and its TC set in 55, the notice a STAN of
// its own and the sale's batch and STAN in 61, DF31 in 55.

// TCRecord is a chip sale's TC as the host took it.
type TCRecord struct {
	TID, Batch string
	STAN       int // the sale's
	Amount     int64
	// Code is the 60.3 it came with: the TC upload's, or the batch
	// upload's after an unbalanced settlement.
	Code string
	// CID, ATC and TC are 9F27, 9F36 and 9F26 of field 55; Data is the
	// whole field as sent (IC data: no cardholder data in it).
	CID  byte
	ATC  uint16
	TC   []byte
	Data []byte
}

// ScriptRecord is one script-result notice as the host took it.
type ScriptRecord struct {
	TID, Batch string
	STAN       int // the sale's, from field 61
	NoticeSTAN int // field 11 of the notice
	ATC        uint16
	// Results is DF31: 5 bytes per script run (result and sequence, then
	// the script identifier).
	Results []byte
}

// TCUploads returns the TCs the host took from terminal tid, in the order
// they came, copies.
func (s *Server) TCUploads(tid string) []TCRecord {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]TCRecord, 0, len(s.tcs[tid]))
	for _, r := range s.tcs[tid] {
		r.TC, r.Data = bytes.Clone(r.TC), bytes.Clone(r.Data)
		out = append(out, r)
	}
	return out
}

// ScriptResults returns the script-result notices the host took from
// terminal tid, in the order they came, copies.
func (s *Server) ScriptResults(tid string) []ScriptRecord {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]ScriptRecord, 0, len(s.scripts[tid]))
	for _, r := range s.scripts[tid] {
		r.Results = bytes.Clone(r.Results)
		out = append(out, r)
	}
	return out
}

var errNotice55 = errors.New("hostsim: field 55 of a chip notice does not parse")

// tcOf reads a TC upload's field 55: 9F27 (CID), 9F36 (ATC) and 9F26 (the
// cryptogram), each of its EMV length.
func tcOf(f55 []byte) (cid byte, atc uint16, tc []byte, err error) {
	objs, err := emv.DecodeTLV(f55)
	if err != nil {
		return 0, 0, nil, errNotice55
	}
	c, ok1 := emv.Find(objs, 0x9F27)
	a, ok2 := emv.Find(objs, 0x9F36)
	ac, ok3 := emv.Find(objs, 0x9F26)
	if !ok1 || !ok2 || !ok3 || len(c.Value) != 1 || len(a.Value) != 2 || len(ac.Value) != 8 {
		return 0, 0, nil, errNotice55
	}
	return c.Value[0], binary.BigEndian.Uint16(a.Value), ac.Value, nil
}

// scriptsOf reads a script-result notice's field 55: DF31, one or more
// 5-byte results, and the ATC 9F36 of the transaction they ran in.
func scriptsOf(f55 []byte) (results []byte, atc uint16, err error) {
	objs, err := emv.DecodeTLV(f55)
	if err != nil {
		return nil, 0, errNotice55
	}
	r, ok1 := emv.Find(objs, 0xDF31)
	a, ok2 := emv.Find(objs, 0x9F36)
	if !ok1 || !ok2 || len(r.Value) == 0 || len(r.Value)%5 != 0 || len(a.Value) != 2 {
		return nil, 0, errNotice55
	}
	return r.Value, binary.BigEndian.Uint16(a.Value), nil
}

// atcOf is the ATC (9F36) of a sale's field 55, when it has one.
func atcOf(f55 []byte) (uint16, bool) {
	objs, err := emv.DecodeTLV(f55)
	if err != nil {
		return 0, false
	}
	a, ok := emv.Find(objs, 0x9F36)
	if !ok || len(a.Value) != 2 {
		return 0, false
	}
	return binary.BigEndian.Uint16(a.Value), true
}

// cidTC says whether a cryptogram information data names a TC (its top two
// bits 01, EMV Book 3 Table 14).
func cidTC(cid byte) bool { return cid&0xC0 == 0x40 }

// chipSale finds the approved, unreversed sale a chip notice is about and
// checks what the notice repeats of it: field 2 (14 when it is another
// card's) and, where sent, field 4 (64). "" when all is well.
func (s *Server) chipSale(m *iso8583.Message, tid, batch string, stan int, checkAmount bool) (*txn, string) {
	t := s.txns[txnKey{tid, batch, stan}]
	if t == nil || t.e.Kind != KindSale || t.reversed {
		return nil, "25" // no such original
	}
	if p := acquirer.Get(m, 2); p != "" {
		same := pan.Mask(p) == t.e.Card
		if t.panMAC != nil {
			same = hmac.Equal(s.panMAC(p), t.panMAC)
		}
		if !same {
			return nil, "14"
		}
	}
	if checkAmount && t.e.Amount != int64(atoi(acquirer.Get(m, 4))) {
		return nil, "64"
	}
	return t, ""
}

// takeTC checks field 55 of a chip sale's upload against the sale t: a TC
// (9F27), of the transaction whose ARQC the host approved (9F36, when the
// host saw it: the ATC lives in memory only). It returns the record and
// "", or the response code: 30 for a field 55 that is not a TC set, 25 for
// a TC of another transaction of the card.
func takeTC(t *txn, f55 []byte, code string) (TCRecord, string) {
	cid, atc, tc, err := tcOf(f55)
	if err != nil || !cidTC(cid) {
		return TCRecord{}, "30"
	}
	if t.hasATC && t.atc != atc {
		return TCRecord{}, "25"
	}
	return TCRecord{TID: t.e.TID, Batch: t.e.Batch, STAN: t.e.STAN, Amount: t.e.Amount, Code: code,
		CID: cid, ATC: atc, TC: bytes.Clone(tc), Data: bytes.Clone(f55)}, ""
}

// keepTC books a TC the host took: on the ledger (an answered record, no
// money) and in memory for TCUploads. A TC sent again, the same bytes, is
// taken once; another one for a sale that has its TC is a duplicate (94).
func (s *Server) keepTC(t *txn, r TCRecord, m *iso8583.Message, now time.Time) string {
	if t.tc != nil {
		if bytes.Equal(t.tc.Data, r.Data) {
			return "00"
		}
		return "94"
	}
	e := ledger.Entry{Time: now.UTC(), Event: ledger.EventAnswered, Kind: ledger.KindTCUpload, TID: r.TID,
		MID: acquirer.Get(m, 42), Batch: r.Batch, STAN: r.STAN, OrigSTAN: r.STAN, Amount: r.Amount, Card: t.e.Card,
		Code: r.Code, Codes: s.cfg.Codes.Name, Item: "TC " + hex.EncodeToString(r.TC)}
	if _, err := s.append(e); err != nil {
		return "96"
	}
	t.tc = &r
	s.tcs[r.TID] = append(s.tcs[r.TID], r)
	return "00"
}

// tcUpload answers a TC upload (0320, TCUpload): the sale it names (field
// 11, the sale's STAN, in the batch of 60.2) must be one the host
// approved and still stands, and its field 55 a TC of that transaction
// (takeTC). The upload counts towards the batch upload's received records,
// as a chip sale uploaded before settlement is one the terminal need not
// send again.
func (s *Server) tcUpload(m *iso8583.Message, f60 acquirer.Field60, st *terminal, now time.Time) string {
	if f60.Batch != st.batch || st.settle != nil && st.settle.ended {
		return "77"
	}
	tid := acquirer.Get(m, 41)
	t, rc := s.chipSale(m, tid, f60.Batch, atoi(acquirer.Get(m, 11)), true)
	if rc != "" {
		return rc
	}
	r, rc := takeTC(t, acquirer.GetBytes(m, 55), f60.Code)
	if rc != "" {
		return rc
	}
	if t.tc == nil {
		st.received++
	}
	return s.keepTC(t, r, m, now)
}

// scriptResult answers a script-result notice (0620, ScriptResult), MACed
// as both public apps send it: the sale of field 61 (batch, STAN) must be
// one the host approved, and field 55 carry DF31 with the ATC of that
// sale's ARQC (when the host saw it). The results go on the ledger as an
// answered record and into ScriptResults.
func (s *Server) scriptResult(m *iso8583.Message, f60 acquirer.Field60, st *terminal, now time.Time) string {
	if f60.Batch != st.batch || st.settle != nil && st.settle.ended {
		return "77"
	}
	f61 := acquirer.Get(m, 61)
	if len(f61) < 12 {
		return "30"
	}
	tid := acquirer.Get(m, 41)
	t, rc := s.chipSale(m, tid, f61[:6], atoi(f61[6:12]), false)
	if rc != "" {
		return rc
	}
	results, atc, err := scriptsOf(acquirer.GetBytes(m, 55))
	if err != nil {
		return "30"
	}
	if t.hasATC && t.atc != atc {
		return "25"
	}
	r := ScriptRecord{TID: tid, Batch: t.e.Batch, STAN: t.e.STAN, NoticeSTAN: atoi(acquirer.Get(m, 11)), ATC: atc,
		Results: bytes.Clone(results)}
	e := ledger.Entry{Time: now.UTC(), Event: ledger.EventAnswered, Kind: ledger.KindScriptResult, TID: tid,
		MID: acquirer.Get(m, 42), Batch: f60.Batch, STAN: r.NoticeSTAN, OrigSTAN: r.STAN, Card: t.e.Card,
		Code: f60.Code, Codes: s.cfg.Codes.Name, Item: "DF31 " + hex.EncodeToString(results)}
	if _, err := s.append(e); err != nil {
		return "96"
	}
	s.scripts[tid] = append(s.scripts[tid], r)
	return "00"
}
