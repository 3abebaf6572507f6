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
	"sync"
	"time"

	"github.com/posagent/posagent/agent/acquirer"
	"github.com/posagent/posagent/agent/card/emv"
	"github.com/posagent/posagent/agent/card/swipe"
	"github.com/posagent/posagent/agent/central/trust"
	"github.com/posagent/posagent/agent/config"
	"github.com/posagent/posagent/agent/receipt"
	"github.com/posagent/posagent/agent/sim/inproc"
	"github.com/posagent/posagent/drivers/cardreader"
	"github.com/posagent/posagent/drivers/cardreader/pcsc"
	"github.com/posagent/posagent/drivers/magstripe"
	"github.com/posagent/posagent/drivers/printer"
	"github.com/posagent/posagent/drivers/serialport"
	"github.com/posagent/posagent/provisioning"
	"github.com/posagent/posagent/provisioning/pan"
)

// KeyFile is the terminal's key store inside the state dir (mode 0600).
const KeyFile = "keys.json"

// ErrNoTMK is returned at start when a real acquirer is configured but no
// terminal master key was ever injected: the sign-on could only fail.
var ErrNoTMK = errors.New("agent: no terminal master key injected (posctl keys inject --state-dir DIR --kcv KCV)")

// devices are the peripherals and the host a run uses, and what closes them.
type devices struct {
	card    provisioning.CardSource
	host    provisioning.Host
	printer provisioning.Printer
	// keys is the terminal's key store: keys.json with the real host link,
	// the demo's public key with the sim. The settlement card is checked
	// with it (flowAccounts).
	keys acquirer.KeyStore
	// printed counts slip copies, for Result; only the simulated printer
	// keeps count.
	printed func() int
	// hostTime takes the host's trusted time to the time floor, once
	// reporting has opened one.
	hostTime timeSink
	closers  []io.Closer
}

// timeSink passes trusted times to a trust.Floor set later (the floor is
// opened with central's keys, after the devices).
type timeSink struct {
	mu    sync.Mutex
	floor *trust.Floor
	log   *slog.Logger
}

func (s *timeSink) set(f *trust.Floor) { s.mu.Lock(); s.floor = f; s.mu.Unlock() }

func (s *timeSink) advance(t time.Time) {
	s.mu.Lock()
	f := s.floor
	s.mu.Unlock()
	if f == nil {
		return
	}
	if err := f.Advance(t); err != nil && s.log != nil {
		s.log.Warn("time floor", "err", err)
	}
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
func openDevices(ctx context.Context, cfg *config.Config, o Options, pauses *inproc.Pauses, log *slog.Logger) (_ *devices, err error) {
	d := &devices{hostTime: timeSink{log: log}}
	defer func() {
		if err != nil {
			d.Close()
		}
	}()

	switch cfg.Devices.CardReader {
	case "pcsc":
		svc := pcsc.New()
		if _, err := svc.Init(); err != nil {
			// Degraded, not fatal: pcscd may come up after us.
			log.Warn("pcsc not ready yet; waiting for it at the first card read", "err", err)
		}
		d.closers = append(d.closers, svc)
		d.card = &emv.Source{
			Reader: svc, ReaderName: cfg.Devices.PCSCReader, Log: log,
			Terminal: emv.Terminal{SerialNumber: ifdSerial(cfg.Terminal.Serial)},
		}
	default:
		cards := cfg.Sim.Cards
		if len(cards) == 0 {
			cards = []string{cfg.Sim.Card}
		}
		card, err := inproc.NewCard(cards...)
		if err != nil {
			return nil, err
		}
		card.Pauses = pauses
		d.card = card
	}

	if cfg.Devices.Magstripe == "serial" {
		framing, err := magstripe.FramingByName(cfg.Devices.MagstripeFraming)
		if err != nil {
			return nil, fmt.Errorf("agent: %w", err)
		}
		port, err := serialport.Open(ctx, serialLine(cfg.Devices.MagstripeLine), serialport.Options{Lazy: true})
		if err != nil {
			return nil, fmt.Errorf("agent: magstripe line: %w", err)
		}
		d.closers = append(d.closers, port)
		sw := swipe.New(port, swipe.Config{Framing: framing, Log: log})
		// Insert or swipe, whichever comes first; a chip that fails on its
		// own (mute, wrong answers, no common application) allows the
		// fallback swipe UnionPay permits, a card pulled out does not.
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
	}

	if cfg.Host.Address == "sim" {
		host, err := inproc.OpenHost(filepath.Join(cfg.StateDir, "simhost-ledger.jsonl"), provisioning.SystemClock{})
		if err != nil {
			return nil, err
		}
		d.closers = append(d.closers, host)
		host.Pauses = pauses
		d.host = host
		d.keys = inproc.KeyStore()
	} else {
		ks := &acquirer.FileKeyStore{Path: filepath.Join(cfg.StateDir, KeyFile)}
		host, err := openAcquirer(cfg, ks, d.hostTime.advance, log)
		if err != nil {
			return nil, err
		}
		d.host = host
		d.keys = ks
	}

	switch cfg.Devices.Printer {
	case "serial":
		port, err := serialport.Open(ctx, serialLine(cfg.Devices.PrinterLine), serialport.Options{Lazy: true})
		if err != nil {
			return nil, fmt.Errorf("agent: printer line: %w", err)
		}
		d.closers = append(d.closers, port)
		drv := printer.New(port, printer.Options{Baud: cfg.Devices.PrinterLine.Baud})
		d.printer = &receipt.Printer{Driver: drv, Width: cfg.Devices.PrinterWidth}
		d.printed = func() int { return 0 }
	default:
		dir := o.SlipDir
		if dir == "" {
			dir = filepath.Join(cfg.StateDir, "slips")
		}
		p := &inproc.Printer{Out: o.Stdout, Dir: dir, Width: cfg.Devices.PrinterWidth, Pauses: pauses}
		if o.SlipPictures {
			pics, err := slipPictures(cfg.Devices.PrinterWidth)
			if err != nil {
				// Not fatal: the slips are still printed, as text.
				fmt.Fprintf(o.Stdout, "slip| %v\n", err)
			}
			p.Pictures = pics
		}
		d.printer = p
		d.printed = p.Printed
	}
	return d, nil
}

// openAcquirer is the real host link. The TMK must already be in the key
// store: key injection is a separate, deliberate act (posctl keys inject),
// never a config value.
func openAcquirer(cfg *config.Config, ks *acquirer.FileKeyStore, hostTime func(time.Time), log *slog.Logger) (*acquirer.Client, error) {
	keys, err := ks.LoadKeys()
	keys.Wipe() // the client loads its own copy
	switch {
	case errors.Is(err, acquirer.ErrNoKeys):
		return nil, ErrNoTMK
	case err != nil:
		return nil, fmt.Errorf("agent: key store: %w", err)
	case len(keys.TMK) == 0:
		return nil, ErrNoTMK
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
		Addr: cfg.Host.Address, TPDU: tpdu, Header: header,
		KeyMode: acquirer.KeyMode(cfg.Host.KeyMode), MAC: acquirer.MACAlgorithm(cfg.Host.MAC), MACFullKey: cfg.Host.MACFullKey,
		NoTDK: cfg.Host.NoTDK, TLS: tlsCfg, HostTime: hostTime,
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

// flowAccounts checks the settlement card with the key store for the
// terminal the flow runs as: the installer's menu may confirm another TID
// than the config's, and the acquirer keyed the check value to that one.
type flowAccounts struct {
	flow *provisioning.Flow
	keys acquirer.KeyStore
}

func (a flowAccounts) MatchAccount(p pan.PAN, check string) (bool, error) {
	return acquirer.Accounts{Keys: a.keys, TID: a.flow.Terminal.TID}.MatchAccount(p, check)
}

// ifdSerial is 9F1E, exactly 8 characters: the device serial's last 8.
func ifdSerial(s string) string {
	if len(s) > 8 {
		return s[len(s)-8:]
	}
	return fmt.Sprintf("%-8s", s)
}
