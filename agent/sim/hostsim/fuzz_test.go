package hostsim

import (
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/posagent/posagent/agent/acquirer"
	"github.com/posagent/posagent/agent/card/emv"
	"github.com/posagent/posagent/agent/sim/ledger"
)

// Fuzz targets for every parser of terminal bytes the install procedure
// added: none may panic, whatever the terminal sends.

func FuzzParseQuery(f *testing.F) {
	for _, s := range []string{"100", "1", "105", "2", "1x", "", "19999"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if n, err := parseQuery(b); err == nil && (n < 0 || n > 999) {
			t.Fatalf("offset %d", n)
		}
	})
}

func FuzzParseKeyRequest(f *testing.F) {
	f.Add(emv.EncodeTLV(emv.EncodeTLV(nil, 0x9F06, []byte{0xA0, 0, 0, 3, 0x33}), 0x9F22, []byte{0x80}))
	f.Add([]byte{0x9F, 0x06, 0x81})
	f.Add([]byte{0x9F, 0x06, 0x82, 0xFF, 0xFF})
	f.Fuzz(func(t *testing.T, b []byte) {
		if rid, _, err := parseKeyRequest(b); err == nil && len(rid) != 5 {
			t.Fatalf("RID of %d bytes", len(rid))
		}
		if aid, err := parseAIDRequest(b); err == nil && (len(aid) < 5 || len(aid) > 16) {
			t.Fatalf("AID of %d bytes", len(aid))
		}
	})
}

func FuzzParseStatus(f *testing.F) {
	f.Add([]byte("011021031041051116012601331418000000"))
	f.Add([]byte("22short"))
	f.Add([]byte{0})
	f.Fuzz(func(t *testing.T, b []byte) {
		tags, err := parseStatus(b)
		if err == nil && len(tags) == 0 {
			t.Fatal("no tags and no error")
		}
	})
}

func FuzzParseTotals(f *testing.F) {
	f.Add(strings.Repeat("0", 62))
	f.Add("000000000001001000000000001001" + "0")
	f.Add("12x")
	f.Fuzz(func(t *testing.T, s string) {
		dom, _, err := parseTotals(s)
		if err == nil && (dom.DebitCount < 0 || dom.CreditAmount < 0) {
			t.Fatalf("negative totals %+v", dom)
		}
	})
}

func FuzzParseBatch(f *testing.F) {
	f.Add("01" + "00" + "000002" + "0" + "6222021234567890123" + "000000000001")
	f.Add("00")
	f.Add("09" + strings.Repeat("0", 360))
	f.Fuzz(func(t *testing.T, s string) {
		recs, err := parseBatch(s)
		if err == nil && (len(recs) == 0 || len(recs) > 8) {
			t.Fatalf("%d records", len(recs))
		}
	})
}

// FuzzHandle feeds whole messages to a host whose terminal has signed on:
// every management message the install procedure has, then anything.
func FuzzHandle(f *testing.F) {
	tmk, _ := acquirer.ParseKey("0123456789ABCDEFFEDCBA9876543210")
	l, err := ledger.Open(filepath.Join(f.TempDir(), "ledger.jsonl"))
	if err != nil {
		f.Fatal(err)
	}
	defer l.Close()
	capks, err := DefaultCAPKs()
	if err != nil {
		f.Fatal(err)
	}
	s, err := New(Config{TMK: tmk, Ledger: l, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), CAPKs: capks,
		Demands: []Demand{{On: KindSignOn, Digits: "45"}}})
	if err != nil {
		f.Fatal(err)
	}
	msg := func(mti string, fields map[int]string, f62 []byte) []byte {
		m := acquirer.NewMessage(mti)
		for id, v := range fields {
			_ = acquirer.Set(m, id, v)
		}
		if f62 != nil {
			_ = acquirer.SetBytes(m, 62, f62)
		}
		b, _ := acquirer.Pack(m)
		return b
	}
	base := func(code string, extra map[int]string) map[int]string {
		out := map[int]string{11: "000001", 41: "12345678", 42: "898100012340001", 60: "00000001" + code}
		for k, v := range extra {
			out[k] = v
		}
		return out
	}
	signOn := msg("0800", base("004", nil), nil)
	s.handle(acquirer.Frame{Message: signOn})
	for _, seed := range [][]byte{
		signOn,
		msg("0820", base("372", nil), []byte("100")),
		msg("0800", base("370", nil), emv.EncodeTLV(emv.EncodeTLV(nil, 0x9F06, capks[0].RID), 0x9F22, []byte{capks[0].Index})),
		msg("0800", base("371", nil), nil),
		msg("0820", base("382", nil), []byte("100")),
		msg("0800", base("380", nil), emv.EncodeTLV(nil, 0x9F06, mustHex("A000000333010101"))),
		msg("0800", base("381", nil), nil),
		msg("0800", base("360", nil), nil),
		msg("0820", base("362", nil), []byte("0111160")),
		msg("0500", base("201", map[int]string{48: strings.Repeat("0", 62)}), nil),
		msg("0320", base("201", map[int]string{48: "01" + "00000001" + strings.Repeat("0", 32)}), nil),
		msg("0320", base("207", map[int]string{48: "0000"}), nil),
		msg("0820", base("002", nil), nil),
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		a := s.handle(acquirer.Frame{Message: b})
		if a.msg != nil {
			if _, err := s.pack(a, Fault{}); err != nil {
				t.Fatalf("answer of kind %s does not pack: %v", a.kind, err)
			}
			for _, act := range AnswerActions {
				_, _ = s.pack(a, Fault{Action: act})
			}
		}
	})
}

// FuzzChipAuth: whatever field 55 a terminal sends, the issuer's answer to
// it (the ARQC lookup, then 91 and scripts) neither panics nor exceeds what
// field 55 holds. A seed with a real cryptogram reaches the answer.
func FuzzChipAuth(f *testing.F) {
	cards, err := LoadCards(filepath.Join("..", "..", "..", "testdata", "cards"))
	if err != nil {
		f.Fatal(err)
	}
	s := &Server{cfg: Config{Cards: cards, Scripts: DefaultScripts, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}}
	const pan = "6222021234567890128"
	f.Add(mustHex("9F2608067B6FC29AC3F6D19F2701809F100707010103A000009F370411FD77229F36020011950500000000" +
		"009A032612039C01009F02060000000001005F2A02015682027C009F1A0201569F03060000000000009F3303E0E1C8" +
		"9F34033F00009F3501229F1E08504F534147454E548408A0000003330101019F09020030"))
	f.Add([]byte{0x9F, 0x26, 0x08, 1, 2, 3, 4, 5, 6, 7, 8, 0x9F, 0x36, 0x02, 0, 1})
	f.Add([]byte{0x9F, 0x36, 0x81})
	f.Fuzz(func(t *testing.T, b []byte) {
		m := acquirer.NewMessage("0200")
		if acquirer.SetBytes(m, 55, b) != nil {
			return
		}
		a := s.chipAuth(m, pan)
		if a == nil {
			return
		}
		for _, act := range append([]Action{""}, AnswerActions...) {
			out, err := s.answer55(a, "00", act)
			if err != nil || len(out) > 255 {
				t.Fatalf("%s: %d bytes, %v", act, len(out), err)
			}
		}
	})
}

// FuzzChipNotices: the parsers of a chip notice's field 55 (TC upload,
// script results) and of a sale's ATC never panic, and what they accept has
// the EMV lengths.
func FuzzChipNotices(f *testing.F) {
	f.Add(emv.EncodeTLV(emv.EncodeTLV(emv.EncodeTLV(nil, 0x9F26, make([]byte, 8)), 0x9F27, []byte{0x40}), 0x9F36, []byte{0, 0x11}))
	f.Add(emv.EncodeTLV(emv.EncodeTLV(nil, 0x9F36, []byte{0, 0x11}), 0xDF31, []byte{0x20, 0, 0, 0, 1}))
	f.Add([]byte{0xDF, 0x31, 0x83, 0xFF})
	f.Add([]byte{0x70, 0x05, 0x9F, 0x36, 0x02, 0x00, 0x01})
	f.Fuzz(func(t *testing.T, b []byte) {
		if _, _, tc, err := tcOf(b); err == nil && len(tc) != 8 {
			t.Fatalf("TC of %d bytes", len(tc))
		}
		if r, _, err := scriptsOf(b); err == nil && (len(r) == 0 || len(r)%5 != 0) {
			t.Fatalf("DF31 of %d bytes", len(r))
		}
		_, _ = atcOf(b)
	})
}
