package devsim

import (
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/posagent/posagent/agent/sim/inproc"
	"github.com/posagent/posagent/provisioning"
	"github.com/posagent/posagent/provisioning/pan"
	"github.com/posagent/posagent/provisioning/provisioningtest"
)

// installer confirms the card, and at a failure loads paper and retries.
type installer struct {
	emu      *Printer
	failures []string
}

func (i *installer) Show(context.Context, provisioning.Screen) error { return nil }

func (i *installer) Ask(_ context.Context, s provisioning.Screen, opts ...provisioning.Option) (string, error) {
	for _, o := range opts {
		if o.ID == "retry" {
			i.failures = append(i.failures, strings.Join(s.Lines, " "))
			i.emu.SetPaperOut(false) // "paper loaded"
			return "retry", nil
		}
	}
	return opts[0].ID, nil
}

// TestFlowPaperOutMidSlip runs the install flow with the real printer driver
// on the emulated printer: the paper runs out in the middle of the test sale's
// slip, the flow stops for the installer, and after "paper loaded" and a retry
// both copies come out marked as a duplicate; the void's two copies follow,
// not marked.
func TestFlowPaperOutMidSlip(t *testing.T) {
	ctx := testCtx(t)
	emu, prn, dir := newPrinter(t, ctx)
	emu.PaperOutAfter(20)
	host, err := inproc.OpenHost(filepath.Join(dir, "ledger.jsonl"), provisioning.SystemClock{})
	if err != nil {
		t.Fatal(err)
	}
	defer host.Close()
	card, err := inproc.NewCard("debit")
	if err != nil {
		t.Fatal(err)
	}
	accounts := provisioning.KeyedAccounts{Key: []byte("devsim flow test key")}
	check, err := provisioning.AccountCheckValue(accounts.Key, pan.MustParse(inproc.DemoPAN))
	if err != nil {
		t.Fatal(err)
	}
	term := provisioning.Terminal{TID: "10000001", MID: "898310048160001", Serial: "SN1"}
	ui := &installer{emu: emu}
	flow := &provisioning.Flow{
		Terminal: term, Amount: 1, Version: "test", Rules: provisioning.BindingRules{Accounts: accounts},
		Params: inproc.Params{Merchant: provisioning.Merchant{MID: term.MID, Name: "测试商户 TEST MERCHANT",
			LegalPerson: "ZHANG SAN", AccountCheck: check, CardType: provisioning.Debit}},
		Card: card, Host: host, Printer: prn, UI: ui, Reporter: inproc.NopReporter{},
		Store: &provisioningtest.Store{}, Clock: provisioning.SystemClock{}, Log: slog.New(slog.DiscardHandler),
	}
	cp, err := flow.Run(ctx)
	if err != nil || cp.Step != provisioning.StepLive {
		t.Fatalf("flow ended at %s: %v", cp.Step, err)
	}
	if len(ui.failures) != 1 || !strings.Contains(ui.failures[0], "E_PAPER_END") {
		t.Fatalf("installer saw %d failures: %q", len(ui.failures), ui.failures)
	}
	slips := emu.Slips()
	if len(slips) != 4 {
		t.Fatalf("%d slips printed", len(slips))
	}
	for i, s := range slips {
		dup, void := strings.Contains(s, "重打印 DUPLICATED"), strings.Contains(s, "撤销 VOID")
		if dup != (i < 2) || void != (i >= 2) || !strings.Contains(s, "621790") && !strings.Contains(s, "622202") {
			t.Errorf("slip %d:\n%s", i+1, s)
		}
		if strings.Contains(s, inproc.DemoPAN) {
			t.Error("full PAN on the slip")
		}
	}
}
