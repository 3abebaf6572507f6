package crashtest

import (
	"strings"
	"testing"
	"time"

	"github.com/posagent/posagent/agent/acquirer"
	"github.com/posagent/posagent/agent/central/report"
	"github.com/posagent/posagent/agent/sim/ledger"
	"github.com/posagent/posagent/agent/testkit/hostile"
	"github.com/posagent/posagent/provisioning"
)

// The campaign's checkers on hand-made histories: each broken invariant is
// reported, and the histories a crash legitimately leaves are not.
func TestLedgerProblems(t *testing.T) {
	sale, void, rev := saleEntry, voidEntry, reversedEntry
	for _, tc := range []struct {
		name     string
		entries  []ledger.Entry
		saleSTAN int
		want     string // "" = no problem; else a substring of the first
	}{
		{"sale voided", []ledger.Entry{sale(3), void(4, 3)}, 3, ""},
		{"lost sale reversed, resent and voided", []ledger.Entry{sale(3), rev(sale(3)), sale(5), void(6, 5)}, 5, ""},
		{"lost void reversed, resent", []ledger.Entry{sale(3), void(4, 3), rev(void(4, 3)), void(7, 3)}, 3, ""},
		{"sale left charged", []ledger.Entry{sale(3), sale(5), void(6, 5)}, 5, "000003 approved and neither"},
		{"only void reversed", []ledger.Entry{sale(3), void(4, 3), rev(void(4, 3))}, 3, "000003 approved and neither"},
		{"reversed twice", []ledger.Entry{sale(3), rev(sale(3)), rev(sale(3)), sale(5), void(6, 5)}, 5, "reversed 2 times"},
		{"checkpoint's sale not voided", []ledger.Entry{sale(3), rev(sale(3))}, 3, "no effective void"},
		{"checkpoint's sale voided by a reversed void", []ledger.Entry{sale(3), void(4, 3), rev(void(4, 3)), rev(sale(3))}, 3, "no effective void"},
		{"voided and reversed", []ledger.Entry{sale(3), void(4, 3), rev(sale(3))}, 3, "both voided and reversed"},
		{"voided twice", []ledger.Entry{sale(3), void(4, 3), void(5, 3)}, 3, "voided 2 times"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			problems, _, _ := ledgerProblems(tc.entries, tc.saleSTAN)
			switch {
			case tc.want == "" && len(problems) > 0:
				t.Errorf("problems %q, want none", problems)
			case tc.want != "" && (len(problems) == 0 || !strings.Contains(problems[0], tc.want)):
				t.Errorf("problems %q, want %q", problems, tc.want)
			}
		})
	}
}

func TestSeqProblems(t *testing.T) {
	ev := func(seq uint64, state string) report.Message {
		return report.Message{Seq: seq, Status: provisioning.Status{State: state}}
	}
	run, live := provisioning.StateRunning, provisioning.StateLive
	for _, tc := range []struct {
		name   string
		events []report.Message
		want   string
		dups   int
	}{
		{"in order", []report.Message{ev(1, run), ev(2, run), ev(3, live)}, "", 0},
		{"replayed after a restart", []report.Message{ev(1, run), ev(2, run), ev(1, run), ev(2, run), ev(3, live)}, "", 2},
		{"gap", []report.Message{ev(1, run), ev(3, live)}, "event 2 missing", 0},
		{"out of order", []report.Message{ev(1, run), ev(3, run), ev(2, run), ev(4, live)}, "seq 3 arrived when 2 was due", 1},
		{"tail missing", []report.Message{ev(1, run), ev(2, run)}, "not live", 0},
		{"unqueued", []report.Message{ev(1, run), ev(0, run), ev(2, live)}, "without seq", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			problems, _, dups := seqProblems(tc.events, provisioning.StateLive)
			switch {
			case tc.want == "" && len(problems) > 0:
				t.Errorf("problems %q, want none", problems)
			case tc.want != "" && (len(problems) == 0 || !strings.Contains(problems[0], tc.want)):
				t.Errorf("problems %q, want %q", problems, tc.want)
			}
			if dups != tc.dups {
				t.Errorf("dups = %d, want %d", dups, tc.dups)
			}
		})
	}
}

// The hostile campaign's checkers.

func TestOrderProblems(t *testing.T) {
	sale, declined, void, rev := saleEntry, declinedEntry, voidEntry, reversedEntry
	for _, tc := range []struct {
		name    string
		entries []ledger.Entry
		want    string
	}{
		{"one sale voided", []ledger.Entry{sale(2), void(3, 2)}, ""},
		{"reversed, then resent", []ledger.Entry{sale(2), rev(sale(2)), sale(4), void(5, 4)}, ""},
		{"declined, then approved", []ledger.Entry{declined(2), sale(3), void(4, 3)}, ""},
		{"voided, then another sale", []ledger.Entry{sale(2), void(3, 2), sale(4)}, ""},
		{"second sale over an approval", []ledger.Entry{sale(2), sale(3), void(4, 3)}, "sale 000001/000003 (approved) booked while sale 000001/000002"},
		{"declined sale over an approval", []ledger.Entry{sale(2), declined(3)}, "000003 (declined) booked while"},
		{"sale over a reversed void", []ledger.Entry{sale(2), void(3, 2), rev(void(3, 2)), sale(4)}, "while sale 000001/000002"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkProblems(t, orderProblems(tc.entries), tc.want)
		})
	}

	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	at := func(e ledger.Entry, ms int) ledger.Entry {
		e.Time = t0.Add(time.Duration(ms) * time.Millisecond)
		return e
	}
	req := func(stan string, ms int) saleRequest {
		return saleRequest{Time: t0.Add(time.Duration(ms) * time.Millisecond), STAN: stan}
	}
	for _, tc := range []struct {
		name    string
		reqs    []saleRequest
		entries []ledger.Entry
		want    string
	}{
		{"resent after the reversal", []saleRequest{req("000002", 0), req("000004", 30)},
			[]ledger.Entry{at(sale(2), 1), at(rev(sale(2)), 20), at(sale(4), 31)}, ""},
		// A sale the host declined (or never booked) leaves nothing open.
		{"resent after a decline", []saleRequest{req("000002", 0), req("000003", 30)},
			[]ledger.Entry{at(declined(2), 1), at(sale(3), 31)}, ""},
		// The host declined the second sale, but it left the terminal while the
		// first was still charged: the wire check sees what the ledger's
		// approvals alone would not.
		{"sent before the reversal", []saleRequest{req("000002", 0), req("000003", 30)},
			[]ledger.Entry{at(sale(2), 1), at(rev(sale(2)), 40)}, "0200 sale STAN 000003 sent while the host held sale 000001/000002"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkProblems(t, wireOrderProblems(tc.reqs, tc.entries), tc.want)
		})
	}
}

// Hand-made ledger entries of batch 000001, for the checkers' tests.
func saleEntry(stan int) ledger.Entry {
	return ledger.Entry{Event: ledger.EventApproved, Kind: ledger.KindSale, Batch: "000001", STAN: stan}
}

func declinedEntry(stan int) ledger.Entry {
	e := saleEntry(stan)
	e.Event, e.RC = ledger.EventDeclined, "05"
	return e
}

func voidEntry(stan, orig int) ledger.Entry {
	return ledger.Entry{Event: ledger.EventVoided, Kind: ledger.KindVoid, Batch: "000001", STAN: stan, OrigSTAN: orig}
}

func reversedEntry(e ledger.Entry) ledger.Entry { e.Event = ledger.EventReversed; return e }

// checkProblems: want "" means none, else a substring of the first.
func checkProblems(t *testing.T, problems []string, want string) {
	t.Helper()
	switch {
	case want == "" && len(problems) > 0:
		t.Errorf("problems %q, want none", problems)
	case want != "" && (len(problems) == 0 || !strings.Contains(problems[0], want)):
		t.Errorf("problems %q, want %q", problems, want)
	}
}

func TestWireProblems(t *testing.T) {
	const panDigits = "6222021234567890128"
	track2 := panDigits + "=30121010000000000"
	track3 := "99" + panDigits + "=1561560000000000000003000000000000000000000000=000000000000=0000000000000"
	secrets := newTrackSecrets(panDigits, "3012", ";"+track2+"?", "+"+track3+"?")
	tdk, err := acquirer.ParseKey("0123456789ABCDEFFEDCBA9876543210")
	if err != nil {
		t.Fatal(err)
	}
	enc := func(tr string) string {
		s, err := acquirer.EncryptTrack(tdk, tr)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	frame := func(mti string, fields map[int]string) hostile.Frame {
		m := acquirer.NewMessage(mti)
		for id, v := range fields {
			if err := acquirer.Set(m, id, v); err != nil {
				t.Fatalf("field %d: %v", id, err)
			}
		}
		b, err := acquirer.Pack(m)
		if err != nil {
			t.Fatal(err)
		}
		f, err := acquirer.Frame{TPDU: acquirer.DefaultTPDU, Header: acquirer.DefaultHeader, Message: b}.Encode()
		if err != nil {
			t.Fatal(err)
		}
		return hostile.Frame{Seq: 1, Dir: hostile.Request, Bytes: f}
	}
	sale := func(f35, f36, f53 string) map[int]string {
		m := map[int]string{2: panDigits, 3: "000000", 4: "000000000001", 11: "000002", 22: "022", 35: f35, 53: f53}
		if f36 != "" {
			m[36] = f36
		}
		return m
	}
	for _, tc := range []struct {
		name   string
		frames []hostile.Frame
		want   string
	}{
		{"encrypted tracks", []hostile.Frame{frame("0200", sale(enc(track2), enc(track3), "2610000000000000"))}, ""},
		{"a chip sale: the PAN alone", []hostile.Frame{frame("0200", map[int]string{2: panDigits, 3: "000000", 11: "000002"})}, ""},
		{"an answer", []hostile.Frame{frame("0210", map[int]string{3: "000000", 11: "000002", 39: "00"})}, ""},
		{"clear tracks", []hostile.Frame{frame("0200", sale(track2, track3, "2600000000000000"))}, "not marked encrypted"},
		{"clear track 2 marked encrypted", []hostile.Frame{frame("0200", sale(track2, "", "2610000000000000"))}, "track data in clear"},
		{"encrypted, not marked so", []hostile.Frame{frame("0200", sale(enc(track2), "", "2600000000000000"))}, "not marked encrypted"},
		{"no field 53", []hostile.Frame{frame("0200", map[int]string{2: panDigits, 35: enc(track2)})}, "not marked encrypted"},
		{"track 2 in ASCII in garbage", []hostile.Frame{{Seq: 1, Dir: hostile.Answer, Bytes: []byte("\x00\x30junk;" + track2 + "?")}}, "track data in clear"},
		{"track 1 in garbage", []hostile.Frame{{Seq: 1, Dir: hostile.Delivered, Bytes: []byte("%B" + panDigits + "^ZHANG/SAN^3012101")}}, "track data in clear"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			problems, _ := wireProblems(tc.frames, secrets)
			checkProblems(t, problems, tc.want)
		})
	}
}

func TestOutcome(t *testing.T) {
	stop := func(code string, actions ...string) provisioning.Checkpoint {
		return provisioning.Checkpoint{Step: provisioning.StepNeedsAttention,
			Failure: &provisioning.Failure{Step: provisioning.StepTestSale, Code: code, Actions: actions}}
	}
	for _, tc := range []struct {
		name string
		cp   provisioning.Checkpoint
		live bool
		ok   bool
		want string
	}{
		{"live", provisioning.Checkpoint{Step: provisioning.StepLive}, true, true, "live"},
		{"operator stop", stop("E_REVERSAL_LIMIT", "clear", "abort"), false, true, "stop E_REVERSAL_LIMIT"},
		{"retry loop", stop("E_DECLINED", "retry", "abort"), false, false, "retry loop"},
		{"uncatalogued code", stop("E_WHATEVER", "clear", "abort"), false, false, "uncatalogued"},
		{"stopped mid-flow", provisioning.Checkpoint{Step: provisioning.StepVoid}, false, false, "without a failure"},
		{"live without the checkpoint", provisioning.Checkpoint{Step: provisioning.StepVoid}, true, false, "checkpoint says void"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ok, what := outcome(tc.cp, tc.live, 12, 12)
			if ok != tc.ok || !strings.Contains(what, tc.want) {
				t.Errorf("outcome = %v %q, want %v %q", ok, what, tc.ok, tc.want)
			}
		})
	}
}

// A sale the operator stop names for the acquirer is left to the operator;
// the same sale after a live install, or one the stop does not name, is a
// charged card.
func TestLeftToOperator(t *testing.T) {
	entries := []ledger.Entry{saleEntry(2), saleEntry(4), voidEntry(5, 4)}
	cp := provisioning.Checkpoint{Step: provisioning.StepNeedsAttention,
		Unreversed: []provisioning.ReversalNote{{Kind: "sale", STAN: 2, Batch: "000001"}}}
	if problems, summary, _ := undoProblems(entries, leftToOperator(cp, true)); len(problems) > 0 || !strings.Contains(summary, "1 left to the operator") {
		t.Errorf("operator stop: %q %s", problems, summary)
	}
	if problems, _, _ := undoProblems(entries, leftToOperator(cp, false)); len(problems) != 1 {
		t.Errorf("not stopped: %q, want the charged sale", problems)
	}
	cp.Unreversed[0].STAN = 3
	if problems, _, _ := undoProblems(entries, leftToOperator(cp, true)); len(problems) != 1 {
		t.Errorf("another sale named: %q, want the charged sale", problems)
	}
	// The stop names the void of the checkpoint's sale: the sale is the
	// operator's; another sale is not.
	cp.Unreversed = []provisioning.ReversalNote{{Kind: "void", STAN: 7, Batch: "000001"}}
	cp.Sale = &provisioning.TxnRecord{STAN: 2, Batch: "000001"}
	if problems, summary, _ := undoProblems(entries, leftToOperator(cp, true)); len(problems) > 0 || !strings.Contains(summary, "1 left to the operator") {
		t.Errorf("void left to the operator: %q %s", problems, summary)
	}
	cp.Sale.STAN = 3
	if problems, _, _ := undoProblems(entries, leftToOperator(cp, true)); len(problems) != 1 {
		t.Errorf("the void of another sale: %q, want the charged sale", problems)
	}
}

func TestAnsweredProblems(t *testing.T) {
	failed := func(seq uint64, actions ...string) report.Message {
		return report.Message{Seq: seq, Status: provisioning.Status{State: provisioning.StateFailed,
			Error: &provisioning.Failure{Step: provisioning.StepTestSale, Code: "E_X", Actions: actions}}}
	}
	run := func(seq uint64) report.Message {
		return report.Message{Seq: seq, Status: provisioning.Status{State: provisioning.StateRunning}}
	}
	if p := answeredProblems([]report.Message{run(1), failed(2, "retry", "abort"), run(3), failed(4, "clear", "abort")}, 0); len(p) > 0 {
		t.Errorf("retried where offered, stopped where not: %q", p)
	}
	if p := answeredProblems([]report.Message{run(1), failed(2, "clear", "abort"), run(1), failed(2, "clear", "abort")}, 0); len(p) > 0 {
		t.Errorf("redelivered: %q", p)
	}
	if p := answeredProblems([]report.Message{run(1), failed(2, "clear", "abort"), run(3)}, 0); len(p) != 1 {
		t.Errorf("went on after an operator-only failure: %q", p)
	}
	// The operator cleared it: going on is what should happen.
	if p := answeredProblems([]report.Message{run(1), failed(2, "clear", "abort"), run(3)}, 1); len(p) > 0 {
		t.Errorf("went on after the operator's clear: %q", p)
	}
	if p := answeredProblems([]report.Message{run(1), failed(2, "clear", "abort"), run(3), failed(4, "clear", "abort"), run(5)}, 1); len(p) != 1 {
		t.Errorf("two clears with one operator: %q", p)
	}
}
