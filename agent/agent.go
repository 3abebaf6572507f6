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

	"github.com/posagent/posagent/agent/acquirer"
	"github.com/posagent/posagent/agent/config"
	"github.com/posagent/posagent/agent/installer"
	"github.com/posagent/posagent/agent/installer/ui"
	"github.com/posagent/posagent/agent/store"
	"github.com/posagent/posagent/provisioning"
)

// Version is stamped at build time (-ldflags "-X …/agent.Version=…").
var Version = "dev"

// DownloadsFile is the download record inside the state dir (mode 0600):
// the CA public keys and IC parameters the acquirer sent, active and staged.
const DownloadsFile = "downloads.json"

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
	// <state_dir>/slips. SlipPictures also draws them as PNG pictures, with
	// the CJK font looked for at SlipFontPaths (nil: slipimage's defaults).
	SlipDir       string
	SlipPictures  bool
	SlipFontPaths []string
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
	if err := checkSimulated(cfg, o); err != nil {
		return Result{}, err
	}
	o, log := o.withDefaults()
	// The installer's keypad outlives the runs: keys typed while the agent
	// starts again are the next run's, and a key script goes on where it was.
	var keys *keySource
	if useInstaller(cfg, o) {
		var err error
		if keys, err = openKeys(cfg, o, log); err != nil {
			return Result{}, err
		}
		defer keys.close()
	}
	for n := 0; ; n++ {
		res, err := runOnce(ctx, cfg, o, keys, log)
		if (errors.Is(err, errNewIdentity) || errors.Is(err, provisioning.ErrReset)) && n < maxRestarts {
			fmt.Fprintln(o.Stdout, "agent| new terminal identity: starting again under it")
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

// runOnce is one run under one identity. keys is the installer's keypad,
// nil when the flow runs without the installer's menu.
func runOnce(ctx context.Context, cfg *config.Config, o Options, keys *keySource, log *slog.Logger) (Result, error) {
	if err := prepareStateDir(cfg.StateDir, log); err != nil {
		return Result{}, err
	}
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
	var sim simulator
	if newSimulator != nil {
		sim = newSimulator(o)
	}
	tr, err := openTrust(cfg)
	if err != nil {
		return Result{}, err
	}
	clock := terminalClock()
	if tr.floor != nil {
		// Central's floor is time the terminal persisted too.
		clock.Raise(tr.floor.Time(), provisioning.ClockPersisted)
	}
	dev, err := openDevices(ctx, cfg, o, sim, tr.floor, clock, log)
	if err != nil {
		return Result{}, err
	}
	defer dev.Close()
	screen, err := console(o)
	if err != nil {
		return Result{}, err
	}
	// Central's commands answer the same questions the installer does, on
	// the flow built below.
	rem := &remote{}
	c, err := openCentral(cfg, term, tr, stepPrinter{w: o.Stdout}, rem, screen, log)
	if err != nil {
		return Result{}, err
	}
	defer c.Close(ctx)
	var params provisioning.ParameterSource = configParams{merchant: merchantRecord(cfg), sim: sim}
	if c.Tickets != nil {
		params = c.Tickets
	}
	flow := &provisioning.Flow{
		Terminal: wanted,
		// The flow runs as wanted, or stops before binding (E_IDENTITY_CHANGED):
		// the acquirer keyed the check value to that TID.
		Rules:   provisioning.BindingRules{AcceptedBINs: cfg.Binding.AcceptedBINs, Accounts: acquirer.Accounts{Keys: dev.keys, TID: wanted.TID}},
		Amount:  cfg.TestSale.Minor,
		Version: Version,
		Codes:   provisioning.ResponseCodes{Approved: cfg.Host.ApprovalCodes, Declined: cfg.Host.DeclineCodes},
		// The same cap as the ticket verifier's: a merchant record from
		// anywhere else is held to it too.
		MaxTestAmount: cfg.Central.MaxTestMinor,
		Params:        params,
		Card:          dev.card, Host: dev.host, Printer: dev.printer,
		UI:       rem.prompter(screen),
		Reporter: c.Reporter,
		OnEnter:  enterHook(sim),
		Store:    checkpoints,
		// The CA keys and IC parameters the host sent, beside the
		// checkpoint (verified on save and load).
		Downloads: provisioning.DownloadFile{Store: store.File{Path: filepath.Join(cfg.StateDir, DownloadsFile)}},
		Clock:     clock,
		Log:       log,
	}
	rem.flow = flow
	if err := c.Start(ctx); err != nil {
		return Result{}, err
	}
	cp, err := install(ctx, cfg, flow, screen, keys, dev.pins, log)
	if err == nil {
		c.Flush(ctx)
	}
	return Result{Checkpoint: cp, Printed: dev.printed()}, err
}

// merchantRecord is the config's merchant record, for the config's MID: a
// terminal whose installer confirmed another MID needs central's ticket for
// it (the parameters step refuses a record for another MID).
func merchantRecord(cfg *config.Config) provisioning.Merchant {
	m := cfg.Merchant
	return provisioning.Merchant{MID: cfg.Terminal.MID, Name: m.Name, LegalPerson: m.LegalPerson,
		AccountName: m.AccountName, AccountCheck: m.AccountCheck, CardType: provisioning.CardType(m.CardType)}
}

// withDefaults fills the writers a caller left nil and builds the log.
func (o Options) withDefaults() (Options, *slog.Logger) {
	if o.Stdout == nil {
		o.Stdout = io.Discard
	}
	if o.Stderr == nil {
		o.Stderr = io.Discard
	}
	return o, slog.New(slog.NewTextHandler(o.Stderr, &slog.HandlerOptions{Level: o.LogLevel}))
}

// prepareStateDir makes the state dir and removes what interrupted writes
// left: a write cut short by a crash leaves its temp file, which may hold
// the TMK in clear (keys.json's), so it goes before anything else runs.
func prepareStateDir(dir string, log *slog.Logger) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("agent: state dir: %w", err)
	}
	removed, err := store.RemoveTemps(dir)
	if err != nil {
		return fmt.Errorf("agent: state dir: %w", err)
	}
	if len(removed) > 0 {
		log.Warn("removed temp files of interrupted writes", "files", removed)
	}
	return nil
}

// console is the screen the flow's questions go to when no installer's menu
// runs: the console, answered by the inline key script (ENTER by default).
// The installer's menu switches it to its own prompter of each run.
func console(o Options) (*switchPrompter, error) {
	keys := o.Keys
	if keys == "" {
		keys = "ENTER"
	}
	script, err := ui.ParseScript(keys)
	if err != nil {
		return nil, fmt.Errorf("agent: keys: %w", err)
	}
	return &switchPrompter{next: &ui.Terminal{Display: &ui.Console{W: o.Stdout, Cols: 32, Prefix: "screen| "}, Keypad: script}}, nil
}

// enterHook lets the crash tests freeze the agent as a step starts
// ("enter:STEP"); nil without a simulator.
func enterHook(sim simulator) func(context.Context, provisioning.Step) {
	if sim == nil {
		return nil
	}
	return func(ctx context.Context, s provisioning.Step) { sim.Point(ctx, "enter:"+string(s)) }
}

// install runs the flow, behind the installer's menu when there is a
// keypad for it, and says why it stopped when a scripted keypad ran out.
func install(ctx context.Context, cfg *config.Config, flow *provisioning.Flow, screen *switchPrompter, keys *keySource, pins *pinSlot, log *slog.Logger) (provisioning.Checkpoint, error) {
	var cp provisioning.Checkpoint
	var err error
	if keys != nil {
		cp, err = runInstaller(ctx, cfg, keys, flow, screen, pins, log)
	} else {
		cp, err = flow.Run(ctx)
	}
	switch {
	case errors.Is(err, ui.ErrNoMoreKeys) && cp.Step == provisioning.StepNeedsAttention:
		err = fmt.Errorf("%w: %s %s: %s", ErrNeedsAttention, cp.Failure.Step, cp.Failure.Code, cp.Failure.Message)
	case errors.Is(err, ui.ErrNoMoreKeys) && cp.Step == "":
		err = fmt.Errorf("%w: the key script ended before the install started", ErrNeedsAttention)
	case errors.Is(err, ui.ErrNoMoreKeys):
		err = fmt.Errorf("%w: the key script ended with the install at %s", ErrNeedsAttention, cp.Step)
	}
	return cp, err
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
