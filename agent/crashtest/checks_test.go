package crashtest

import (
	"strings"
	"testing"

	"github.com/posagent/posagent/agent/hostsim"
	"github.com/posagent/posagent/agent/report"
	"github.com/posagent/posagent/provisioning"
)

// The campaign's checkers on hand-made histories: each broken invariant is
// reported, and the histories a crash legitimately leaves are not.
func TestLedgerProblems(t *testing.T) {
	sale := func(stan int) hostsim.Entry {
		return hostsim.Entry{Event: hostsim.EventApproved, Kind: hostsim.KindSale, Batch: "000001", STAN: stan}
	}
	void := func(stan, orig int) hostsim.Entry {
		return hostsim.Entry{Event: hostsim.EventVoided, Kind: hostsim.KindVoid, Batch: "000001", STAN: stan, OrigSTAN: orig}
	}
	rev := func(e hostsim.Entry) hostsim.Entry { e.Event = hostsim.EventReversed; return e }
	for _, tc := range []struct {
		name     string
		entries  []hostsim.Entry
		saleSTAN int
		want     string // "" = no problem; else a substring of the first
	}{
		{"sale voided", []hostsim.Entry{sale(3), void(4, 3)}, 3, ""},
		{"lost sale reversed, resent and voided", []hostsim.Entry{sale(3), rev(sale(3)), sale(5), void(6, 5)}, 5, ""},
		{"lost void reversed, resent", []hostsim.Entry{sale(3), void(4, 3), rev(void(4, 3)), void(7, 3)}, 3, ""},
		{"sale left charged", []hostsim.Entry{sale(3), sale(5), void(6, 5)}, 5, "000003 approved and neither"},
		{"only void reversed", []hostsim.Entry{sale(3), void(4, 3), rev(void(4, 3))}, 3, "000003 approved and neither"},
		{"reversed twice", []hostsim.Entry{sale(3), rev(sale(3)), rev(sale(3)), sale(5), void(6, 5)}, 5, "reversed 2 times"},
		{"checkpoint's sale not voided", []hostsim.Entry{sale(3), rev(sale(3))}, 3, "no effective void"},
		{"checkpoint's sale voided by a reversed void", []hostsim.Entry{sale(3), void(4, 3), rev(void(4, 3)), rev(sale(3))}, 3, "no effective void"},
		{"voided and reversed", []hostsim.Entry{sale(3), void(4, 3), rev(sale(3))}, 3, "both voided and reversed"},
		{"voided twice", []hostsim.Entry{sale(3), void(4, 3), void(5, 3)}, 3, "voided 2 times"},
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
		{"gap", []report.Message{ev(1, run), ev(3, live)}, "events 2..2 never arrived", 0},
		{"out of order", []report.Message{ev(2, run), ev(1, run), ev(3, live)}, "events 1..1 never arrived", 1},
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
