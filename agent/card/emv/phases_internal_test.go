package emv

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"testing"
	"time"

	"github.com/posagent/posagent/drivers/cardreader/cardreadertest"
)

func unhexT(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// phaseSession is a session on 2026-11-27 with the card data given (hex
// by tag) and the terminal t (zero fields from DefaultTerminal).
func phaseSession(t *testing.T, term Terminal, txn Transaction, card map[Tag]string) *session {
	t.Helper()
	term.Now = func() time.Time { return time.Date(2026, 11, 27, 8, 30, 0, 0, time.UTC) }
	term.Rand = bytes.NewReader(make([]byte, 4))
	s, err := newSession(nil, term, txn)
	if err != nil {
		t.Fatal(err)
	}
	for tag, v := range card {
		s.cdata[tag] = unhexT(t, v)
	}
	return s
}

// TestSelectODA: CDA before DDA before SDA, each only when both the AIP
// (byte 1: SDA b7, DDA b6, CDA b1) and 9F33 byte 3 (SDA b8, DDA b7, CDA b4)
// have it (EMV Book 3 §10.3).
func TestSelectODA(t *testing.T) {
	for _, tc := range []struct {
		aip, caps string
		want      odaMethod
	}{
		{"7D00", "606800", odaNone}, // today's terminal: no method whatever the card has
		{"7D00", "6068C8", odaCDA},
		{"7C00", "6068C8", odaDDA},
		{"4000", "6068C8", odaSDA},
		{"0100", "606880", odaNone}, // CDA card, SDA terminal
		{"6100", "606840", odaDDA},
		{"6100", "606808", odaCDA},
		{"6000", "606808", odaNone},
		{"3800", "6068C8", odaDDA},
		{"", "6068C8", odaNone},
		{"7D00", "6068", odaNone},
	} {
		if got := selectODA(unhexT(t, tc.aip), unhexT(t, tc.caps)); got != tc.want {
			t.Errorf("AIP %s 9F33 %s: %v, want %v", tc.aip, tc.caps, got, tc.want)
		}
	}
}

// TestODAResult is the TVR byte 1 and TSI byte 1 of each ODA outcome
// (Book 3 §10.3, Annex C5): not performed b8 and TSI clear; a performed
// method sets TSI b8; SDA selected b2; failures SDA b7, DDA b4, CDA b3;
// ICC data missing b6; exception file b5.
func TestODAResult(t *testing.T) {
	for _, tc := range []struct {
		r         odaResult
		tvr1, tsi byte
	}{
		{odaResult{method: odaNone}, 0x80, 0x00},
		{odaResult{method: odaSDA}, 0x02, 0x80},
		{odaResult{method: odaSDA, failed: true}, 0x42, 0x80},
		{odaResult{method: odaSDA, failed: true, iccDataMissing: true}, 0x62, 0x80},
		{odaResult{method: odaDDA}, 0x00, 0x80},
		{odaResult{method: odaDDA, failed: true}, 0x08, 0x80},
		{odaResult{method: odaCDA, failed: true}, 0x04, 0x80},
		{odaResult{method: odaCDA}, 0x00, 0x80},
		{odaResult{method: odaNone, iccDataMissing: true}, 0xA0, 0x00},
		{odaResult{method: odaDDA, exceptionFile: true}, 0x10, 0x80},
	} {
		tvr, tsi := make([]byte, 5), make([]byte, 2)
		tc.r.apply(tvr, tsi)
		if tvr[0] != tc.tvr1 || tsi[0] != tc.tsi || !bytes.Equal(tvr[1:], make([]byte, 4)) || tsi[1] != 0 {
			t.Errorf("%v %+v: TVR %X TSI %X, want byte 1 %02X, TSI %02X", tc.r.method, tc.r, tvr, tsi, tc.tvr1, tc.tsi)
		}
	}
}

// TestODAStep: a card claiming every method (7D00) but carrying none of
// its data. The default terminal (SDA, DDA, CDA) selects CDA, performs it
// and fails it for the missing objects (CDA failed, ICC data missing); a
// hand-set 9F33 claiming SDA and DDA only selects DDA and fails it so.
func TestODAStep(t *testing.T) {
	for caps, want := range map[string]string{"": "2400000000 8000", "6068C0": "2800000000 8000"} {
		term := Terminal{}
		if caps != "" {
			term.Capabilities = unhexT(t, caps)
		}
		s := phaseSession(t, term, Transaction{}, map[Tag]string{0x82: "7D00"})
		if err := s.oda(context.Background()); err != nil {
			t.Fatal(err)
		}
		if got := Hex(s.tdata[0x95]) + " " + Hex(s.tdata[0x9B]); got != want {
			t.Errorf("9F33 %q: TVR TSI %s, want %s", caps, got, want)
		}
	}
}

// TestRestrictions are processing restrictions (Book 3 §10.4) on a
// terminal in China (9F1A 0156, 9F09 0030) on 2026-11-27: TVR byte 2 b8
// versions, b7 expired, b6 not yet effective, b5 service not allowed.
func TestRestrictions(t *testing.T) {
	good := map[Tag]string{0x9F08: "0030", 0x9F07: "FF00", 0x5F28: "0156", 0x5F25: "200101", 0x5F24: "301231"}
	with := func(k Tag, v string) map[Tag]string {
		m := map[Tag]string{}
		for a, b := range good {
			m[a] = b
		}
		if v == "-" {
			delete(m, k)
		} else {
			m[k] = v
		}
		return m
	}
	for _, tc := range []struct {
		name string
		card map[Tag]string
		typ  byte
		want byte
	}{
		{"all well", good, 0x00, 0x00},
		{"other version", with(0x9F08, "0020"), 0x00, tvrVersionsDiffer},
		{"no card version", with(0x9F08, "-"), 0x00, 0x00},
		{"expired yesterday", with(0x5F24, "261126"), 0x00, tvrExpired},
		{"expires today", with(0x5F24, "261127"), 0x00, 0x00},
		{"expired last century", with(0x5F24, "991231"), 0x00, tvrExpired},
		{"expiry not a date", with(0x5F24, "261340"), 0x00, tvrExpired},
		{"effective tomorrow", with(0x5F25, "261128"), 0x00, tvrNotEffective},
		{"effective today", with(0x5F25, "261127"), 0x00, 0x00},
		{"no effective date", with(0x5F25, "-"), 0x00, 0x00},
		{"no domestic goods or services", with(0x9F07, "D700"), 0x00, tvrServiceNotAllow},
		{"domestic services only", with(0x9F07, "0900"), 0x00, 0x00},
		{"not at terminals other than ATMs", with(0x9F07, "FE00"), 0x00, tvrServiceNotAllow},
		{"foreign card, international goods", map[Tag]string{0x9F07: "1100", 0x5F28: "0840"}, 0x00, 0x00},
		{"foreign card, domestic use only", map[Tag]string{0x9F07: "2900", 0x5F28: "0840"}, 0x00, tvrServiceNotAllow},
		{"no issuer country: type not checked", map[Tag]string{0x9F07: "0100"}, 0x00, 0x00},
		{"cash not allowed", with(0x9F07, "7F00"), 0x01, tvrServiceNotAllow},
		{"cashback not allowed", with(0x9F07, "FF40"), 0x09, tvrServiceNotAllow},
		{"domestic cashback", with(0x9F07, "FF80"), 0x09, 0x00},
		{"inquiry is not restricted", with(0x9F07, "0100"), 0x31, 0x00},
		{"everything wrong", map[Tag]string{0x9F08: "0001", 0x9F07: "0000", 0x5F25: "270101", 0x5F24: "200101"}, 0x00,
			tvrVersionsDiffer | tvrExpired | tvrNotEffective | tvrServiceNotAllow},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := phaseSession(t, Terminal{}, Transaction{Amount: 100, Type: tc.typ}, tc.card)
			s.restrictions()
			tvr := s.tdata[0x95]
			if tvr[1] != tc.want || tvr[0] != 0 || tvr[2] != 0 || tvr[3] != 0 || tvr[4] != 0 {
				t.Errorf("TVR %X, want byte 2 %02X", tvr, tc.want)
			}
		})
	}
}

// TestRestrictionsATM: at an ATM (9F35 14, cash in 9F40) the AUC must say
// "valid at ATMs" (b2) instead of "valid at other terminals" (b1).
func TestRestrictionsATM(t *testing.T) {
	atm := Terminal{Type: 0x14, AddCapabilities: unhexT(t, "8000000000")}
	for auc, want := range map[string]byte{"C200": 0x00, "C100": tvrServiceNotAllow} {
		s := phaseSession(t, atm, Transaction{Type: 0x01}, map[Tag]string{0x9F07: auc, 0x5F28: "0156"})
		s.restrictions()
		if s.tdata[0x95][1] != want {
			t.Errorf("AUC %s at an ATM: TVR %X", auc, s.tdata[0x95])
		}
	}
}

func TestEMVDate(t *testing.T) {
	for in, want := range map[string]int{"261127": 20261127, "491231": 20491231, "500101": 19500101,
		"991231": 19991231, "261300": 0, "260100": 0, "2611": 0, "26112F": 0, "261132": 0} {
		got, ok := emvDate(unhexT(t, in))
		if got != want || ok != (want != 0) {
			t.Errorf("%s: %d %v, want %d", in, got, ok, want)
		}
	}
}

// TestRandomSelection is Book 3 §10.6.2 with a known random number: the
// first byte below 198 of the source, mod 99, plus 1.
func TestRandomSelection(t *testing.T) {
	params := RiskParams{FloorLimit: 10000, Threshold: 2000, TargetPercent: 20, MaxTargetPercent: 60}
	for _, tc := range []struct {
		name   string
		amount int64
		rnd    []byte // the random source
		r      RiskParams
		want   bool
	}{
		{"below threshold, 20 <= 20", 1999, []byte{19}, params, true},      // x = 20
		{"below threshold, 21 > 20", 1999, []byte{20}, params, false},      // x = 21
		{"198 and up drawn again", 100, []byte{198, 255, 0}, params, true}, // x = 1
		{"at threshold: target", 2000, []byte{20}, params, false},
		// Halfway from threshold to floor: 20 + (60-20)*4000/8000 = 40.
		{"halfway, 40 <= 40", 6000, []byte{39}, params, true},
		{"halfway, 41 > 40", 6000, []byte{40}, params, false},
		{"just under the floor: 59", 9999, []byte{58}, params, true},
		{"no target", 100, []byte{0}, RiskParams{FloorLimit: 10000}, false},
		{"target over maximum", 100, []byte{0}, RiskParams{FloorLimit: 10000, TargetPercent: 50, MaxTargetPercent: 40}, false},
		{"threshold at the floor", 100, []byte{0}, RiskParams{FloorLimit: 100, Threshold: 100, TargetPercent: 99, MaxTargetPercent: 99}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := randomSelection(bytes.NewReader(tc.rnd), tc.amount, tc.r.FloorLimit, tc.r)
			if err != nil || got != tc.want {
				t.Errorf("%v %v, want %v", got, err, tc.want)
			}
		})
	}
	if _, err := randomSelection(bytes.NewReader(nil), 1, params.FloorLimit, params); err == nil {
		t.Error("an empty random source selected without an error")
	}
}

// TestRiskManagement: floor limit and random selection from the AID's
// parameters, TSI byte 1 b4, on an online-only terminal (floor limit 0,
// whatever the download) and on one that could approve offline.
func TestRiskManagement(t *testing.T) {
	const aid = "A000000333010101"
	params := RiskParams{FloorLimit: 10000, Threshold: 2000, TargetPercent: 20, MaxTargetPercent: 60}
	for _, tc := range []struct {
		name   string
		typ    byte
		amount int64
		rnd    byte // the random number source after the UN
		want   string
	}{
		{"online only, under the download's floor", 0x21, 100, 0, "0000008000"},
		{"offline capable, under the floor, not selected", 0x22, 100, 50, "0000000000"},
		{"offline capable, under the floor, selected", 0x22, 100, 0, "0000001000"},
		{"offline capable, at the floor", 0x22, 10000, 0, "0000008000"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			term := Terminal{Type: tc.typ, AIDs: []string{aid}, Risk: map[string]RiskParams{aid: params}}
			s := phaseSession(t, term, Transaction{Amount: tc.amount}, map[Tag]string{0x84: aid})
			s.term.Rand = bytes.NewReader([]byte{tc.rnd})
			if err := s.riskManagement(context.Background()); err != nil {
				t.Fatal(err)
			}
			if got := Hex(s.tdata[0x95]); got != tc.want || s.tdata[0x9B][0] != tsiTerminalRisk {
				t.Errorf("TVR %s TSI %X, want %s and terminal risk management performed", got, s.tdata[0x9B], tc.want)
			}
		})
	}
	// An application the download does not cover: floor limit 0.
	s := phaseSession(t, Terminal{Type: 0x22}, Transaction{Amount: 1}, map[Tag]string{0x84: "A0000000031010"})
	if err := s.riskManagement(context.Background()); err != nil || Hex(s.tdata[0x95]) != "0000008000" {
		t.Errorf("no parameters: TVR %X %v", s.tdata[0x95], err)
	}
}

// TestVelocity is Book 3 §10.6.3 with the card's GET DATA answers: the
// offline transactions since the last online one (ATC - 9F13) against
// 9F14 (TVR byte 4 b7) and 9F23 (b6); 9F13 zero is a new card (byte 2 b4).
func TestVelocity(t *testing.T) {
	for _, tc := range []struct {
		name      string
		limits    bool
		atc, last string // GET DATA answers (whole response with SW)
		tvr       string
		commands  int
	}{
		{"within both limits", true, "9F360200129000", "9F130200109000", "0000000000", 2},
		{"over the lower limit", true, "9F360200159000", "9F130200109000", "0000004000", 2},
		{"over both limits", true, "9F3602001A9000", "9F130200109000", "0000006000", 2},
		{"new card", true, "9F360200039000", "9F130200009000", "0008004000", 2},
		{"ATC not above the register", true, "9F360200109000", "9F130200109000", "0000006000", 2},
		{"no ATC", true, "6A88", "9F130200109000", "0000006000", 2},
		{"register garbled", true, "9F360200129000", "9F1301109000", "0000006000", 2},
		{"card without limits: no GET DATA", false, "", "", "0000000000", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var sent []string
			card := &cardreadertest.Func{Respond: func(cmd []byte) ([]byte, error) {
				sent = append(sent, Hex(cmd))
				switch Hex(cmd) {
				case "80CA9F3600":
					return unhexT(t, tc.atc), nil
				case "80CA9F1300":
					return unhexT(t, tc.last), nil
				}
				return []byte{0x6D, 0x00}, nil
			}}
			data := map[Tag]string{}
			if tc.limits {
				data[0x9F14], data[0x9F23] = "02", "05" // lower 2, upper 5 offline transactions
			}
			s := phaseSession(t, Terminal{}, Transaction{}, data)
			s.card = &counter{Card: card}
			if err := s.velocity(context.Background()); err != nil {
				t.Fatal(err)
			}
			if got := Hex(s.tdata[0x95]); got != tc.tvr || len(sent) != tc.commands {
				t.Errorf("TVR %s after %v, want %s after %d commands", got, sent, tc.tvr, tc.commands)
			}
		})
	}
}

// TestActionAnalysis is Book 3 §10.7: IAC | TAC against the TVR, denial
// first; absent IACs are zeros for denial and ones for online and default.
func TestActionAnalysis(t *testing.T) {
	zero := "0000000000"
	online := RiskParams{TACOnline: unhexT(t, "0000008000")}
	for _, tc := range []struct {
		name                  string
		tvr                   string
		denial, online, deflt string // IACs, "" absent
		r                     RiskParams
		typ                   byte
		want                  byte
	}{
		{"online only, nothing matches: online", "8000008000", zero, zero, zero, RiskParams{}, 0x21, acARQC},
		{"IAC-Denial matches", "8000008000", "8000000000", zero, zero, RiskParams{}, 0x21, acAAC},
		{"TAC-Denial matches", "0010008000", zero, zero, zero, RiskParams{TACDenial: unhexT(t, "0010000000")}, 0x21, acAAC},
		{"denial bits elsewhere", "0000008000", "0010000000", zero, zero, RiskParams{TACDenial: unhexT(t, "0010000000")}, 0x21, acARQC},
		{"no IAC-Denial is zeros", "FFFFFFFFFF", "", zero, zero, RiskParams{}, 0x21, acARQC},
		{"offline capable, online match", "0000008000", zero, zero, zero, online, 0x22, acARQC},
		{"offline capable, IAC-Online match", "0800000000", zero, "0800000000", zero, RiskParams{}, 0x22, acARQC},
		{"offline capable, no IAC-Online is ones", "0000000100", zero, "", zero, RiskParams{}, 0x22, acARQC},
		{"offline capable, nothing matches: approve", "8000000000", zero, zero, zero, online, 0x22, acTC},
		{"offline capable, clean TVR: approve", zero, "", "", "", RiskParams{}, 0x22, acTC},
		{"offline only, default match", "8000000000", zero, "FFFFFFFFFF", "8000000000", RiskParams{}, 0x23, acAAC},
		{"offline only, no IAC-Default is ones", "0000000001", zero, zero, "", RiskParams{}, 0x23, acAAC},
		{"offline only, TAC-Default match", "0000000001", zero, zero, zero, RiskParams{TACDefault: unhexT(t, "0000000001")}, 0x23, acAAC},
		{"offline only, no match", "0000000001", zero, "FFFFFFFFFF", zero, RiskParams{}, 0x23, acTC},
	} {
		t.Run(tc.name, func(t *testing.T) {
			iac := func(s string) []byte {
				if s == "" {
					return nil
				}
				return unhexT(t, s)
			}
			got := actionAnalysis(unhexT(t, tc.tvr), iac(tc.denial), iac(tc.online), iac(tc.deflt), tc.r, tc.typ)
			if got != tc.want {
				t.Errorf("%02X, want %02X", got, tc.want)
			}
		})
	}
}

// TestDecisionAsksNoTC: the kernel has no offline approval, so a TC
// decision is sent as an ARQC request, and a denial as an AAC request.
func TestDecisionAsksNoTC(t *testing.T) {
	s := phaseSession(t, Terminal{Type: 0x22}, Transaction{}, map[Tag]string{0x9F0E: "0000000000", 0x9F0F: "0000000000"})
	if d := s.decision(); d != acARQC {
		t.Errorf("clean TVR on an offline-capable terminal: P1 %02X", d)
	}
	s.tdata[0x95][0] = tvrODANotPerformed
	s.cdata[0x9F0E] = unhexT(t, "8000000000")
	if d := s.decision(); d != acAAC {
		t.Errorf("denial match: P1 %02X", d)
	}
}

// TestParseGetData: only the asked-for 2-byte object counts.
func TestParseGetData(t *testing.T) {
	for in, want := range map[string]string{"9F36020012": "0012", "9F3601FF": "", "9F13020012": "",
		"9F360200": "", "": "", "9F3603000012": ""} {
		if got := Hex(parseGetData(unhexT(t, in), 0x9F36)); got != want {
			t.Errorf("%s: %q, want %q", in, got, want)
		}
	}
}

func ExampleExplain() {
	fmt.Println(Explain(0x95, []byte{0x80, 0x00, 0x04, 0x80, 0x00}))
	// Output: offline data authentication was not performed; online PIN entered (online CVM captured); transaction exceeds floor limit
}
