package hostsim

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"fmt"

	"github.com/posagent/posagent/agent/card/emv"
)

// AID is the IC parameters of one application the host serves in the IC
// parameter download (0800/380).
type AID struct {
	AID []byte // 9F06
	// ASI is DF01, the application selection indicator.
	ASI byte
	// Version is the terminal's application version number (2 bytes), sent
	// under Config.AppVersionTag.
	Version []byte
	// TACDefault, TACOnline and TACDenial are DF11, DF12 and DF13 (5 bytes each).
	TACDefault, TACOnline, TACDenial []byte
	// FloorLimit (9F1B) and Threshold (DF15, for biased random selection)
	// are 4-byte binary amounts in minor units.
	FloorLimit, Threshold uint32
	// MaxTargetPercent (DF16) and TargetPercent (DF17) are one BCD byte each.
	MaxTargetPercent, TargetPercent int
	// DefaultDDOL is DF14.
	DefaultDDOL []byte
	// OnlinePIN is DF18: the terminal may take an online PIN for it.
	OnlinePIN bool
	// ECashLimit (9F7B), CLFloorLimit (DF19), CLLimit (DF20) and CVMLimit
	// (DF21) are 6-byte BCD amounts the public POSPs append (Config.ICTags).
	ECashLimit, CLFloorLimit, CLLimit, CVMLimit int64
}

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

// DefaultAIDs are UnionPay's debit, credit, quasi-credit and electronic cash
// applications with the action codes and limits of the public Centerm app's
// defaults (bitian123/HandSetWisdomCashier library/src/main/java/config/
// BusinessConfig.java), except the floor limit: 0, as an online-only terminal
// has (PROTOCOLS.md §2).
func DefaultAIDs() []AID {
	var out []AID
	for _, suffix := range []string{"01", "02", "03", "06"} {
		out = append(out, AID{AID: mustHex("A0000003330101" + suffix), ASI: 0, Version: []byte{0x00, 0x20},
			TACDefault: mustHex("D84000A800"), TACOnline: mustHex("D84004F800"), TACDenial: mustHex("0010000000"),
			MaxTargetPercent: 99, TargetPercent: 99, DefaultDDOL: mustHex("9F3704"), OnlinePIN: true,
			ECashLimit: 100000, CLLimit: 100000, CVMLimit: 30000})
	}
	return out
}

func (a AID) check() error {
	if n := len(a.AID); n < 5 || n > 16 {
		return fmt.Errorf("hostsim: AID of %d bytes (5 to 16)", n)
	}
	if len(a.Version) != 2 || len(a.TACDefault) != 5 || len(a.TACOnline) != 5 || len(a.TACDenial) != 5 {
		return fmt.Errorf("hostsim: AID %X: version is 2 bytes, action codes 5", a.AID)
	}
	if a.MaxTargetPercent < 0 || a.MaxTargetPercent > 99 || a.TargetPercent < 0 || a.TargetPercent > 99 {
		return fmt.Errorf("hostsim: AID %X: target percentages are 0-99", a.AID)
	}
	return nil
}

// IC parameter tag sets: the public POSPs send 16 tags (chinaljp/posp
// trunk/src/lib/trans/admin/down_param.c GetICParam, ConardLKL/posp_server
// M_DownParameterChecker.downParameterInfo); PROTOCOLS.md lists the first 12.
const (
	ICTagsPOSP = "posp"
	ICTagsSpec = "spec"
)

// bcdByte is n (0-99) as one BCD byte.
func bcdByte(n int) byte { return byte(n/10<<4 | n%10) }

// bcd6 is n as 12 BCD digits.
func bcd6(n int64) []byte {
	b, _ := hex.DecodeString(fmt.Sprintf("%012d", n))
	return b
}

func u32(n uint32) []byte { return binary.BigEndian.AppendUint32(nil, n) }

// aidAnswer is '1' and the AID's parameters as TLV, in the public POSPs'
// order, or '0' for an AID the host has not. The application version goes
// under 9F08 by default: both public POSPs and the public terminal apps use
// 9F08, and one POSP says in a comment that the POS specification's 9F09 is
// wrong ("应用有效期为9F08 pos规范的9F09是错误的",
// M_DownParameterChecker.java); 9F09 is Config.AppVersionTag's other choice.
func (s *Server) aidAnswer(aid []byte) ([]byte, bool) {
	for _, a := range s.aids {
		if !bytes.Equal(a.AID, aid) {
			continue
		}
		b := []byte{pageAll}
		pin := byte(0)
		if a.OnlinePIN {
			pin = 1
		}
		for _, tv := range []struct {
			t emv.Tag
			v []byte
		}{
			{0x9F06, a.AID}, {0xDF01, []byte{a.ASI}}, {s.cfg.AppVersionTag, a.Version},
			{0xDF11, a.TACDefault}, {0xDF12, a.TACOnline}, {0xDF13, a.TACDenial},
			{0x9F1B, u32(a.FloorLimit)}, {0xDF15, u32(a.Threshold)},
			{0xDF16, []byte{bcdByte(a.MaxTargetPercent)}}, {0xDF17, []byte{bcdByte(a.TargetPercent)}},
			{0xDF14, a.DefaultDDOL}, {0xDF18, []byte{pin}},
		} {
			b = emv.EncodeTLV(b, tv.t, tv.v)
		}
		if s.cfg.ICTags != ICTagsSpec {
			b = emv.EncodeTLV(b, 0x9F7B, bcd6(a.ECashLimit))
			b = emv.EncodeTLV(b, 0xDF19, bcd6(a.CLFloorLimit))
			b = emv.EncodeTLV(b, 0xDF20, bcd6(a.CLLimit))
			b = emv.EncodeTLV(b, 0xDF21, bcd6(a.CVMLimit))
		}
		return b, true
	}
	return []byte{pageNone}, false
}

// aidList is one query item per AID: 9F06.
func (s *Server) aidList() [][]byte {
	var out [][]byte
	for _, a := range s.aids {
		out = append(out, emv.EncodeTLV(nil, 0x9F06, a.AID))
	}
	return out
}

// parseAIDRequest reads an IC parameter download's field 62: 9F06 and the
// AID (LiaoYang_POS DownLoadEmvParam).
func parseAIDRequest(b []byte) ([]byte, error) {
	objs, err := emv.DecodeTLV(b)
	if err != nil {
		return nil, errKeyRequest
	}
	aid, ok := emv.Find(objs, 0x9F06)
	if !ok || len(aid.Value) < 5 || len(aid.Value) > 16 {
		return nil, errKeyRequest
	}
	return aid.Value, nil
}

// SetAIDs replaces the host's IC parameters, and triggers the schedule's
// ChangeIC demands for every terminal it knows.
func (s *Server) SetAIDs(aids []AID) error {
	for _, a := range aids {
		if err := a.check(); err != nil {
			return err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.aids = append([]AID(nil), aids...)
	s.changed(ChangeIC)
	return nil
}
