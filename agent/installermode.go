package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/posagent/posagent/agent/config"
	"github.com/posagent/posagent/agent/installer"
	"github.com/posagent/posagent/agent/installer/ui"
	"github.com/posagent/posagent/agent/store"
	"github.com/posagent/posagent/drivers/keypad"
	"github.com/posagent/posagent/provisioning"
)

// useInstaller says whether the install runs behind the installer's menu:
// always with a real keypad, and in a demo driven by a key-script file. A
// sim keypad with an inline script (tests, crash campaigns) drives the flow
// directly.
func useInstaller(cfg *config.Config, o Options) bool {
	return cfg.Devices.Keypad != config.SimDevice || o.KeysFile != ""
}

// keySource is the installer's keypad and clock, and where the menu's
// screen is drawn. A key-script file runs on a virtual clock so its `wait
// 30s` lines pass at once and always at the same point of the script; real
// keypads run on the wall clock.
type keySource struct {
	keys    ui.Keypad
	clock   installer.Clock
	display io.Writer
	close   func() error
}

func openKeys(cfg *config.Config, o Options, log *slog.Logger) (*keySource, error) {
	if o.KeysFile != "" {
		text, err := os.ReadFile(o.KeysFile)
		if err != nil {
			return nil, fmt.Errorf("agent: key script: %w", err)
		}
		script, err := ui.ParseScript(string(text))
		if err != nil {
			return nil, fmt.Errorf("agent: key script %s: %w", o.KeysFile, err)
		}
		clock := installer.NewVirtualClock(time.Now())
		script.SetSleeper(clock)
		return &keySource{keys: script, clock: clock, display: o.Stdout, close: func() error { return nil }}, nil
	}
	// A stuck key is logged and read past: the other keys still work.
	keep := func(err error) bool {
		if errors.Is(err, keypad.ErrStuckKey) {
			log.Warn("keypad: stuck key", "err", err)
			return true
		}
		return false
	}
	src := &keySource{clock: installer.SystemClock{}, display: o.Stdout}
	switch cfg.Devices.Keypad {
	case "tty":
		restore, err := keypad.MakeRaw(int(os.Stdin.Fd()))
		if err != nil {
			// Not a terminal (a pipe): keys still arrive, line-buffered.
			log.Warn("keypad tty: not a terminal, reading stdin as it comes", "err", err)
			restore = func() error { return nil }
		}
		k := keypad.NewTTY(os.Stdin)
		src.keys = ui.DriverKeypad{D: k, Keep: keep}
		src.close = func() error { return errors.Join(k.Close(), restore()) }
	case "input":
		k, err := keypad.OpenInputEvents(cfg.Devices.KeypadInput)
		if err != nil {
			return nil, fmt.Errorf("agent: keypad: %w", err)
		}
		src.keys, src.close = ui.DriverKeypad{D: k, Keep: keep}, k.Close
	case "matrix":
		kc, err := cfg.Devices.KeypadMatrix.Driver()
		if err != nil {
			return nil, fmt.Errorf("agent: keypad: %w", err)
		}
		k, err := keypad.OpenHost(kc)
		if err != nil {
			return nil, fmt.Errorf("agent: keypad: %w", err)
		}
		src.keys, src.close = ui.DriverKeypad{D: k, Keep: keep}, k.Close
	default:
		return nil, fmt.Errorf("agent: keypad %q has no installer keys", cfg.Devices.Keypad)
	}
	return src, nil
}

// runInstaller runs the flow behind the installer's menu, read from and
// drawn on ks. flow is the flow the agent built; the
// installer supplies the confirmed MID/TID and the prompter of each run,
// which screen switches to.
func runInstaller(ctx context.Context, cfg *config.Config, ks *keySource, flow *provisioning.Flow,
	screen *switchPrompter, pins *pinSlot, log *slog.Logger) (provisioning.Checkpoint, error) {
	var indicator installer.Indicator
	if cfg.Devices.BuzzerPin != "" {
		b, err := keypad.OpenHostBuzzer(cfg.Devices.BuzzerPin, keypad.ActiveLow())
		if err != nil {
			// A dead buzzer must not stop an install.
			log.Warn("buzzer unavailable", "pin", cfg.Devices.BuzzerPin, "err", err)
		} else {
			indicator = b
		}
	}
	var last provisioning.Checkpoint
	in, err := installer.New(installer.Options{
		Config: installer.Config{
			PasswordHash: cfg.Installer.PasswordHash, MaxTries: cfg.Installer.MaxTries,
			Lockout: cfg.Installer.Lockout, IdleTimeout: cfg.Installer.IdleTimeout,
			SupervisorHash: cfg.Installer.SupervisorPasswordHash,
			Rows:           cfg.Devices.ScreenRows, Cols: cfg.Devices.ScreenCols, FunctionKey: ui.Key(cfg.Installer.FunctionKey),
		},
		Display:   &ui.Grid{W: ks.display, Rows: cfg.Devices.ScreenRows, Cols: cfg.Devices.ScreenCols, Prefix: "screen| "},
		Keys:      ks.keys,
		Clock:     ks.clock,
		Locks:     store.File{Path: filepath.Join(cfg.StateDir, "installer-lock.json")},
		IDs:       store.File{Path: filepath.Join(cfg.StateDir, "terminal-id.json")},
		Identity:  installer.Identity{MID: flow.Terminal.MID, TID: flow.Terminal.TID}, // wanted (see wantedIdentity)
		Banks:     cfg.Installer.BankNames(),
		Indicator: indicator,
		Log:       log,
		// The installer's numbers are flow.Terminal (OnIdentity starts the
		// agent again when they change); its prompter of each run is the
		// screen the flow's questions go to.
		Flow: func(ctx context.Context, _ installer.Identity, p provisioning.Prompter) error {
			screen.set(p)
			cp, err := flow.Run(ctx)
			last = cp
			return err
		},
		OnSkip: func(_ context.Context, s installer.Skip) {
			log.Warn("installer skipped a step", "step", s.Step, "code", s.Code, "reason", s.Reason)
		},
		// Reporting, tickets and commands run under flow.Terminal: other
		// numbers mean building them again (Run starts over).
		OnIdentity: func(_ context.Context, id installer.Identity) error {
			if id.MID != flow.Terminal.MID || id.TID != flow.Terminal.TID {
				return errNewIdentity
			}
			return nil
		},
	})
	if err != nil {
		return provisioning.Checkpoint{}, err
	}
	// The card asks for its online PIN on the installer's keypad: the flow,
	// which the card source runs in, is the installer's, so no other
	// reader takes the keys meanwhile.
	pins.set(in.PINPad())
	defer pins.set(nil)
	err = in.Run(ctx)
	if last.Step == "" {
		// The menu never reached the flow (locked out, scripted keys ran
		// out): report where the install stands, as the flow knows it.
		if cp, lerr := flow.Current(); lerr == nil {
			last = cp
		}
	}
	return last, err
}

// switchPrompter is the flow's screen: the plain console, or the
// installer's prompter of the run in progress. The flow is built once and
// never copied; what it talks to is switched here.
type switchPrompter struct {
	mu   sync.Mutex
	next provisioning.Prompter
}

func (s *switchPrompter) set(p provisioning.Prompter) { s.mu.Lock(); s.next = p; s.mu.Unlock() }

func (s *switchPrompter) get() provisioning.Prompter {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.next
}

// Show draws on the current screen.
func (s *switchPrompter) Show(ctx context.Context, sc provisioning.Screen) error {
	return s.get().Show(ctx, sc)
}

// Ask asks on the current screen.
func (s *switchPrompter) Ask(ctx context.Context, sc provisioning.Screen, options ...provisioning.Option) (string, error) {
	return s.get().Ask(ctx, sc, options...)
}
