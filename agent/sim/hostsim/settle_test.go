package hostsim_test

import (
	"strings"
	"testing"

	"github.com/posagent/posagent/agent/acquirer"
	"github.com/posagent/posagent/agent/sim/hostsim"
	"github.com/posagent/posagent/agent/sim/ledger"
)

func onlyEntry(t *testing.T, in *install, event string) ledger.Entry {
	t.Helper()
	es := in.entries(event)
	if len(es) != 1 {
		t.Fatalf("%d %s entries: %+v", len(es), event, es)
	}
	return es[0]
}

// TestSettlementBalanced is the install's test sale and its void settled:
// the host counts the voided sale as a debit and the void as a credit (as
// the public sources net them), answers both sides balanced with the
// terminal's totals, takes the 207 end, closes the batch and moves the
// terminal to the next one, which the next sign-on hands out.
func TestSettlementBalanced(t *testing.T) {
	in := newInstall(t, nil)
	c := in.terminal()
	c.signOn("004", hostsim.LayoutStandard)
	s := c.sale(1)
	if v := c.void(s); s.rc() != "00" || v.rc() != "00" {
		t.Fatalf("sale %s void %s", s.rc(), v.rc())
	}
	f48 := totals(1, 1, 1, 1)
	r := c.settle(f48)
	want := f48[:30] + "1" + f48[31:61] + "1"
	if r.rc() != "00" || r.get(48) != want || r.f60() != "00000001201" {
		t.Fatalf("settlement %s 48=%s 60=%s", r.rc(), r.get(48), r.f60())
	}
	e := onlyEntry(t, in, ledger.EventSettled)
	if st := e.Settlement; st == nil || !st.Balanced || st.Sales != 1 || st.Voids != 1 || st.Domestic != "1" || st.Foreign != "1" ||
		st.Host != (ledger.Totals{DebitCount: 1, DebitAmount: 1, CreditCount: 1, CreditAmount: 1}) || e.Code != "201" || e.Batch != "000001" {
		t.Fatalf("settled %+v %+v", e, e.Settlement)
	}
	// The batch takes nothing more while it is settled.
	if r := c.sale(5); r.rc() != "77" {
		t.Fatalf("sale during settlement: %s", r.rc())
	}
	if r := c.batchEnd("202", 0); r.rc() != "12" {
		t.Fatalf("202 after a balanced settlement: %s", r.rc())
	}
	if r := c.batchEnd("207", 0); r.rc() != "00" || r.f60() != "00000001207" {
		t.Fatalf("207: %s %s", r.rc(), r.f60())
	}
	closed := onlyEntry(t, in, ledger.EventBatchClosed)
	if closed.NextBatch != "000002" || closed.Code != "207" || !closed.Settlement.Balanced {
		t.Fatalf("closed %+v", closed)
	}
	c.batch = "000002" // the terminal's own advance (LiaoYang AfterSettleTran)
	if r := c.signOff(); r.rc() != "00" {
		t.Fatalf("sign-off: %s", r.rc())
	}
	if off := onlyEntry(t, in, ledger.EventSignedOff); off.Batch != "000002" || off.Code != "002" || off.NextBatch != "" {
		t.Fatalf("signed off %+v", off)
	}
	r, _ = c.signOn("004", hostsim.LayoutStandard)
	if r.f60()[2:8] != "000002" {
		t.Fatalf("sign-on after settlement: 60 %s", r.f60())
	}
	if r := c.sale(3); r.rc() != "00" {
		t.Fatalf("sale in the new batch: %s", r.rc())
	}
	// The host restarted from its ledger still has the terminal at 000002.
	in.restart()
	r, _ = c.signOn("004", hostsim.LayoutStandard)
	if r.f60()[2:8] != "000002" {
		t.Fatalf("after a host restart: 60 %s", r.f60())
	}
}

// TestSettlementUnbalanced: totals that are not the host's are answered
// unbalanced with the host's totals in their place; the terminal uploads its
// magstripe records (one the host knows, one it does not) and ends with
// 202, which closes the batch unbalanced with the counts.
func TestSettlementUnbalanced(t *testing.T) {
	in := newInstall(t, nil)
	c := in.terminal()
	c.signOn("004", hostsim.LayoutStandard)
	s := c.sale(250)
	s2 := c.sale(100)
	rev := c.reverse(s2) // the terminal lost the answer
	if s.rc() != "00" || rev.rc() != "00" {
		t.Fatalf("sale %s reversal %s", s.rc(), rev.rc())
	}
	r := c.settle(totals(2, 350, 0, 0)) // the terminal forgot the reversal
	want := "000000000250001000000000000000" + "2" + strings.Repeat("0", 30) + "1"
	if r.rc() != "00" || r.get(48) != want {
		t.Fatalf("settlement %s 48=%s", r.rc(), r.get(48))
	}
	e := onlyEntry(t, in, ledger.EventSettled)
	if e.Settlement.Balanced || e.Settlement.Domestic != "2" || e.Settlement.Reversed != 1 || e.Settlement.Sales != 1 ||
		e.Settlement.Terminal.DebitAmount != 350 {
		t.Fatalf("settled %+v", e.Settlement)
	}
	if r := c.batchEnd("207", 2); r.rc() != "12" {
		t.Fatalf("207 after an unbalanced settlement: %s", r.rc())
	}
	up := c.adminReply("0320", "201", nil, map[int]string{
		48: "02" + batchRecord(s.get(11), card.PAN.Reveal(), "000000000250") + batchRecord(s2.get(11), card.PAN.Reveal(), "000000000100")})
	if up.rc() != "00" {
		t.Fatalf("batch upload: %s", up.rc())
	}
	if r := c.adminReply("0320", "201", nil, map[int]string{48: "01123"}); r.rc() != "30" {
		t.Fatalf("broken batch upload: %s", r.rc())
	}
	if r := c.batchEnd("202", 2); r.rc() != "00" || r.f60() != "00000001202" {
		t.Fatalf("202: %s %s", r.rc(), r.f60())
	}
	closed := onlyEntry(t, in, ledger.EventBatchClosed)
	if st := closed.Settlement; st.Balanced || st.Uploaded != 2 || st.Received != 2 || st.Unmatched != 1 || closed.NextBatch != "000002" {
		t.Fatalf("closed %+v", st)
	}
}

// TestSettlementNetAndForeign: with net counting a voided sale and its void
// are on neither side; foreign totals the host never booked do not balance.
func TestSettlementNetAndForeign(t *testing.T) {
	in := newInstall(t, func(c *hostsim.Config) { c.Netting = hostsim.NettingNet })
	c := in.terminal()
	c.signOn("001", hostsim.LayoutStandard)
	c.void(c.sale(7))
	c.sale(9)
	f48 := totals(1, 9, 0, 0)
	f48 = f48[:31] + "000000000010001000000000000000" + "0"
	r := c.settle(f48)
	if r.rc() != "00" || r.get(48) != f48[:30]+"1"+strings.Repeat("0", 30)+"2" {
		t.Fatalf("settlement %s 48=%s", r.rc(), r.get(48))
	}
	if st := onlyEntry(t, in, ledger.EventSettled).Settlement; st.Balanced || st.Domestic != "1" || st.Foreign != "2" || st.Netting != "net" {
		t.Fatalf("settled %+v", st)
	}
	if r := c.settle("12345"); r.rc() != "30" {
		t.Fatalf("broken 48: %s", r.rc())
	}
}

// TestBatchMismatch77: a sale, a settlement or a batch upload of another
// batch than the host's is 77; a sign-off may be one batch either side.
func TestBatchMismatch77(t *testing.T) {
	in := newInstall(t, func(c *hostsim.Config) { c.Batch = "000005" })
	c := in.terminal()
	r, _ := c.signOn("004", hostsim.LayoutStandard)
	if c.batch != "000005" {
		t.Fatalf("sign-on 60 %s", r.f60())
	}
	if r := c.saleIn("000004", 1); r.rc() != "77" {
		t.Fatalf("sale of batch 4: %s", r.rc())
	}
	c.batch = "000006"
	for _, r := range []reply{c.settle(totals(0, 0, 0, 0)), c.batchEnd("207", 0),
		c.adminReply("0320", "203", nil, map[int]string{2: card.PAN.Reveal(), 4: "000000000001"})} {
		if r.rc() != "77" {
			t.Fatalf("%s of batch 6: %s", r.get(0), r.rc())
		}
	}
	if r := c.signOff(); r.rc() != "00" {
		t.Fatalf("sign-off of the next batch: %s", r.rc())
	}
	c.batch = "000007"
	if r := c.signOff(); r.rc() != "77" {
		t.Fatalf("sign-off two batches on: %s", r.rc())
	}
	if n := len(in.entries(ledger.EventApproved)) + len(in.entries(ledger.EventSettled)); n != 0 {
		t.Fatal("a refused message was booked")
	}
}

// TestBatchAdvanceAtSignOff: a host that advances at sign-off closes the
// batch at its 207 but moves the terminal on only when it signs off; the
// restarted host knows.
func TestBatchAdvanceAtSignOff(t *testing.T) {
	in := newInstall(t, func(c *hostsim.Config) { c.BatchAdvance = hostsim.AdvanceAtSignOff })
	c := in.terminal()
	c.signOn("004", hostsim.LayoutStandard)
	c.settle(totals(0, 0, 0, 0))
	if r := c.batchEnd("207", 0); r.rc() != "00" {
		t.Fatalf("207: %s", r.rc())
	}
	if e := onlyEntry(t, in, ledger.EventBatchClosed); e.NextBatch != "" {
		t.Fatalf("closed %+v", e)
	}
	if r := c.settle(totals(0, 0, 0, 0)); r.rc() != "77" {
		t.Fatalf("second settlement of a closed batch: %s", r.rc())
	}
	r, _ := c.signOn("004", hostsim.LayoutStandard)
	if r.f60()[2:8] != "000001" {
		t.Fatalf("sign-on before sign-off: %s", r.f60())
	}
	if r := c.signOff(); r.rc() != "00" {
		t.Fatalf("sign-off: %s", r.rc())
	}
	if e := onlyEntry(t, in, ledger.EventSignedOff); e.NextBatch != "000002" {
		t.Fatalf("signed off %+v", e)
	}
	in.restart()
	r, _ = c.signOn("004", hostsim.LayoutStandard)
	if r.f60()[2:8] != "000002" {
		t.Fatalf("sign-on after sign-off: %s", r.f60())
	}
}

// TestSettlementMACOptional: management messages carry no MAC, but one that
// does has it checked (A0 when it fails) and is answered MACed.
func TestSettlementMACOptional(t *testing.T) {
	in := newInstall(t, nil)
	c := in.terminal()
	c.signOn("004", hostsim.LayoutStandard)
	m := c.admin("0500", "201", nil, map[int]string{48: totals(0, 0, 0, 0)})
	r := c.must(m, true)
	if r.rc() != "00" || acquirer.CheckMAC(r.m, r.raw, acquirer.MACUnionPayECB, acquirer.MACKey(c.mak, false)) != nil {
		t.Fatalf("MACed settlement: %s, answer MAC does not verify", r.rc())
	}
	good := c.mak
	c.mak = make(acquirer.Key, 16)
	if r := c.must(c.admin("0500", "201", nil, map[int]string{48: totals(0, 0, 0, 0)}), true); r.rc() != "A0" || acquirer.GetBytes(r.m, 64) != nil {
		t.Fatalf("settlement under another MAK: %s", r.rc())
	}
	c.mak = good
}
