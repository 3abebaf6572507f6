package agent

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/posagent/posagent/agent/acquirer"
	"github.com/posagent/posagent/agent/card/emv"
	"github.com/posagent/posagent/agent/card/swipe"
	"github.com/posagent/posagent/agent/central/trust"
	"github.com/posagent/posagent/agent/config"
	"github.com/posagent/posagent/agent/receipt"
	"github.com/posagent/posagent/drivers/cardreader"
	"github.com/posagent/posagent/drivers/cardreader/pcsc"
	"github.com/posagent/posagent/drivers/magstripe"
	"github.com/posagent/posagent/drivers/printer"
	"github.com/posagent/posagent/drivers/serialport"
	"github.com/posagent/posagent/provisioning"
)

// KeyFile is the terminal's key store inside the state dir (mode 0600).
const KeyFile = "keys.json"

// TerminalKeyFile is the terminal's RSA private key inside the state dir
// (PEM, mode 0600), made on the first start with a profile that downloads
// its TMK (acquirer.FileTerminalKey); a secure element replaces it.
const TerminalKeyFile = "terminal-key.pem"

// ErrNoTMK is returned at start when a real acquirer is configured but no
// terminal master key was ever injected: the sign-on could only fail.
var ErrNoTMK = errors.New("agent: no terminal master key injected (posctl keys inject --state-dir DIR --kcv KCV)")

// devices are the peripherals and the host a run uses, and what closes them.
type devices struct {
	card provisioning.CardSource
	// pins is the chip source's PIN pad slot: the installer's keypad when
	// there is one (runInstaller fills it), else empty.
	pins    *pinSlot
	host    provisioning.Host
	printer provisioning.Printer
	// keys is the terminal's key store: keys.json with the real host link,
	// the demo's public key with the sim. The settlement card is checked
	// with it (acquirer.Accounts).
	keys acquirer.KeyStore
	// printed counts slip copies, for Result; only the simulated printer
	// keeps count.
	printed func() int
	closers []io.Closer
}

func (d *devices) Close() error {
	var errs []error
	for i := len(d.closers) - 1; i >= 0; i-- {
		errs = append(errs, d.closers[i].Close())
	}
	return errors.Join(errs...)
}

// openDevices builds each device from its backend in the config. A real
// device that is not there yet (pcscd not running, USB-serial adapter
// unplugged) is not an error here: the drivers wait for it, and the flow's
// step shows the installer what to fix.
//
// sim is the run's simulator, for the backends the config names "sim";
// checkSimulated has refused those already when the build has none. floor,
// when central's trust is on, is raised by the host's time over an
// authenticated link.
// clock is the terminal's clock, which the host link places the host's
// MMDD in a year by.
func openDevices(ctx context.Context, cfg *config.Config, o Options, sim simulator, floor *trust.Floor, clock provisioning.Clock, log *slog.Logger) (_ *devices, err error) {
	d := &devices{pins: &pinSlot{}}
	defer func() {
		if err != nil {
			d.Close()
		}
	}()
	if err := d.openCard(ctx, cfg, sim, log); err != nil {
		return nil, err
	}
	if err := d.openHost(cfg, sim, floor, clock, log); err != nil {
		return nil, err
	}
	if err := d.openPrinter(ctx, cfg, o, sim); err != nil {
		return nil, err
	}
	return d, nil
}

// openCard is the chip reader, and the magstripe reader beside it when the
// config has one.
func (d *devices) openCard(ctx context.Context, cfg *config.Config, sim simulator, log *slog.Logger) error {
	switch cfg.Devices.CardReader {
	case "pcsc":
		svc := pcsc.New()
		if _, err := svc.Init(); err != nil {
			// Degraded, not fatal: pcscd may come up after us.
			log.Warn("pcsc not ready yet; waiting for it at the first card read", "err", err)
		}
		d.closers = append(d.closers, svc)
		revoked, err := loadRevocations(cfg.Host.CARevocationFile)
		if err != nil {
			return err
		}
		d.card = &emv.Source{
			Reader: svc, ReaderName: cfg.Devices.PCSCReader, ContactlessReader: cfg.Devices.PCSCContactlessReader, Log: log,
			Terminal: emv.Terminal{SerialNumber: ifdSerial(cfg.Terminal.Serial), Revoked: revoked},
			PINPad:   d.pins,
		}
	default:
		cards := cfg.Sim.Cards
		if len(cards) == 0 {
			cards = []string{cfg.Sim.Card}
		}
		card, err := sim.Card(cards)
		if err != nil {
			return err
		}
		d.card = card
	}
	if cfg.Devices.Magstripe != "serial" {
		return nil
	}
	framing, err := magstripe.FramingByName(cfg.Devices.MagstripeFraming)
	if err != nil {
		return fmt.Errorf("agent: %w", err)
	}
	port, err := serialport.Open(ctx, serialLine(cfg.Devices.MagstripeLine), serialport.Options{Lazy: true})
	if err != nil {
		return fmt.Errorf("agent: magstripe line: %w", err)
	}
	d.closers = append(d.closers, port)
	sw := swipe.New(port, swipe.Config{Framing: framing, Log: log})
	// Insert or swipe, whichever comes first; a chip that fails on its own
	// (mute, wrong answers, no common application) allows the fallback
	// swipe UnionPay permits, a card pulled out does not.
	d.card = &swipe.Either{
		Chip: d.card, Swipe: sw,
		ChipFailed: func(err error) bool {
			return errors.Is(err, cardreader.ErrCardMute) || errors.Is(err, cardreader.ErrBadResponse) ||
				errors.Is(err, emv.ErrNoApplication)
		},
		Notify: func(purpose string, err error) {
			log.Warn("card refused; waiting for the next insert or swipe", "purpose", purpose, "err", err)
		},
	}
	return nil
}

// openHost is the acquirer link and the key store it signs on with.
func (d *devices) openHost(cfg *config.Config, sim simulator, floor *trust.Floor, clock provisioning.Clock, log *slog.Logger) error {
	if cfg.Host.Address == config.SimDevice {
		host, keys, closer, err := sim.Host(filepath.Join(cfg.StateDir, "simhost-ledger.jsonl"))
		if err != nil {
			return err
		}
		d.closers = append(d.closers, closer)
		d.host, d.keys = host, keys
		return nil
	}
	ks := &acquirer.FileKeyStore{Path: filepath.Join(cfg.StateDir, KeyFile)}
	var hostTime func(time.Time)
	if floor != nil {
		hostTime = func(t time.Time) {
			if err := floor.Advance(t); err != nil {
				log.Warn("time floor", "err", err)
			}
		}
	}
	host, err := openAcquirer(cfg, ks, hostTime, clock.Now, log)
	if err != nil {
		return err
	}
	d.host, d.keys = host, ks
	return nil
}

// openPrinter is the receipt printer.
func (d *devices) openPrinter(ctx context.Context, cfg *config.Config, o Options, sim simulator) error {
	if cfg.Devices.Printer == "serial" {
		port, err := serialport.Open(ctx, serialLine(cfg.Devices.PrinterLine), serialport.Options{Lazy: true})
		if err != nil {
			return fmt.Errorf("agent: printer line: %w", err)
		}
		d.closers = append(d.closers, port)
		drv := printer.New(port, printer.Options{Baud: cfg.Devices.PrinterLine.Baud})
		d.printer = &receipt.Printer{Driver: drv, Width: cfg.Devices.PrinterWidth}
		d.printed = func() int { return 0 }
		return nil
	}
	dir := o.SlipDir
	if dir == "" {
		dir = filepath.Join(cfg.StateDir, "slips")
	}
	d.printer, d.printed = sim.Printer(dir, cfg.Devices.PrinterWidth)
	return nil
}

// openAcquirer is the real host link. Unless the profile downloads the TMK
// (acquirer.TMKRSA, with the terminal key of TerminalKeyFile), the TMK must
// already be in the key store: key injection is a separate, deliberate act
// (posctl keys inject), never a config value.
func openAcquirer(cfg *config.Config, ks *acquirer.FileKeyStore, hostTime func(time.Time), now func() time.Time, log *slog.Logger) (*acquirer.Client, error) {
	// Validate accepted only a built-in name.
	profile, ok := acquirer.LookupProfile(cfg.Host.Profile)
	if !ok {
		return nil, fmt.Errorf("agent: host.profile: no built-in profile %q", cfg.Host.Profile)
	}
	keys, err := ks.LoadKeys()
	keys.Wipe() // the client loads its own copy
	remote := profile.RemoteTMK != acquirer.TMKNone
	switch {
	case errors.Is(err, acquirer.ErrNoKeys) && !remote:
		return nil, ErrNoTMK
	case errors.Is(err, acquirer.ErrNoKeys):
		// The flow downloads it before the first sign-on.
	case err != nil:
		return nil, fmt.Errorf("agent: key store: %w", err)
	case len(keys.TMK) == 0 && !remote:
		return nil, ErrNoTMK
	}
	var tk acquirer.TerminalKey
	if remote {
		ftk, err := acquirer.OpenFileTerminalKey(filepath.Join(cfg.StateDir, TerminalKeyFile))
		if err != nil {
			return nil, fmt.Errorf("agent: terminal key: %w", err)
		}
		tk = ftk
	}
	var tpdu acquirer.TPDU
	var header acquirer.Header
	// Validate checked both are hex of the right length.
	if _, err := hex.Decode(tpdu[:], []byte(cfg.Host.TPDU)); err != nil {
		return nil, fmt.Errorf("agent: host.tpdu: %w", err)
	}
	if _, err := hex.Decode(header[:], []byte(cfg.Host.Header)); err != nil {
		return nil, fmt.Errorf("agent: host.header: %w", err)
	}
	tlsCfg, err := hostTLS(cfg.Host)
	if err != nil {
		return nil, err
	}
	return acquirer.NewClient(acquirer.Config{
		Addr: cfg.Host.Address, TPDU: tpdu, Header: header, Profile: profile,
		KeyMode: acquirer.KeyMode(cfg.Host.KeyMode), MAC: acquirer.MACAlgorithm(cfg.Host.MAC), MACFullKey: cfg.Host.MACFullKey,
		NoTDK: cfg.Host.NoTDK, TLS: tlsCfg, HostTime: hostTime, Now: now, TerminalKey: tk,
		ExchangeTimeout: cfg.Host.Timeout, ReadTimeout: cfg.Host.Timeout,
		Log: log,
	}, ks)
}

// hostTLS is the host link's TLS with the acquirer's CA pinned, or nil.
func hostTLS(h config.Host) (*tls.Config, error) {
	if h.TLSCAFile == "" {
		return nil, nil
	}
	pem, err := os.ReadFile(h.TLSCAFile)
	if err != nil {
		return nil, fmt.Errorf("agent: host.tls_ca_file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("agent: host.tls_ca_file: no PEM certificate in %s", h.TLSCAFile)
	}
	name := h.TLSServerName
	if name == "" {
		name, _, _ = net.SplitHostPort(h.Address)
	}
	return &tls.Config{RootCAs: pool, ServerName: name, MinVersion: tls.VersionTLS12}, nil
}

func serialLine(l config.SerialLine) serialport.Config {
	parity := map[string]serialport.Parity{
		"none": serialport.ParityNone, "odd": serialport.ParityOdd, "even": serialport.ParityEven,
		"mark": serialport.ParityMark, "space": serialport.ParitySpace,
	}[l.Parity]
	return serialport.Config{Device: l.Device, Baud: l.Baud, DataBits: l.DataBits, Parity: parity, StopBits: l.StopBits}
}

// ifdSerial is 9F1E, exactly 8 characters: the device serial's last 8.
func ifdSerial(s string) string {
	if len(s) > 8 {
		return s[len(s)-8:]
	}
	return fmt.Sprintf("%-8s", s)
}
