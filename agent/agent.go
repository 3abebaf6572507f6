// Package agent is posagent's composition root: it builds the devices, the
// reporting and the install flow from the config, runs the flow, and owns and
// closes everything it opened. The daemon (`posagent run`) and the demo
// (`posagent demo`) are two ways of filling the same Options.
package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/posagent/posagent/agent/central/command"
	"github.com/posagent/posagent/agent/central/mqtt"
	"github.com/posagent/posagent/agent/central/outbox"
	"github.com/posagent/posagent/agent/central/report"
	"github.com/posagent/posagent/agent/central/ticket"
	"github.com/posagent/posagent/agent/central/trust"
	"github.com/posagent/posagent/agent/config"
	"github.com/posagent/posagent/agent/installer"
	"github.com/posagent/posagent/agent/installer/ui"
	"github.com/posagent/posagent/agent/sim/inproc"
	"github.com/posagent/posagent/agent/store"
	"github.com/posagent/posagent/provisioning"
)

// Version is stamped at build time (-ldflags "-X …/agent.Version=…").
var Version = "dev"

// Options are the parts of a run that are not in the config file.
type Options struct {
	Stdout io.Writer // screen, slips and step lines
	Stderr io.Writer // logs
	// Keys is the simulated keypad's script (ui.ParseScript syntax) answering
	// the flow's questions directly; "" confirms the card and nothing else.
	Keys string
	// KeysFile is a key-script file driving the installer's menu, as an
	// installer at the keypad would (posagent demo --keys FILE); its waits
	// pass on a virtual clock.
	KeysFile string
	// PauseAt freezes the agent at a sim pause point (crash tests only).
	PauseAt string
	// LogLevel is the slog level for Stderr.
	LogLevel slog.Level
	// SlipDir is where the simulated printer files its slips; "" means
	// <state_dir>/slips. SlipPictures also draws them as PNG pictures.
	SlipDir      string
	SlipPictures bool
}

// ErrNeedsAttention is returned when the flow stopped for the installer and no
// key answered (a scripted keypad ran out).
var ErrNeedsAttention = errors.New("agent: install needs the installer's attention")

// Result is how a run ended.
type Result struct {
	Checkpoint provisioning.Checkpoint
	Printed    int // slip copies printed by this run
}

// errNewIdentity ends a run whose installer confirmed a MID/TID other than
// the one the run's reporting, tickets and commands were built for.
var errNewIdentity = errors.New("agent: the installer confirmed another identity")

// maxRestarts bounds the runs one Run starts around a new identity: two
// (a new identity, then an operator's reset) are already unusual.
const maxRestarts = 4

// Run runs the install flow on the config's devices until the terminal is
// live. Reporting, tickets, commands and the flow all run under one
// identity (Identity); when it changes — the installer confirmed other
// numbers before the install went online, or an operator reset the install
// — everything is built again around the new one.
func Run(ctx context.Context, cfg *config.Config, o Options) (Result, error) {
	if err := cfg.ValidateForRun(); err != nil {
		return Result{}, err
	}
	for n := 0; ; n++ {
		res, err := runOnce(ctx, cfg, o)
		if (errors.Is(err, errNewIdentity) || errors.Is(err, provisioning.ErrReset)) && n < maxRestarts {
			if o.Stdout != nil {
				fmt.Fprintln(o.Stdout, "agent| new terminal identity: starting again under it")
			}
			continue
		}
		return res, err
	}
}

// wantedIdentity is the MID/TID the installer confirmed (its record in the
// state dir), else the config's: the numbers the terminal is asked to run
// under. An install already under way keeps the ones its checkpoint froze
// (provisioning.RunningIdentity) until an operator resets it.
func wantedIdentity(cfg *config.Config) (provisioning.Terminal, error) {
	term := provisioning.Terminal{TID: cfg.Terminal.TID, MID: cfg.Terminal.MID, Serial: cfg.Terminal.Serial}
	id, ok, err := installer.LoadIdentity(store.File{Path: filepath.Join(cfg.StateDir, "terminal-id.json")})
	if err != nil {
		return term, fmt.Errorf("agent: %w", err)
	}
	if ok {
		term.TID, term.MID = id.TID, id.MID
	}
	return term, nil
}

func runOnce(ctx context.Context, cfg *config.Config, o Options) (Result, error) {
	if o.Stdout == nil {
		o.Stdout = io.Discard
	}
	if o.Stderr == nil {
		o.Stderr = io.Discard
	}
	log := slog.New(slog.NewTextHandler(o.Stderr, &slog.HandlerOptions{Level: o.LogLevel}))
	if err := os.MkdirAll(cfg.StateDir, 0o700); err != nil {
		return Result{}, fmt.Errorf("agent: state dir: %w", err)
	}
	// A write cut short by a crash leaves its temp file, which may hold the
	// TMK in clear (keys.json's): gone before anything else runs.
	if removed, err := store.RemoveTemps(cfg.StateDir); err != nil {
		return Result{}, fmt.Errorf("agent: state dir: %w", err)
	} else if len(removed) > 0 {
		log.Warn("removed temp files of interrupted writes", "files", removed)
	}
	pauses := &inproc.Pauses{At: o.PauseAt, Out: o.Stderr}
	// The checkpoint never keeps the account check next to the bound card.
	checkpoints := provisioning.ForgetAccountCheck(store.File{Path: filepath.Join(cfg.StateDir, "state.json")})
	wanted, err := wantedIdentity(cfg)
	if err != nil {
		return Result{}, err
	}
	term, err := provisioning.RunningIdentity(checkpoints, wanted)
	if err != nil {
		return Result{}, fmt.Errorf("agent: %w", err)
	}

	dev, err := openDevices(ctx, cfg, o, pauses, log)
	if err != nil {
		return Result{}, err
	}
	defer dev.Close()

	keys := o.Keys
	if keys == "" {
		keys = "ENTER"
	}
	script, err := ui.ParseScript(keys)
	if err != nil {
		return Result{}, fmt.Errorf("agent: keys: %w", err)
	}
	screen := &switchPrompter{next: &ui.Terminal{Display: &ui.Console{W: o.Stdout, Cols: 32, Prefix: "screen| "}, Keypad: script}}

	// The MQTT reporter joins below once it exists; the flow holds a
	// pointer to the list.
	reporters := multiReporter{stepPrinter{w: o.Stdout}}
	flow := &provisioning.Flow{
		Terminal: wanted,
		Rules:    provisioning.BindingRules{AcceptedBINs: cfg.Binding.AcceptedBINs},
		Amount:   cfg.TestSale.Minor,
		Version:  Version,
		Codes:    provisioning.ResponseCodes{Approved: cfg.Host.ApprovalCodes, Declined: cfg.Host.DeclineCodes},
		// The same cap as the ticket verifier's: a merchant record from
		// anywhere else is held to it too.
		MaxTestAmount: cfg.Central.MaxTestMinor,
		Params: inproc.Params{Pauses: pauses, Merchant: provisioning.Merchant{
			MID: cfg.Terminal.MID, Name: cfg.Merchant.Name, LegalPerson: cfg.Merchant.LegalPerson,
			AccountName: cfg.Merchant.AccountName, AccountCheck: cfg.Merchant.AccountCheck,
			CardType: provisioning.CardType(cfg.Merchant.CardType),
		}},
		Card:     dev.card,
		Host:     dev.host,
		Printer:  dev.printer,
		UI:       screen,
		Reporter: &reporters,
		// The crash tests freeze the agent as a step starts ("enter:STEP").
		OnEnter: func(ctx context.Context, s provisioning.Step) { pauses.Point(ctx, "enter:"+string(s)) },
		Store:   checkpoints,
		Clock:   provisioning.SystemClock{},
		Log:     log,
	}
	flow.Rules.Accounts = flowAccounts{flow: flow, keys: dev.keys}
	// Central's commands answer the same questions the installer does.
	rem := &remote{flow: flow}
	flow.UI = rem.prompter(screen)

	var mq *report.Reporter
	if cfg.MQTT.URL != "" {
		// The reports wait here for the broker, across restarts and power cuts
		// (issue 6). A corrupt outbox is an error, not an empty one: an operator
		// moves it aside, knowing what was lost.
		ob, err := outbox.Open(filepath.Join(cfg.StateDir, "outbox"), outbox.Options{})
		if err != nil {
			return Result{}, fmt.Errorf("agent: report outbox: %w", err)
		}
		// Registered before the reporter's Close, so it runs after it.
		defer func() {
			if err := ob.Close(); err != nil {
				log.Warn("mqtt outbox close", "err", err)
			}
		}()
		// Each start gets a higher session number, so monitoring can tell a
		// late Will of an earlier run from this run's birth.
		session, err := mqtt.NextSession(filepath.Join(cfg.StateDir, "mqtt-session"))
		if err != nil {
			return Result{}, fmt.Errorf("agent: %w", err)
		}
		// The MQTT session: reports, tickets and commands all run on it.
		link, err := mqtt.New(mqtt.Options{
			URL: cfg.MQTT.URL, Username: cfg.MQTT.Username, Password: cfg.MQTT.Password,
			CAFile: cfg.MQTT.CAFile, CertFile: cfg.MQTT.CertFile, KeyFile: cfg.MQTT.KeyFile,
			TID: term.TID, MID: term.MID, Serial: term.Serial, Keepalive: cfg.MQTT.Keepalive, Logger: log,
			Session: session,
		})
		if err != nil {
			return Result{}, err
		}
		mq, err = report.New(report.Options{Link: link, Queue: ob, Logger: log})
		if err != nil {
			return Result{}, err
		}
		// Subscriptions before Start, so the retained ticket and any queued
		// command are delivered on the first connection.
		var keys *trust.KeyRing
		var floor *trust.Floor
		if cfg.Central.On() {
			if keys, err = cfg.Central.KeyRing(); err != nil {
				return Result{}, err
			}
			// The time floor central's validity windows are checked against
			// (trust.Floor): a wound-back clock cannot revive what expired.
			if floor, err = trust.OpenFloor(filepath.Join(cfg.StateDir, "time-floor.json")); err != nil {
				return Result{}, fmt.Errorf("agent: %w", err)
			}
			// The host's time raises it too, when the link is authenticated.
			dev.hostTime.set(floor)
		}
		if cfg.Central.Tickets {
			src := &ticket.Source{
				Verifier: &ticket.Verifier{Keys: keys, TID: term.TID, StatePath: filepath.Join(cfg.StateDir, "ticket-state.json"),
					Floor: floor, MaxTestAmount: cfg.Central.MaxTestMinor},
				Reporter: &reporters, UI: screen, Log: log,
			}
			if err := src.Listen(link); err != nil {
				return Result{}, fmt.Errorf("agent: ticket: %w", err)
			}
			flow.Params = src
		}
		if cfg.Central.Commands {
			cmds := &command.Server{TID: term.TID, Handler: rem, Transport: link, Log: log,
				Verifier: &command.Verifier{Keys: keys, TID: term.TID, Floor: floor,
					StatePath: filepath.Join(cfg.StateDir, "command-nonces.json")}}
			if err := cmds.Listen(); err != nil {
				return Result{}, fmt.Errorf("agent: commands: %w", err)
			}
			cctx, stopCmds := context.WithCancel(ctx)
			cmdsDone := make(chan struct{})
			go func() { defer close(cmdsDone); cmds.Run(cctx) }()
			defer func() { stopCmds(); <-cmdsDone }()
		}
		if err := link.Start(ctx); err != nil {
			return Result{}, err
		}
		// Registered before the reporter's Close, so it runs after it: the
		// shutdown state follows the last report, then a clean disconnect.
		defer func() {
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			if err := link.Close(cctx); err != nil {
				log.Warn("mqtt session close", "err", err)
			}
		}()
		if err := mq.Start(ctx); err != nil {
			return Result{}, err
		}
		defer func() {
			// Reports queued while the broker was away get a bounded chance to
			// leave now; the rest stay in the outbox for the next start.
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			if err := mq.Close(cctx); err != nil {
				log.Warn("mqtt close", "err", err)
			}
		}()
		reporters = append(reporters, mq)
	}

	var cp provisioning.Checkpoint
	if useInstaller(cfg, o) {
		cp, err = runInstaller(ctx, cfg, o, flow, screen, o.Stdout, log)
	} else {
		cp, err = flow.Run(ctx)
	}
	res := Result{Checkpoint: cp, Printed: dev.printed()}
	switch {
	case errors.Is(err, ui.ErrNoMoreKeys) && cp.Step == provisioning.StepNeedsAttention:
		err = fmt.Errorf("%w: %s %s: %s", ErrNeedsAttention, cp.Failure.Step, cp.Failure.Code, cp.Failure.Message)
	case errors.Is(err, ui.ErrNoMoreKeys) && cp.Step == "":
		err = fmt.Errorf("%w: the key script ended before the install started", ErrNeedsAttention)
	case errors.Is(err, ui.ErrNoMoreKeys):
		err = fmt.Errorf("%w: the key script ended with the install at %s", ErrNeedsAttention, cp.Step)
	}
	if err == nil && mq != nil {
		fctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if ferr := mq.Flush(fctx); ferr != nil {
			log.Warn("mqtt flush", "err", ferr)
		}
	}
	return res, err
}

type multiReporter []provisioning.Reporter

func (m *multiReporter) Report(ctx context.Context, s provisioning.Status) {
	for _, r := range *m {
		r.Report(ctx, s)
	}
}

// stepPrinter writes one line per transition, what an installer's log shows.
type stepPrinter struct{ w io.Writer }

func (p stepPrinter) Report(_ context.Context, s provisioning.Status) {
	line := fmt.Sprintf("step| %-15s %-8s attempt=%d", s.Step, s.State, s.Attempt)
	info, _ := provisioning.Info(s.Step)
	switch {
	case s.Error != nil:
		line += " error=" + s.Error.Code + " " + s.Error.Message
	case s.State == provisioning.StateDone && info.Summary != nil:
		line += " " + info.Summary(s)
	}
	fmt.Fprintln(p.w, strings.TrimRight(line, " "))
}
