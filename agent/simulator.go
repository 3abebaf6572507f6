package agent

import (
	"context"
	"fmt"
	"io"

	"github.com/posagent/posagent/agent/acquirer"
	"github.com/posagent/posagent/agent/config"
	"github.com/posagent/posagent/provisioning"
)

// simulator is one run's simulated far side of the ports a config may name
// "sim" (card reader, acquirer host, printer) and the crash tests' pause
// points. Builds with the simulators set newSimulator (simulated.go);
// firmware builds leave it nil, link none of agent/sim, and refuse a config
// or option that needs one (checkSimulated).
type simulator interface {
	// Point freezes the run at the named pause point when it is
	// Options.PauseAt, until ctx ends.
	Point(ctx context.Context, name string)
	// Card is the simulated chip reader with the named virtual cards
	// inserted in turn.
	Card(profiles []string) (provisioning.CardSource, error)
	// Host is the in-process acquirer, booking into the ledger file, and
	// the key store holding the demo's keys it answers with.
	Host(ledger string) (provisioning.Host, acquirer.KeyStore, io.Closer, error)
	// Printer files slips in dir and on the screen; printed counts copies.
	Printer(dir string, width int) (p provisioning.Printer, printed func() int)
}

// newSimulator builds a run's simulator; nil in firmware builds.
var newSimulator func(o Options) simulator

// checkSimulated refuses, in a build without simulators, a config naming a
// simulated device or host and the crash tests' pause points: said at start,
// as a config error, rather than at the first card read.
func checkSimulated(cfg *config.Config, o Options) error {
	if newSimulator != nil {
		return nil
	}
	for _, k := range []struct{ key, value string }{
		{"devices.card_reader", cfg.Devices.CardReader},
		{"host.address", cfg.Host.Address},
		{"devices.printer", cfg.Devices.Printer},
	} {
		if k.value == config.SimDevice {
			return &config.Error{Key: k.key, Msg: `"sim" is not in this build: a firmware build has no simulators; name the terminal's real device`}
		}
	}
	if o.PauseAt != "" {
		return fmt.Errorf("agent: --pause-at %s: a firmware build has no pause points (they are the simulators')", o.PauseAt)
	}
	return nil
}

// configParams is the merchant record from the config: the parameter
// source when central sends no signed ticket. The crash tests may freeze
// the run as it loads ("params.load").
type configParams struct {
	merchant provisioning.Merchant
	sim      simulator // nil: no pause points
}

func (p configParams) Parameters(ctx context.Context, _ provisioning.Terminal) (provisioning.Merchant, error) {
	if p.sim != nil {
		p.sim.Point(ctx, "params.load")
	}
	return p.merchant, ctx.Err()
}
