// Package installertest runs the real install flow (provisioning.Flow) on
// agent/sim's devices behind an installer, for tests that drive the whole
// install from a key script: the installer's golden transcripts, and any
// test of the agent's wiring that wants the same rig.
package installertest

import (
	"context"
	"log/slog"
	"path/filepath"

	"github.com/posagent/posagent/agent/config"
	"github.com/posagent/posagent/agent/installer"
	"github.com/posagent/posagent/agent/sim/inproc"
	"github.com/posagent/posagent/provisioning"
	"github.com/posagent/posagent/provisioning/provisioningtest"
)

// Rig is the simulated terminal: the devices and the checkpoint store the
// flow runs on, built as agent.Run builds them for the demo, with the demo
// config's merchant. Tests change the devices between key presses (Host.Down,
// Printer.SetPaperOut) to walk the error paths.
type Rig struct {
	Card    *inproc.Card
	Host    *inproc.Host
	Printer *inproc.Printer
	Store   *provisioningtest.Store
	// Downloads keeps the CA keys and IC parameters across the flows the
	// menu starts, as the agent's file does across restarts.
	Downloads *provisioningtest.Store
	Clock     provisioning.Clock
	Config    *config.Config
	// Runs counts calls of Flow: each is one entry into the install from the
	// menu.
	Runs int
}

// New builds a rig whose host keeps its ledger in dir and whose card slot
// presents the named sim profiles in turn (none: the demo's debit card).
func New(dir string, clock provisioning.Clock, cards ...string) (*Rig, error) {
	card, err := inproc.NewCard(cards...)
	if err != nil {
		return nil, err
	}
	host, err := inproc.OpenHost(filepath.Join(dir, "simhost-ledger.jsonl"), clock)
	if err != nil {
		return nil, err
	}
	return &Rig{
		Card: card, Host: host, Printer: &inproc.Printer{Width: 32},
		Store: &provisioningtest.Store{}, Downloads: &provisioningtest.Store{}, Clock: clock, Config: config.Default(),
	}, nil
}

// Close closes the host's ledger.
func (r *Rig) Close() error { return r.Host.Close() }

// Identity is the demo config's MID and TID.
func (r *Rig) Identity() installer.Identity {
	return installer.Identity{MID: r.Config.Terminal.MID, TID: r.Config.Terminal.TID}
}

// Flow is an installer.FlowFunc: it runs provisioning.Flow for id on the rig,
// asking through p, and resumes from the rig's checkpoint store on every call.
func (r *Rig) Flow(ctx context.Context, id installer.Identity, p provisioning.Prompter) error {
	r.Runs++
	c := r.Config
	f := &provisioning.Flow{
		Terminal: provisioning.Terminal{MID: id.MID, TID: id.TID, Serial: c.Terminal.Serial},
		Rules:    provisioning.BindingRules{AcceptedBINs: c.Binding.AcceptedBINs, Accounts: inproc.Accounts(id.TID)},
		Amount:   c.TestSale.Minor,
		Version:  "test",
		Params: inproc.Params{Merchant: provisioning.Merchant{
			MID: c.Terminal.MID, Name: c.Merchant.Name, LegalPerson: c.Merchant.LegalPerson,
			AccountName: c.Merchant.AccountName, AccountCheck: c.Merchant.AccountCheck,
			CardType: provisioning.CardType(c.Merchant.CardType),
		}},
		Card:      r.Card,
		Host:      r.Host,
		Printer:   r.Printer,
		UI:        p,
		Reporter:  inproc.NopReporter{},
		Store:     r.Store,
		Downloads: provisioning.DownloadFile{Store: r.Downloads},
		Clock:     r.Clock,
		Log:       slog.New(slog.DiscardHandler),
	}
	_, err := f.Run(ctx)
	return err
}

// Checkpoint decodes what the flow last saved.
func (r *Rig) Checkpoint() (provisioning.Checkpoint, error) {
	b, err := r.Store.Load()
	if err != nil {
		return provisioning.Checkpoint{}, err
	}
	return provisioning.Decode(b)
}
