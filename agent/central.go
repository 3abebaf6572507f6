package agent

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/posagent/posagent/agent/central/command"
	"github.com/posagent/posagent/agent/central/mqtt"
	"github.com/posagent/posagent/agent/central/outbox"
	"github.com/posagent/posagent/agent/central/report"
	"github.com/posagent/posagent/agent/central/ticket"
	"github.com/posagent/posagent/agent/central/trust"
	"github.com/posagent/posagent/agent/config"
	"github.com/posagent/posagent/provisioning"
)

// centralTrust is what central's signatures are checked with: its keys and
// the time floor their validity windows are held to (trust.Floor: a
// wound-back clock cannot revive what expired). Zero when central sends
// neither tickets nor commands.
type centralTrust struct {
	keys  *trust.KeyRing
	floor *trust.Floor
}

func openTrust(cfg *config.Config) (centralTrust, error) {
	if !cfg.Central.On() {
		return centralTrust{}, nil
	}
	keys, err := cfg.Central.KeyRing()
	if err != nil {
		return centralTrust{}, err
	}
	floor, err := trust.OpenFloor(filepath.Join(cfg.StateDir, "time-floor.json"))
	if err != nil {
		return centralTrust{}, fmt.Errorf("agent: %w", err)
	}
	return centralTrust{keys: keys, floor: floor}, nil
}

// central is the terminal's side of central monitoring for one run, all on
// one MQTT session: the status reporter, the signed install ticket (the
// parameter source, when on) and the signed commands. Opened, it is
// subscribed but not connected; Start connects it once the flow exists.
type central struct {
	// Reporter is every report's destination: the screen's step lines,
	// then MQTT when configured.
	Reporter provisioning.Reporter
	// Tickets is the parameter source when central sends install tickets;
	// nil otherwise.
	Tickets *ticket.Source

	log     *slog.Logger
	mq      *report.Reporter
	link    *mqtt.Client
	cmds    *command.Server
	closers []func(context.Context) // in closing order
}

// openCentral opens the outbox, the MQTT session for term (the running
// identity) and what runs on it. local is the report destination that is
// always there (the step lines); handler answers central's commands, and
// screen shows why a ticket was refused. Subscriptions are made before the
// session connects, so the retained ticket and queued commands arrive on
// the first connection.
func openCentral(cfg *config.Config, term provisioning.Terminal, tr centralTrust, local provisioning.Reporter,
	handler command.Handler, screen provisioning.Prompter, log *slog.Logger) (_ *central, err error) {
	c := &central{Reporter: local, log: log}
	if !cfg.MQTT.On() {
		return c, nil
	}
	defer func() {
		if err != nil {
			c.Close(context.Background())
		}
	}()
	// Reports wait here for the broker, across restarts and power cuts. A
	// corrupt outbox is an error, not an empty one: an operator moves it
	// aside, knowing what was lost.
	ob, err := outbox.Open(filepath.Join(cfg.StateDir, "outbox"), outbox.Options{})
	if err != nil {
		return nil, fmt.Errorf("agent: report outbox: %w", err)
	}
	c.closers = append(c.closers, func(context.Context) {
		if err := ob.Close(); err != nil {
			log.Warn("mqtt outbox close", "err", err)
		}
	})
	// Each start gets a higher session number, so monitoring can tell a late
	// Will of an earlier run from this run's birth.
	session, err := mqtt.NextSession(filepath.Join(cfg.StateDir, "mqtt-session"))
	if err != nil {
		return nil, fmt.Errorf("agent: %w", err)
	}
	c.link, err = mqtt.New(mqtt.Options{
		URLs: cfg.MQTT.Brokers(), Username: cfg.MQTT.Username, Password: cfg.MQTT.Password,
		CAFile: cfg.MQTT.CAFile, CertFile: cfg.MQTT.CertFile, KeyFile: cfg.MQTT.KeyFile,
		TID: term.TID, MID: term.MID, Serial: term.Serial, Keepalive: cfg.MQTT.Keepalive, Logger: log,
		Session:      session,
		ReconnectMax: cfg.MQTT.ReconnectMax, ConnectJitter: cfg.MQTT.ConnectJitter, Heartbeat: cfg.MQTT.Heartbeat,
	})
	if err != nil {
		return nil, err
	}
	if c.mq, err = report.New(report.Options{Link: c.link, Queue: ob, Logger: log}); err != nil {
		return nil, err
	}
	c.Reporter = multiReporter{local, c.mq}
	if cfg.Central.Tickets {
		c.Tickets = &ticket.Source{
			Verifier: &ticket.Verifier{Keys: tr.keys, TID: term.TID, StatePath: filepath.Join(cfg.StateDir, "ticket-state.json"),
				Floor: tr.floor, MaxTestAmount: cfg.Central.MaxTestMinor},
			Reporter: c.Reporter, UI: screen, Log: log,
		}
		if err := c.Tickets.Listen(c.link); err != nil {
			return nil, fmt.Errorf("agent: ticket: %w", err)
		}
	}
	if cfg.Central.Commands {
		c.cmds = &command.Server{TID: term.TID, Handler: handler, Transport: c.link, Log: log,
			Verifier: &command.Verifier{Keys: tr.keys, TID: term.TID, Floor: tr.floor,
				StatePath: filepath.Join(cfg.StateDir, "command-nonces.json")}}
		if err := c.cmds.Listen(); err != nil {
			return nil, fmt.Errorf("agent: commands: %w", err)
		}
	}
	return c, nil
}

// Start connects the session and starts reporting and serving commands: the
// handler must be ready for them.
func (c *central) Start(ctx context.Context) error {
	if c.link == nil {
		return nil
	}
	if c.cmds != nil {
		cctx, stop := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { defer close(done); c.cmds.Run(cctx) }()
		c.closers = append(c.closers, func(context.Context) { stop(); <-done })
	}
	if err := c.link.Start(ctx); err != nil {
		return err
	}
	// Closed after the reporter: the shutdown state follows the last
	// report, then a clean disconnect.
	c.closers = append(c.closers, func(ctx context.Context) {
		if err := c.link.Close(ctx); err != nil {
			c.log.Warn("mqtt session close", "err", err)
		}
	})
	if err := c.mq.Start(ctx); err != nil {
		return err
	}
	c.closers = append(c.closers, func(ctx context.Context) {
		// Reports queued while the broker was away get a bounded chance to
		// leave now; the rest stay in the outbox for the next start.
		if err := c.mq.Close(ctx); err != nil {
			c.log.Warn("mqtt close", "err", err)
		}
	})
	return nil
}

// Flush waits, bounded, until the broker has every report so far: an
// install that went live says so before the agent exits.
func (c *central) Flush(ctx context.Context) {
	if c.mq == nil {
		return
	}
	fctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := c.mq.Flush(fctx); err != nil {
		c.log.Warn("mqtt flush", "err", err)
	}
}

// Close stops everything Start and openCentral started, newest first, each
// with a bounded time even when ctx has ended.
func (c *central) Close(ctx context.Context) {
	for i := len(c.closers) - 1; i >= 0; i-- {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		c.closers[i](cctx)
		cancel()
	}
	c.closers = nil
}

// multiReporter sends each report to every destination in turn.
type multiReporter []provisioning.Reporter

func (m multiReporter) Report(ctx context.Context, s provisioning.Status) {
	for _, r := range m {
		r.Report(ctx, s)
	}
}
