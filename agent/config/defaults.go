package config

import (
	"time"

	"github.com/posagent/posagent/agent/acquirer"
)

// Defaults that Parse fills in for keys left out or empty.
const (
	DefaultTPDU      = "6000030000"
	DefaultHeader    = "603100000000"
	DefaultTimeout   = 30 * time.Second
	DefaultKeepalive = 30 * time.Second
	// DefaultReconnectMax caps the reconnect backoff (mqtt.reconnect_max).
	DefaultReconnectMax = time.Minute
	// DefaultConnectJitter spreads a fleet's first connections after a
	// regional power cut over 10 s (mqtt.connect_jitter).
	DefaultConnectJitter = 10 * time.Second
	// DefaultHeartbeat is mqtt.heartbeat's interval; central counts a
	// terminal silent after three missed beats.
	DefaultHeartbeat = 30 * time.Second
	DefaultAmount    = "0.01"
	DefaultSimCard   = "debit"
	DefaultMAC       = "unionpay-ecb"
	DefaultKeyMode   = "004"
	// DefaultProfile is host.profile's default, the common codes.
	DefaultProfile = acquirer.DefaultProfileName
	// DefaultPrinterWidth is 58 mm paper's 32 characters per line.
	DefaultPrinterWidth = 32
	// A common POS display: 8 lines of 24 half-width characters.
	DefaultScreenRows = 8
	DefaultScreenCols = 24
	// DemoPasswordHash is the demo's installer password, 2468. It is public:
	// a real terminal's config must carry its own (posctl hash-password).
	DemoPasswordHash = "pbkdf2-sha256$100000$cG9zYWdlbnQtZGVtby0wMQ$1dXI555PfRC7V4ZsrKD6++gtcjJcmNRBgzEkJ0peqrE"
	// SimDevice is the simulated backend of every device, the default.
	SimDevice = "sim"
)

// defaultAcceptedBINs is a fresh slice each time so no caller can change the
// default for others.
func defaultAcceptedBINs() []string { return []string{"62"} }

// DefaultMaxTestAmount is central.max_test_amount's default: 1.00 CNY.
const DefaultMaxTestAmount = "1.00"

// defaultLine is 9600 8N1, what receipt printers and swipe readers ship with.
var defaultLine = SerialLine{Baud: 9600, DataBits: 8, Parity: "none", StopBits: 1}

// applyDefaults fills keys left out or empty. A present but empty
// accepted_bins list is left alone so Validate rejects it: "accept nothing"
// is a mistake, not a request for the default.
func (c *Config) applyDefaults() {
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	def(&c.Host.TPDU, DefaultTPDU)
	def(&c.Host.Header, DefaultHeader)
	if c.Host.Timeout == 0 {
		c.Host.Timeout = DefaultTimeout
	}
	if c.MQTT.Keepalive == 0 {
		c.MQTT.Keepalive = DefaultKeepalive
	}
	if c.MQTT.ReconnectMax == 0 {
		c.MQTT.ReconnectMax = DefaultReconnectMax
	}
	if c.MQTT.Heartbeat == 0 {
		c.MQTT.Heartbeat = DefaultHeartbeat
	}
	// As with the keypad matrix, "[]" means not set: the example file
	// documents the key with it.
	if len(c.MQTT.URLs) == 0 {
		c.MQTT.URLs = nil
	}
	def(&c.Host.MAC, DefaultMAC)
	def(&c.Host.Profile, DefaultProfile)
	// The key mode follows the profile unless named; an unknown profile
	// leaves it empty, and Validate reports the profile.
	if p, ok := acquirer.LookupProfile(c.Host.Profile); ok {
		def(&c.Host.KeyMode, string(p.KeyMode))
	}
	// "[]" and no key mean the same: the default table.
	if len(c.Host.ApprovalCodes) == 0 {
		c.Host.ApprovalCodes = nil
	}
	if len(c.Host.DeclineCodes) == 0 {
		c.Host.DeclineCodes = nil
	}
	def(&c.Devices.CardReader, SimDevice)
	def(&c.Devices.Printer, SimDevice)
	def(&c.Devices.Magstripe, "none")
	def(&c.Devices.MagstripeFraming, "magtek")
	// An empty list here means "not set" (unlike accepted_bins): the
	// example file documents the keys with [].
	for _, l := range []*[]string{&c.Devices.KeypadMatrix.Rows, &c.Devices.KeypadMatrix.Cols, &c.Devices.KeypadMatrix.Keys} {
		if len(*l) == 0 {
			*l = nil
		}
	}
	if c.Devices.ScreenRows == 0 {
		c.Devices.ScreenRows = DefaultScreenRows
	}
	if c.Devices.ScreenCols == 0 {
		c.Devices.ScreenCols = DefaultScreenCols
	}
	if c.Installer.MaxTries == 0 {
		c.Installer.MaxTries = 3
	}
	if c.Installer.Lockout == 0 {
		c.Installer.Lockout = 15 * time.Minute
	}
	if c.Installer.IdleTimeout == 0 {
		c.Installer.IdleTimeout = time.Minute
	}
	def(&c.Installer.FunctionKey, "F1")
	if c.Devices.PrinterWidth == 0 {
		c.Devices.PrinterWidth = DefaultPrinterWidth
	}
	for _, l := range []*SerialLine{&c.Devices.PrinterLine, &c.Devices.MagstripeLine} {
		if l.Baud == 0 {
			l.Baud = 9600
		}
		if l.DataBits == 0 {
			l.DataBits = 8
		}
		def(&l.Parity, "none")
		if l.StopBits == 0 {
			l.StopBits = 1
		}
	}
	def(&c.Devices.Keypad, SimDevice)
	def(&c.Devices.Screen, SimDevice)
	def(&c.TestSale.Amount, DefaultAmount)
	def(&c.Central.MaxTestAmount, DefaultMaxTestAmount)
	if len(c.Central.Keys) == 0 {
		c.Central.Keys = nil
	}
	if len(c.Central.Revoked) == 0 {
		c.Central.Revoked = nil
	}
	if c.Binding.AcceptedBINs == nil {
		c.Binding.AcceptedBINs = defaultAcceptedBINs()
	}
	def(&c.Sim.Card, DefaultSimCard)
}

// Default is a complete, valid configuration for the simulated demo: the demo
// merchant, the "sim" host and devices, and the settlement account check of
// the simulated debit card 6222021234567890128. MQTT.URL and StateDir are empty
// for the demo to fill, and MQTT.ConnectJitter is 0 (connect at once); TestSale.Minor and Central.MaxTestMinor are derived
// already. Each call returns a new value the caller may change.
func Default() *Config {
	c := &Config{
		Terminal: Terminal{MID: "898310048990001", TID: "10000001", Serial: "PA-DEMO-0001"},
		Merchant: Merchant{
			Name:        "上海示例便利店",
			LegalPerson: "ZHANG SAN",
			// The check value of "6222021234567890128" under the demo's
			// public TMK (agent/sim/inproc.DemoTMK) and TID 10000001; config_test
			// recomputes it.
			AccountCheck: "16669b73825af85f9eaa5dbc759d4aa358bd1e1a79d1d33559b52fadce61d318",
			CardType:     "debit",
		},
		Host: Host{Address: "sim", TPDU: DefaultTPDU, Header: DefaultHeader, Timeout: DefaultTimeout,
			MAC: DefaultMAC, Profile: DefaultProfile, KeyMode: DefaultKeyMode},
		// The demo connects at once (no connect jitter): it is one
		// terminal, and its broker is in-process.
		MQTT: MQTT{Keepalive: DefaultKeepalive, ReconnectMax: DefaultReconnectMax, Heartbeat: DefaultHeartbeat},
		Devices: Devices{
			CardReader: SimDevice, Printer: SimDevice, PrinterWidth: DefaultPrinterWidth,
			PrinterLine: defaultLine, Magstripe: "none", MagstripeLine: defaultLine, MagstripeFraming: "magtek",
			Keypad: SimDevice, Screen: SimDevice, ScreenRows: DefaultScreenRows, ScreenCols: DefaultScreenCols,
		},
		TestSale: TestSale{Amount: DefaultAmount},
		Central:  Central{MaxTestAmount: DefaultMaxTestAmount},
		Binding:  Binding{AcceptedBINs: defaultAcceptedBINs()},
		Installer: Installer{PasswordHash: DemoPasswordHash, MaxTries: 3, Lockout: 15 * time.Minute,
			IdleTimeout: time.Minute, FunctionKey: "F1",
			Banks: []string{"622202=中国工商银行 ICBC", "625094=示例银行 DEMO BANK"}},
		Sim: Sim{Card: DefaultSimCard},
	}
	c.derive()
	return c
}
