package hostsim

import (
	"fmt"
	"io"

	"github.com/posagent/posagent/agent/acquirer"
)

// KeyLayout is how the sign-on answer's field 62 carries the working keys,
// each encrypted under the TMK (ECB) and followed by a check value of the
// clear key (the first bytes of 8 zero bytes encrypted under it).
type KeyLayout string

// Key layouts real hosts use.
const (
	// LayoutStandard is PROTOCOLS.md's: 001 PIK(8) CV(4) MAK(8) CV(4)
	// [TDK(8) CV(4) with Config.DESWithTDK]; 003 PIK(16) CV(4) MAK(16) CV(4);
	// 004 the same and TDK(16) CV(4).
	LayoutStandard KeyLayout = "standard"
	// LayoutSingleMAK delivers a single-length MAK in the double-length slot:
	// 8 bytes of ciphertext, 8 zero bytes, and the check value of the 8-byte
	// key, as a public POSP does for its DES terminals (ConardLKL/posp_server
	// posp/posp-core/.../checker/M_SignInChecker.java createTpkAndTak appends
	// "0000000000000000" after the TAK). Terminals detect the zero half (the
	// Centerm app, bitian123/HandSetWisdomCashier .../task/AsyncSignTask.java)
	// or only ever load the first 8 bytes (LiaoYang_POS Src/pospin.c
	// LogonDivKey); one that decrypts all 16 bytes fails the check value.
	// The host then MACs with the single-length key. 001 is unchanged.
	LayoutSingleMAK KeyLayout = "single-mak"
	// LayoutTagged is chinaljp/posp's (trunk/src/lib/in-manager/posd1.9/
	// packmsg.c SetFld, field 62 "用法1"): each key after a one-byte tag,
	// 01 MAK, 02 PIK, 03 TDK, as 16 bytes and an 8-byte check value (the
	// 48-hex-digit slot the POSP copies: 32 for the key, 16 for its value).
	// Always with a TDK. For 003 and 004; 001 answers are standard.
	LayoutTagged KeyLayout = "tagged"
)

// KeyLayouts lists the layouts, for flag help.
var KeyLayouts = []KeyLayout{LayoutStandard, LayoutSingleMAK, LayoutTagged}

// workingKeys makes fresh keys for a sign-on in mode (60.3) and field 62
// carrying them under the TMK.
func (s *Server) workingKeys(code string, tmk acquirer.Key) (acquirer.WorkingKeys, []byte, error) {
	t := s.cfg.Codes
	var wk acquirer.WorkingKeys
	n, tdk := 16, false
	switch code {
	case t.SignOnSingle:
		n, tdk = 8, s.cfg.DESWithTDK
	case t.SignOnDouble:
		tdk = s.cfg.KeyLayout == LayoutTagged
	case t.SignOnDoubleTDK:
		tdk = true
	default:
		return wk, nil, errMode
	}
	fresh := func(n int) (acquirer.Key, error) {
		k := make(acquirer.Key, n)
		_, err := io.ReadFull(s.cfg.Rand, k)
		return k, err
	}
	var err error
	if wk.PIK, err = fresh(n); err != nil {
		return wk, nil, err
	}
	makLen := n
	if n == 16 && s.cfg.KeyLayout == LayoutSingleMAK {
		makLen = 8
	}
	if wk.MAK, err = fresh(makLen); err != nil {
		return wk, nil, err
	}
	if tdk {
		if wk.TDK, err = fresh(n); err != nil {
			return wk, nil, err
		}
	}
	f62, err := s.field62(wk, n, tmk)
	return wk, f62, err
}

var errMode = fmt.Errorf("hostsim: sign-on key mode is not in the code table")

// slot is a key encrypted under the TMK, padded with zero bytes to width,
// and its check value of cvLen bytes.
func (s *Server) slot(tmk, k acquirer.Key, width, cvLen int) ([]byte, error) {
	enc, err := acquirer.EncryptECB(tmk, k)
	if err != nil {
		return nil, err
	}
	full, err := acquirer.EncryptECB(k, make([]byte, 8))
	if err != nil {
		return nil, err
	}
	out := append(enc, make([]byte, width-len(enc))...)
	return append(out, full[:cvLen]...), nil
}

func (s *Server) field62(wk acquirer.WorkingKeys, n int, tmk acquirer.Key) ([]byte, error) {
	var out []byte
	if s.cfg.KeyLayout == LayoutTagged && n == 16 {
		for _, tk := range []struct {
			tag byte
			k   acquirer.Key
		}{{0x01, wk.MAK}, {0x02, wk.PIK}, {0x03, wk.TDK}} {
			b, err := s.slot(tmk, tk.k, 16, 8)
			if err != nil {
				return nil, err
			}
			out = append(append(out, tk.tag), b...)
		}
		return out, nil
	}
	for _, k := range []acquirer.Key{wk.PIK, wk.MAK, wk.TDK} {
		if len(k) == 0 {
			continue
		}
		b, err := s.slot(tmk, k, n, 4)
		if err != nil {
			return nil, err
		}
		out = append(out, b...)
	}
	return out, nil
}
