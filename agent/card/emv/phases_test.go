package emv_test

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/posagent/posagent/agent/card/emv"
	"github.com/posagent/posagent/drivers/cardreader"
	"github.com/posagent/posagent/drivers/cardreader/cardreadertest"
	"github.com/posagent/posagent/provisioning"
)

// editRecords is a card whose records carry the objects of set instead of
// their own, the record holding the CDOL1 (8C) those no record has: the small synthetic
// additions (IACs, velocity limits) the simulator's profiles do not have.
// It notes each GENERATE AC's P1.
type editRecords struct {
	cardreader.Card
	set map[emv.Tag][]byte
	p1  []byte
}

func (e *editRecords) Transmit(ctx context.Context, cmd []byte) ([]byte, error) {
	r, err := e.Card.Transmit(ctx, cmd)
	if len(cmd) > 2 && cmd[1] == 0xAE {
		e.p1 = append(e.p1, cmd[2])
	}
	if err != nil || len(cmd) < 2 || cmd[1] != 0xB2 || len(r) < 2 || r[len(r)-2] != 0x90 {
		return r, err
	}
	objs, derr := emv.DecodeTLV(r[:len(r)-2])
	if derr != nil || len(objs) != 1 || objs[0].Tag != 0x70 {
		return r, err
	}
	var body []byte
	seen := map[emv.Tag]bool{}
	for _, o := range objs[0].Children {
		v := o.Value
		if nv, ok := e.set[o.Tag]; ok {
			v, seen[o.Tag] = nv, true
		}
		body = emv.EncodeTLV(body, o.Tag, v)
	}
	if _, ok := emv.Find(objs[0].Children, 0x8C); ok {
		// The kernel keeps the first of an object read twice, so an
		// object already replaced in an earlier record stays replaced.
		for t, v := range e.set {
			if !seen[t] {
				body = emv.EncodeTLV(body, t, v)
			}
		}
	}
	return append(emv.EncodeTLV(nil, 0x70, body), 0x90, 0x00), nil
}

// downloaded is the acquirer's IC parameters as the host simulator sends
// them (hostsim DefaultAIDs): version 0020, TAC-Denial "service not
// allowed", floor limit 0.
func downloaded(aid string) []provisioning.AppParams {
	return []provisioning.AppParams{{AID: mustUnhex(aid), PartialMatch: true, Version: []byte{0x00, 0x20},
		TACDefault: mustUnhex("D84000A800"), TACOnline: mustUnhex("D84004F800"), TACDenial: mustUnhex("0010000000"),
		TargetPercent: 99, MaxTargetPercent: 99}}
}

func mustUnhex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

func phaseString(ps []emv.Phase) string {
	var out []string
	for _, p := range ps {
		out = append(out, fmt.Sprintf("%s %s/%s", p.Name, p.TVR, p.TSI))
	}
	return strings.Join(out, ", ")
}

// TestPhaseKATs are the TVR and TSI after each phase of a read (Read: no
// cardholder verification) or a sale (Pay) of the shipped card profiles,
// on the default terminal (online only, no ODA method) on 2026-11-27.
//
// TVR bits: byte 1 80 ODA not performed; byte 2 80 versions differ, 40
// expired, 10 service not allowed, 08 new card; byte 3 10 PIN pad absent,
// 04 online PIN entered; byte 4 80 floor limit exceeded, 40/20 lower/upper
// consecutive offline limit exceeded. TSI byte 1: 40 cardholder
// verification, 20 card risk management, 08 terminal risk management.
func TestPhaseKATs(t *testing.T) {
	const (
		oda    = "oda 8000000000/0000"
		risk   = "risk 8000008000/0800, first AC 8000008000/2800" // a read: no CVM
		expRes = "restrictions 8040000000/0000"
	)
	for _, tc := range []struct {
		name, profile string
		sale          bool
		pad           provisioning.PINPad
		apps          bool               // the download of hostsim's parameters
		set           map[emv.Tag][]byte // synthetic record objects
		err           error
		want          string
	}{
		{name: "debit read", profile: "debit",
			want: oda + ", restrictions 8000000000/0000, " + risk},
		{name: "credit read", profile: "credit",
			want: oda + ", restrictions 8000000000/0000, " + risk},
		{name: "expired card", profile: "expired",
			want: oda + ", " + expRes + ", risk 8040008000/0800, first AC 8040008000/2800"},
		{name: "T=0 card", profile: "t0-quirky",
			want: oda + ", restrictions 8000000000/0000, " + risk},
		{name: "sale without PIN pad: signature", profile: "debit", sale: true,
			want: oda + ", restrictions 8000000000/0000, cvm 8000100000/4000, risk 8000108000/4800, first AC 8000108000/6800"},
		{name: "online PIN sale", profile: "completion/online-pin", sale: true, pad: &fakePad{block: testBlock},
			want: oda + ", restrictions 8000000000/0000, cvm 8000040000/4000, risk 8000048000/4800, first AC 8000048000/6800"},
		{name: "downloaded version differs", profile: "debit", apps: true,
			want: oda + ", restrictions 8080000000/0000, risk 8080008000/0800, first AC 8080008000/2800"},
		{name: "velocity: new card over both limits", profile: "debit",
			set:  map[emv.Tag][]byte{0x9F14: {0x02}, 0x9F23: {0x05}},
			want: oda + ", restrictions 8000000000/0000, risk 800800E000/0800, first AC 800800E000/2800"},
		{name: "domestic use only abroad", profile: "debit",
			set:  map[emv.Tag][]byte{0x9F07: {0x29, 0x00}, 0x5F28: {0x08, 0x40}},
			want: oda + ", restrictions 8010000000/0000, " + "risk 8010008000/0800, first AC 8010008000/2800"},
		{name: "acquirer denies a service not allowed: AAC", profile: "debit", apps: true,
			set:  map[emv.Tag][]byte{0x9F07: {0x29, 0x00}, 0x5F28: {0x08, 0x40}},
			err:  emv.ErrDeclined,
			want: oda + ", restrictions 8090000000/0000, risk 8090008000/0800, first AC 8090008000/2800"},
		{name: "issuer denies no ODA: AAC", profile: "debit",
			set:  map[emv.Tag][]byte{0x9F0E: {0x80, 0, 0, 0, 0}},
			err:  emv.ErrDeclined,
			want: oda + ", restrictions 8000000000/0000, " + risk},
	} {
		t.Run(tc.name, func(t *testing.T) {
			phases, stop := emv.TracePhases()
			defer stop()
			sim := loadCard(t, tc.profile, nil)
			card := &editRecords{Card: sim.AsCard("sim"), set: tc.set}
			term := fixedTerminal()
			if tc.apps {
				term = term.WithApps(downloaded(emv.AIDDebit))
			}
			var err error
			if tc.sale {
				var p *emv.Payment
				p, err = emv.StartPayment(context.Background(), card, term, emv.Transaction{Amount: saleAmount}, tc.pad)
				if err == nil {
					ic := p.Card().IC
					if last := phases()[len(phases())-1]; ic.TVR != last.TVR || ic.TSI != last.TSI {
						t.Errorf("record TVR %s TSI %s, last phase %+v", ic.TVR, ic.TSI, last)
					}
					p.Close()
				}
			} else {
				var res emv.Result
				res, err = emv.Read(context.Background(), card, term, emv.Transaction{Amount: saleAmount})
				if err == nil {
					if last := phases()[len(phases())-1]; !strings.Contains(res.ICData, "9505"+last.TVR) {
						t.Errorf("field 55 %s has no TVR %s", res.ICData, last.TVR)
					}
				}
			}
			if !errors.Is(err, tc.err) {
				t.Fatalf("err %v, want %v", err, tc.err)
			}
			if got := phaseString(phases()); got != tc.want {
				t.Errorf("phases\n got %s\nwant %s", got, tc.want)
			}
			wantP1 := byte(0x80)
			if tc.err != nil {
				wantP1 = 0x00
			}
			if len(card.p1) != 1 || card.p1[0] != wantP1 {
				t.Errorf("GENERATE AC P1 %X, want %02X", card.p1, wantP1)
			}
		})
	}
}

// TestVelocityGetData: velocity checking asks the card for its ATC and
// last online ATC register (GET DATA 9F36, 9F13) and nothing else is sent
// for a card without limits.
func TestVelocityGetData(t *testing.T) {
	for _, limits := range []bool{false, true} {
		sim := loadCard(t, "debit", nil)
		var set map[emv.Tag][]byte
		if limits {
			set = map[emv.Tag][]byte{0x9F14: {0x20}, 0x9F23: {0x40}}
		}
		var sent []string
		card := &editRecords{Card: &cardreadertest.Func{Respond: func(cmd []byte) ([]byte, error) {
			if cmd[1] == 0xCA {
				sent = append(sent, emv.Hex(cmd))
			}
			return sim.AsCard("sim").Transmit(context.Background(), cmd)
		}}, set: set}
		res, err := emv.Read(context.Background(), card, fixedTerminal(), emv.Transaction{Amount: 1})
		if err != nil {
			t.Fatal(err)
		}
		want := ""
		if limits {
			// 16 offline since the last online (none yet: a new card), under both limits.
			want = "80CA9F3600 80CA9F1300"
		}
		if got := strings.Join(sent, " "); got != want || limits != strings.Contains(res.ICData, "9505800800") {
			t.Errorf("limits %v: GET DATA %q, field 55 %s", limits, got, res.ICData)
		}
	}
}

// TestRandomSelectionFromDownload: on a terminal that could approve
// offline (9F35 22), the downloaded floor limit and random selection
// parameters (WithApps) decide TVR byte 4. fixedTerminal's random source
// gives 11223344 to the unpredictable number, then 11: the random number
// 0x11 % 99 + 1 = 18.
func TestRandomSelectionFromDownload(t *testing.T) {
	for _, tc := range []struct {
		name          string
		floor, amount int64
		target        int
		tvr4          string
	}{
		{"18 within a target of 20: selected", 100000, 100, 20, "10"},
		{"18 above a target of 10", 100000, 100, 10, "00"},
		{"at the floor limit: exceeded, no selection", 100000, 100000, 20, "80"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			apps := downloaded(emv.AIDDebit)
			apps[0].FloorLimit, apps[0].TargetPercent, apps[0].MaxTargetPercent = tc.floor, tc.target, 99
			term := fixedTerminal().WithApps(apps)
			if r := term.Risk[emv.AIDDebit]; r.FloorLimit != tc.floor || r.TargetPercent != tc.target ||
				r.MaxTargetPercent != 99 || emv.Hex(r.TACDenial) != "0010000000" || emv.Hex(r.TACOnline) != "D84004F800" {
				t.Fatalf("Risk %+v", r)
			}
			term.Type = 0x22
			res, err := emv.Read(context.Background(), loadCard(t, "debit", nil).AsCard("sim"), term, emv.Transaction{Amount: tc.amount})
			if err != nil {
				t.Fatal(err)
			}
			// Byte 1 80: no ODA; byte 2 80: the download's version 0020.
			if want := "95058080" + "00" + tc.tvr4 + "00"; !strings.Contains(res.ICData, want) {
				t.Errorf("field 55 %s, want TVR %s", res.ICData, want[4:])
			}
		})
	}
}
