// Package config reads, defaults and validates the daemon's one configuration
// file (YAML).
//
// The file is strict: an unknown or misspelt key is an error, not a silently
// ignored line, because a typo in "accepted_bins" or "ca_file" would otherwise
// run a terminal with a setting the installer never meant. Every error is a
// *Error that names the offending key by its YAML path ("terminal.mid") and,
// when the key came from a file, its line. No error ever echoes a value: the
// file holds the MQTT password and the settlement account's check value, and
// errors end up in logs and on support tickets.
//
// Parse applies defaults and runs Validate; the daemon then calls
// ValidateForRun, which also insists on what only a real run needs (state_dir).
// Default returns the complete configuration of the simulated demo.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"gopkg.in/yaml.v3"

	"github.com/posagent/posagent/agent/central/trust"
	"github.com/posagent/posagent/agent/installer"
	"github.com/posagent/posagent/drivers/keypad"
	"github.com/posagent/posagent/drivers/magstripe"
)

// Config is the whole file. Field order is file order: Validate checks in this
// order so the first error reported is the first one the installer meets when
// reading the file top to bottom.
type Config struct {
	Terminal Terminal `yaml:"terminal"`
	Merchant Merchant `yaml:"merchant"`
	Host     Host     `yaml:"host"`
	MQTT     MQTT     `yaml:"mqtt"`
	Devices  Devices  `yaml:"devices"`
	// StateDir holds the checkpoint and keys. Validate accepts it empty so
	// Default (and the demo, which picks a temporary directory later) can be
	// validated; ValidateForRun requires it.
	StateDir  string    `yaml:"state_dir"`
	Installer Installer `yaml:"installer"`
	Central   Central   `yaml:"central"`
	TestSale  TestSale  `yaml:"test_sale"`
	Binding   Binding   `yaml:"binding"`
	Sim       Sim       `yaml:"sim"`
}

// Terminal is the identity the acquirer issued for this device.
type Terminal struct {
	MID    string `yaml:"mid"`    // merchant ID, ISO 8583 field 42: exactly 15 digits
	TID    string `yaml:"tid"`    // terminal ID, ISO 8583 field 41: exactly 8 digits
	Serial string `yaml:"serial"` // device serial: 1 to 32 printable ASCII, no spaces
}

// Merchant is the merchant's registration as the acquirer holds it. The
// settlement account is known only by a keyed check value, so the file never
// holds a card number nor anything a guessed number can be tested against:
// binding checks the card presented with the terminal's key store.
type Merchant struct {
	Name        string `yaml:"name"`         // shop name, as printed on slips
	LegalPerson string `yaml:"legal_person"` // the registered legal person
	AccountName string `yaml:"account_name"` // name on the settlement account, when it differs (optional)
	// AccountCheck is HMAC-SHA256 over the settlement card's digits under the
	// account-check key derived from the TMK and the TID (agent/acquirer,
	// AccountCheckKey): 64 lowercase hex characters, computed by the acquirer
	// or with posctl account-check.
	AccountCheck string `yaml:"account_check"`
	CardType     string `yaml:"card_type"` // "debit" or "credit", as provisioning.Debit/Credit
}

// removedKeys are keys earlier versions read, refused with what replaced
// them rather than as merely unknown.
var removedKeys = map[string]string{
	"merchant.account_hash": accountHashRemoved,
	"merchant.account_salt": accountHashRemoved,
}

const accountHashRemoved = "no longer read: an unkeyed hash of the card number can be reversed from the masked card; " +
	"use merchant.account_check, the keyed check value from the acquirer (posctl account-check)"

// Host is the acquirer host link (UnionPay ISO 8583 over TCP).
type Host struct {
	// Address is "sim" for the in-process host simulator, or host:port.
	Address string `yaml:"address"`
	// TPDU is the 5-byte transport header in front of every message, 10 hex
	// digits. Default "6000030000".
	TPDU string `yaml:"tpdu"`
	// Header is the 6-byte UnionPay message header, 12 hex digits. Default
	// "603100000000".
	Header string `yaml:"header"`
	// Timeout bounds one request/response exchange. Default 30s, 1s to 5m.
	Timeout time.Duration `yaml:"timeout"`
	// MAC is the field-64 algorithm the acquirer uses: "unionpay-ecb"
	// (default, the XOR-then-ECB MAC of UnionPay's POS spec) or "x9.19".
	MAC string `yaml:"mac"`
	// MACFullKey runs the MAC with the whole double-length MAK (3DES).
	MACFullKey bool `yaml:"mac_full_key"`
	// KeyMode is sign-on 60.3: "004" double-length working keys (default)
	// or "001" single-DES.
	KeyMode string `yaml:"key_mode"`
	// NoTDK says the acquirer sends no track data key in "004" mode. Without
	// it a sign-on answer without one is refused: the answer carries no MAC,
	// and a TDK cut off on the way would send every swiped track in clear.
	NoTDK bool `yaml:"no_tdk"`
	// TLSCAFile pins the acquirer's CA (PEM): the link runs over TLS and only
	// a host that CA signed is talked to. The link is then authenticated, and
	// a decline under the forgeable UnionPay ECB MAC is believed.
	TLSCAFile string `yaml:"tls_ca_file"`
	// TLSServerName is the name the host's certificate must carry; default
	// the host part of address.
	TLSServerName string `yaml:"tls_server_name"`
	// PublicLink says the link crosses a network the acquirer does not
	// control (the internet, a public 4G APN): TLS (tls_ca_file) is then
	// required.
	PublicLink bool `yaml:"public_link"`
	// ApprovalCodes and DeclineCodes are the acquirer's field-39 table:
	// which answers approve (the card is charged) and which are final
	// declines. Empty means the UnionPay table (provisioning.
	// DefaultResponseCodes); any other code leaves the message reversed.
	ApprovalCodes []string `yaml:"approval_codes"`
	DeclineCodes  []string `yaml:"decline_codes"`
}

// MQTT is where the daemon reports status. An empty URL turns reporting off,
// which is how a terminal without a broker still takes payments.
type MQTT struct {
	// URL is scheme://host:port with scheme tcp, mqtt (plain) or ssl, tls,
	// mqtts (TLS). It must not carry credentials: URLs get logged.
	URL      string `yaml:"url"`
	Username string `yaml:"username"`
	Password string `yaml:"password"` // never echoed by any error
	CAFile   string `yaml:"ca_file"`  // PEM CA bundle for the broker; TLS schemes only
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"` // client certificate and key: both or neither
	// Keepalive is the MQTT keepalive interval. Default 30s, 5s to 10m.
	Keepalive time.Duration `yaml:"keepalive"`
}

// Devices picks the backend of each peripheral: "sim" (the default) is the
// in-process simulation the demo runs on; the others are the terminal's real
// hardware.
type Devices struct {
	// CardReader is "sim" or "pcsc" (chip cards through pcscd).
	CardReader string `yaml:"card_reader"`
	// PCSCReader pins the chip reader by its PC/SC name; empty means the
	// reader the installer inserts the card into.
	PCSCReader string `yaml:"pcsc_reader"`
	// Printer is "sim" or "serial" (ESC/POS on PrinterLine).
	Printer     string     `yaml:"printer"`
	PrinterLine SerialLine `yaml:"printer_line"`
	// PrinterWidth is characters per line of normal text: 32 on 58 mm
	// paper (default), 48 on 80 mm.
	PrinterWidth int `yaml:"printer_width"`
	// Magstripe is "none" (default: chip only) or "serial" (a reader on
	// MagstripeLine, for swiped cards and chip fallback).
	Magstripe     string     `yaml:"magstripe"`
	MagstripeLine SerialLine `yaml:"magstripe_line"`
	// MagstripeFraming is how the reader frames a swipe: "magtek" (default:
	// STX … ETX with a status byte) or "lines" / "lines:2,3" (one track per
	// line, in the order given).
	MagstripeFraming string `yaml:"magstripe_framing"`
	// Keypad is "sim" (a key script), "tty" (the console, for development),
	// "input" (a Linux input-event device, KeypadInput) or "matrix" (a GPIO
	// matrix, KeypadMatrix). Every backend but sim goes through the
	// installer's menu and password.
	Keypad       string       `yaml:"keypad"`
	KeypadInput  string       `yaml:"keypad_input"`
	KeypadMatrix KeypadMatrix `yaml:"keypad_matrix"`
	// BuzzerPin is the GPIO of the key-click and result buzzer; "" for none.
	BuzzerPin string `yaml:"buzzer_pin"`
	// Screen is "sim": the text display drawn on stdout, ScreenRows x
	// ScreenCols characters (a Chinese character takes two).
	Screen     string `yaml:"screen"`
	ScreenRows int    `yaml:"screen_rows"`
	ScreenCols int    `yaml:"screen_cols"`
}

// KeypadMatrix is a keypad matrix on GPIO: the pins by periph.io name
// ("GPIO17"), and the key at each position, one string per row with the key
// names separated by spaces ("1 2 3 F1"; "-" for no key).
type KeypadMatrix struct {
	Rows        []string `yaml:"rows"`
	Cols        []string `yaml:"cols"`
	Keys        []string `yaml:"keys"`
	Orientation string   `yaml:"orientation"` // "rows" (default: rows driven, columns read) or "cols"
}

// Central is what the terminal takes from central over MQTT, signed with one
// of central's Ed25519 keys (agent/trust, docs/mqtt.md "Signed messages"):
// the install ticket and commands. Both are off by default; either needs a
// TLS mqtt.url and at least one key.
type Central struct {
	// Tickets makes the parameters step wait for central's signed install
	// ticket on pos/v1/{tid}/ticket and take the merchant record from it; the
	// merchant section may then be left out.
	Tickets bool `yaml:"tickets"`
	// Commands accepts central's signed commands on pos/v1/{tid}/cmd
	// (retry a step, report now, ...). Off, the terminal does not even
	// subscribe the topic.
	Commands bool `yaml:"commands"`
	// Keys are central's verification keys. A signed payload names its kid
	// and only that key is tried; rotation is listing the new key beside the
	// old one.
	Keys []CentralKey `yaml:"keys"`
	// Revoked are kids no longer trusted (a revoked kid must not also be
	// listed in Keys): their signatures are refused as revoked.
	Revoked []string `yaml:"revoked"`
	// MaxTestAmount caps the test sale a ticket may ask for, a decimal CNY
	// string like test_sale.amount. Default "1.00", at most "100.00".
	MaxTestAmount string `yaml:"max_test_amount"`
	// MaxTestMinor is MaxTestAmount in fen, filled by Validate.
	MaxTestMinor int64 `yaml:"-"`
}

// CentralKey is one of central's Ed25519 public keys and its key id.
type CentralKey struct {
	// KID is the key id signed payloads name: 1 to 32 characters of
	// A-Z a-z 0-9 . _ -.
	KID string `yaml:"kid"`
	// PublicKeyFile is the PEM public key (posctl ticket keygen writes one);
	// it must be readable at start.
	PublicKeyFile string `yaml:"public_key_file"`
}

// DefaultMaxTestAmount is central.max_test_amount's default: 1.00 CNY.
const DefaultMaxTestAmount = "1.00"

// On reports whether tickets or commands are on.
func (c Central) On() bool { return c.Tickets || c.Commands }

// KeyRing reads the key files and returns central's keys. Validate has
// checked them once; this reads them again for the run.
func (c Central) KeyRing() (*trust.KeyRing, error) {
	var keys []trust.Key
	for i, k := range c.Keys {
		pub, err := trust.LoadPublicKey(k.PublicKeyFile)
		if err != nil {
			return nil, &Error{Key: fmt.Sprintf("central.keys[%d].public_key_file", i), Msg: err.Error()}
		}
		keys = append(keys, trust.Key{ID: k.KID, Public: pub})
	}
	r, err := trust.NewKeyRing(keys, c.Revoked)
	if err != nil {
		return nil, &Error{Key: "central.keys", Msg: err.Error()}
	}
	return r, nil
}

// Installer configures the installer's menu at the terminal.
type Installer struct {
	// PasswordHash is the installer password as
	// "pbkdf2-sha256$ITER$SALT$HASH" (posctl hash-password makes one),
	// never the password itself. Required unless devices.keypad is sim.
	PasswordHash string `yaml:"password_hash"`
	// SupervisorPasswordHash is the supervisor's password, hashed the same
	// way: at the keypad it clears what only an operator may (a reversal
	// given up after the acquirer cancelled it by hand, a changed
	// identity). Optional: without it only central's signed command can.
	SupervisorPasswordHash string `yaml:"supervisor_password_hash"`
	// MaxTries wrong passwords lock install mode for Lockout. Defaults 3
	// and 15m.
	MaxTries int           `yaml:"max_tries"`
	Lockout  time.Duration `yaml:"lockout"`
	// IdleTimeout returns an idle menu or entry to the start screen,
	// keeping the install's checkpoint. Default 60s.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// FunctionKey enters install mode. Default F1.
	FunctionKey string `yaml:"function_key"`
	// Banks name the issuing bank on the card confirmation screen, as
	// "BIN=name" ("622202=工商银行 ICBC"); the longest matching BIN wins.
	Banks []string `yaml:"banks"`
}

// BankNames is Banks as a map from BIN to name.
func (in Installer) BankNames() map[string]string {
	m := make(map[string]string, len(in.Banks))
	for _, b := range in.Banks {
		bin, name, _ := strings.Cut(b, "=")
		m[bin] = strings.TrimSpace(name)
	}
	return m
}

// defaultLine is 9600 8N1, what receipt printers and swipe readers ship with.
var defaultLine = SerialLine{Baud: 9600, DataBits: 8, Parity: "none", StopBits: 1}

// SerialLine is a UART or USB-serial line.
type SerialLine struct {
	Device   string `yaml:"device"`    // e.g. /dev/ttyS1, /dev/ttyUSB0
	Baud     int    `yaml:"baud"`      // default 9600
	DataBits int    `yaml:"data_bits"` // 5 to 8, default 8
	Parity   string `yaml:"parity"`    // none (default), odd, even, mark, space
	StopBits int    `yaml:"stop_bits"` // 1 (default) or 2
}

// TestSale is the small sale provisioning runs to prove the host link.
type TestSale struct {
	// Amount is a decimal CNY string such as "0.01" (a string, so no float
	// rounding touches money). Default "0.01".
	Amount string `yaml:"amount"`
	// Minor is Amount in fen, filled by Validate; it is not read from the file.
	Minor int64 `yaml:"-"`
}

// Binding restricts which cards may become the settlement card.
type Binding struct {
	// AcceptedBINs are PAN prefixes (1 to 11 digits); a card must start with
	// one of them. Default ["62"], UnionPay's own range.
	AcceptedBINs []string `yaml:"accepted_bins"`
}

// Sim configures the simulated card reader, and the one test-bench switch.
type Sim struct {
	// Card is the profile of the simulated card. Default "debit".
	Card string `yaml:"card"`
	// Cards, when set, are profiles presented in turn, one per read, so a demo
	// can show a wrong card being rejected and the retry succeeding.
	Cards []string `yaml:"cards"`
	// ScriptedKeysWithRealHost lets devices.keypad be "sim" (a key script
	// that confirms the settlement card by itself) with a real acquirer
	// host. Test benches only: on a terminal it would bind whatever card is
	// inserted without an installer ever seeing it.
	ScriptedKeysWithRealHost bool `yaml:"scripted_keys_with_real_host"`
}

// Error is a problem with one key. Key is the YAML path ("terminal.mid",
// "binding.accepted_bins[1]"), empty for a problem with the file as a whole.
// Msg says what is wrong without repeating the value.
type Error struct {
	Key string
	Msg string
	// Line is the 1-based line in the file, when the error came from Parse
	// and the key was present in the file; 0 otherwise.
	Line int
}

// Error renders "config: terminal.mid: must be 15 digits", with "line N: "
// after "config: " when the line is known.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("config: ")
	if e.Line > 0 {
		fmt.Fprintf(&b, "line %d: ", e.Line)
	}
	if e.Key != "" {
		b.WriteString(e.Key)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Defaults that Parse fills in for keys left out or empty.
const (
	DefaultTPDU      = "6000030000"
	DefaultHeader    = "603100000000"
	DefaultTimeout   = 30 * time.Second
	DefaultKeepalive = 30 * time.Second
	DefaultAmount    = "0.01"
	DefaultSimCard   = "debit"
	DefaultMAC       = "unionpay-ecb"
	DefaultKeyMode   = "004"
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

// Load reads the file at path and Parses it. A file that cannot be read is an
// error naming the path (and wrapping the os error, so errors.Is(err,
// fs.ErrNotExist) works); any other failure is a *Error.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		// The *PathError already says "open <path>: ...".
		return nil, fmt.Errorf("config: %w", err)
	}
	return Parse(data)
}

// Parse decodes one YAML document strictly, applies defaults and Validates.
// Unknown keys, duplicate keys, wrong shapes (a list where a value belongs)
// and more than one document are errors. Every error is a *Error.
//
// Parse walks the YAML node tree itself instead of yaml.v3's Decode with
// KnownFields(true): Decode reports Go type names and a line but not the YAML
// path, and its type errors quote the offending value, which could be the
// password.
func Parse(data []byte) (*Config, error) {
	c := &Config{}
	d := &walker{lines: map[string]int{}}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	switch err := dec.Decode(&doc); {
	case errors.Is(err, io.EOF):
		// Empty or comments only: an empty config, which Validate rejects
		// key by key.
	case err != nil:
		return nil, syntaxError(err)
	default:
		if err := d.document(&doc, c); err != nil {
			return nil, err
		}
		var next yaml.Node
		switch err := dec.Decode(&next); {
		case errors.Is(err, io.EOF):
		case err != nil:
			return nil, syntaxError(err)
		default:
			return nil, &Error{Msg: "only one YAML document is allowed", Line: next.Line}
		}
	}
	c.applyDefaults()
	if err := c.Validate(); err != nil {
		var ce *Error
		if errors.As(err, &ce) && ce.Line == 0 {
			// A required key that is missing is located at the nearest
			// section that is there, where the installer has to add it.
			for k := ce.Key; k != "" && ce.Line == 0; k = parentKey(k) {
				ce.Line = d.lines[k]
			}
		}
		return nil, err
	}
	return c, nil
}

// yamlLine matches yaml.v3's "yaml: line 7: msg" syntax errors.
var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// syntaxError turns a yaml.v3 error into a *Error carrying its line. yaml.v3
// omits the line when the problem is on the first line; its line numbers
// point at the construct being parsed and can be one line early.
func syntaxError(err error) *Error {
	msg := err.Error()
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		n, _ := strconv.Atoi(m[1])
		return &Error{Msg: m[2], Line: n}
	}
	return &Error{Msg: strings.TrimPrefix(msg, "yaml: ")}
}

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
	def(&c.Host.MAC, DefaultMAC)
	def(&c.Host.KeyMode, DefaultKeyMode)
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
// for the demo to fill; TestSale.Minor is already set. Each call returns a new
// value the caller may change.
func Default() *Config {
	return &Config{
		Terminal: Terminal{MID: "898310048990001", TID: "10000001", Serial: "PA-DEMO-0001"},
		Merchant: Merchant{
			Name:        "上海示例便利店",
			LegalPerson: "ZHANG SAN",
			// The check value of "6222021234567890128" under the demo's
			// public TMK (agent/sim.DemoTMK) and TID 10000001; config_test
			// recomputes it.
			AccountCheck: "16669b73825af85f9eaa5dbc759d4aa358bd1e1a79d1d33559b52fadce61d318",
			CardType:     "debit",
		},
		Host: Host{Address: "sim", TPDU: DefaultTPDU, Header: DefaultHeader, Timeout: DefaultTimeout,
			MAC: DefaultMAC, KeyMode: DefaultKeyMode},
		MQTT: MQTT{Keepalive: DefaultKeepalive},
		Devices: Devices{
			CardReader: SimDevice, Printer: SimDevice, PrinterWidth: DefaultPrinterWidth,
			PrinterLine: defaultLine, Magstripe: "none", MagstripeLine: defaultLine, MagstripeFraming: "magtek",
			Keypad: SimDevice, Screen: SimDevice, ScreenRows: DefaultScreenRows, ScreenCols: DefaultScreenCols,
		},
		TestSale: TestSale{Amount: DefaultAmount, Minor: 1},
		Central:  Central{MaxTestAmount: DefaultMaxTestAmount, MaxTestMinor: 100},
		Binding:  Binding{AcceptedBINs: defaultAcceptedBINs()},
		Installer: Installer{PasswordHash: DemoPasswordHash, MaxTries: 3, Lockout: 15 * time.Minute,
			IdleTimeout: time.Minute, FunctionKey: "F1",
			Banks: []string{"622202=中国工商银行 ICBC", "625094=示例银行 DEMO BANK"}},
		Sim: Sim{Card: DefaultSimCard},
	}
}

// ValidateForRun is Validate plus what only a running daemon needs: a
// state_dir for the checkpoint and keys. The daemon calls it after Load;
// Parse and Default do not require it so the demo can fill it in later.
func (c *Config) ValidateForRun() error {
	if err := c.Validate(); err != nil {
		return err
	}
	if strings.TrimSpace(c.StateDir) == "" {
		return &Error{Key: "state_dir", Msg: "required: the directory for the checkpoint and keys"}
	}
	return nil
}

// Validate returns the first problem, in file order, as a *Error. It does not
// apply defaults (Parse does), and it fills TestSale.Minor from
// TestSale.Amount. The MQTT certificate and key files must be readable now,
// so a missing file stops the daemon at start rather than at the first report.
func (c *Config) Validate() error {
	// With install tickets the merchant record comes from central, signed;
	// a merchant section is then optional, and checked only when given.
	merchantOptional := c.Central.Tickets && c.Merchant == (Merchant{})
	skipMerchant := func(msg string) string {
		if merchantOptional {
			return ""
		}
		return msg
	}
	checks := []struct {
		key string
		msg string // empty when fine
	}{
		{"terminal.mid", digits(c.Terminal.MID, 15)},
		{"terminal.tid", digits(c.Terminal.TID, 8)},
		{"terminal.serial", serial(c.Terminal.Serial)},
		{"merchant.name", skipMerchant(text(c.Merchant.Name, true))},
		{"merchant.legal_person", skipMerchant(text(c.Merchant.LegalPerson, true))},
		{"merchant.account_name", text(c.Merchant.AccountName, false)},
		{"merchant.account_check", skipMerchant(lowerHex(c.Merchant.AccountCheck, 64, 64))},
		{"merchant.card_type", skipMerchant(oneOf(c.Merchant.CardType, "debit", "credit"))},
		{"host.address", hostAddress(c.Host.Address)},
		{"host.tpdu", hexDigits(c.Host.TPDU, 10)},
		{"host.header", hexDigits(c.Host.Header, 12)},
		{"host.timeout", between(c.Host.Timeout, time.Second, 5*time.Minute)},
		{"host.mac", oneOf(c.Host.MAC, "unionpay-ecb", "x9.19")},
		{"host.key_mode", oneOf(c.Host.KeyMode, "004", "001")},
	}
	for _, ch := range checks {
		if ch.msg != "" {
			return &Error{Key: ch.key, Msg: ch.msg}
		}
	}
	if err := c.Host.validateLink(); err != nil {
		return err
	}
	if err := c.MQTT.validate(); err != nil {
		return err
	}
	if err := c.Installer.validate(c.Devices.Keypad != SimDevice); err != nil {
		return err
	}
	if err := c.Central.validate(&c.MQTT); err != nil {
		return err
	}
	if err := c.Devices.validate(); err != nil {
		return err
	}
	if c.Devices.Keypad == SimDevice && c.Host.Address != "sim" && !c.Sim.ScriptedKeysWithRealHost {
		// The key script answers every question itself, the settlement
		// card's confirmation included: with a real acquirer that binds
		// whatever card is inserted, unseen.
		return &Error{Key: "devices.keypad", Msg: `"sim" (a key script confirms the settlement card) is refused with a real host; ` +
			`use the terminal's keypad, or on a test bench set sim.scripted_keys_with_real_host: true`}
	}
	minor, msg := parseAmount(c.TestSale.Amount)
	if msg != "" {
		return &Error{Key: "test_sale.amount", Msg: msg}
	}
	c.TestSale.Minor = minor
	if len(c.Binding.AcceptedBINs) == 0 {
		return &Error{Key: "binding.accepted_bins", Msg: "must list at least one card prefix (BIN)"}
	}
	for i, bin := range c.Binding.AcceptedBINs {
		if len(bin) < 1 || len(bin) > 11 || !allDigits(bin) {
			return &Error{Key: fmt.Sprintf("binding.accepted_bins[%d]", i), Msg: "must be 1 to 11 digits"}
		}
	}
	if msg := profile(c.Sim.Card); msg != "" {
		return &Error{Key: "sim.card", Msg: msg}
	}
	for i, p := range c.Sim.Cards {
		if msg := profile(p); msg != "" {
			return &Error{Key: fmt.Sprintf("sim.cards[%d]", i), Msg: msg}
		}
	}
	return nil
}

// validate checks the central section against the mqtt section it needs.
func (c *Central) validate(m *MQTT) error {
	switch {
	case c.Tickets && m.URL == "":
		return &Error{Key: "central.tickets", Msg: "on but mqtt.url is empty: tickets arrive over MQTT"}
	case c.Commands && m.URL == "":
		return &Error{Key: "central.commands", Msg: "on but mqtt.url is empty: commands arrive over MQTT"}
	case c.On() && len(c.Keys) == 0:
		return &Error{Key: "central.keys", Msg: "required when central.tickets or central.commands is on: central's public keys"}
	case !c.On() && len(c.Keys) > 0:
		return &Error{Key: "central.keys", Msg: "set but neither central.tickets nor central.commands is on"}
	case !c.On() && len(c.Revoked) > 0:
		return &Error{Key: "central.revoked", Msg: "set but neither central.tickets nor central.commands is on"}
	}
	// Over a plain link whoever is on the path reads central's tickets
	// (the merchant record) and could replay or hold back what it sends.
	if tls, _ := brokerURL(m.URL); c.On() && !tls {
		on := "central.tickets"
		if !c.Tickets {
			on = "central.commands"
		}
		return &Error{Key: "mqtt.url", Msg: tlsNeeded + " when " + on + " is on"}
	}
	revoked := map[string]bool{}
	for i, kid := range c.Revoked {
		if !trust.ValidKID(kid) {
			return &Error{Key: fmt.Sprintf("central.revoked[%d]", i), Msg: "must be a kid: 1 to 32 characters of A-Z a-z 0-9 . _ -"}
		}
		revoked[kid] = true
	}
	seen := map[string]bool{}
	for i, k := range c.Keys {
		key := fmt.Sprintf("central.keys[%d]", i)
		switch {
		case k.KID == "":
			return &Error{Key: key + ".kid", Msg: "required: the key id signed payloads name"}
		case !trust.ValidKID(k.KID):
			return &Error{Key: key + ".kid", Msg: "must be 1 to 32 characters of A-Z a-z 0-9 . _ -"}
		case seen[k.KID]:
			return &Error{Key: key + ".kid", Msg: "listed twice"}
		case revoked[k.KID]:
			return &Error{Key: key + ".kid", Msg: "also in central.revoked: remove the key or the revocation"}
		case k.PublicKeyFile == "":
			return &Error{Key: key + ".public_key_file", Msg: "required: central's Ed25519 public key (PEM)"}
		}
		seen[k.KID] = true
		if msg := readable(k.PublicKeyFile); msg != "" {
			return &Error{Key: key + ".public_key_file", Msg: msg}
		}
		if _, err := trust.LoadPublicKey(k.PublicKeyFile); err != nil {
			return &Error{Key: key + ".public_key_file", Msg: `must be an Ed25519 public key, PEM "PUBLIC KEY" (posctl ticket keygen)`}
		}
	}
	minor, msg := parseAmount(c.MaxTestAmount)
	if msg == "" && minor > 10000 {
		msg = "must not exceed 100.00: the test sale is a real payment"
	}
	if msg != "" {
		return &Error{Key: "central.max_test_amount", Msg: msg}
	}
	c.MaxTestMinor = minor
	return nil
}

// validate checks the installer section; required says a real keypad is
// configured, whose menu needs the password.
func (in Installer) validate(required bool) error {
	if in.PasswordHash == "" && required {
		return &Error{Key: "installer.password_hash", Msg: "required with a real keypad (posctl hash-password makes one)"}
	}
	// The salted hash hides how long the password is, so its length cannot
	// be checked here: posctl hash-password refuses fewer than
	// installer.MinPasswordLen digits, and the keypad never tries a
	// shorter entry, so the hash of a shorter one opens nothing.
	if in.PasswordHash != "" {
		if err := installer.ValidatePasswordHash(in.PasswordHash); err != nil {
			// Never quote the hash: it is as good as the password to an
			// offline guesser of a 4-digit PIN.
			return &Error{Key: "installer.password_hash", Msg: "must be pbkdf2-sha256$ITERATIONS$SALT$HASH as posctl hash-password prints"}
		}
	}
	if in.SupervisorPasswordHash != "" {
		if err := installer.ValidatePasswordHash(in.SupervisorPasswordHash); err != nil {
			return &Error{Key: "installer.supervisor_password_hash", Msg: "must be pbkdf2-sha256$ITERATIONS$SALT$HASH as posctl hash-password prints"}
		}
		if in.SupervisorPasswordHash == in.PasswordHash {
			return &Error{Key: "installer.supervisor_password_hash", Msg: "must differ from installer.password_hash: the supervisor's password is not the installer's"}
		}
	}
	if in.MaxTries < 1 || in.MaxTries > 10 {
		return &Error{Key: "installer.max_tries", Msg: "must be 1 to 10"}
	}
	if msg := between(in.Lockout, time.Minute, 24*time.Hour); msg != "" {
		return &Error{Key: "installer.lockout", Msg: msg}
	}
	if msg := between(in.IdleTimeout, 10*time.Second, 30*time.Minute); msg != "" {
		return &Error{Key: "installer.idle_timeout", Msg: msg}
	}
	if msg := oneOf(in.FunctionKey, "F1", "F2", "F3", "F4"); msg != "" {
		return &Error{Key: "installer.function_key", Msg: msg}
	}
	for i, b := range in.Banks {
		bin, name, ok := strings.Cut(b, "=")
		if !ok || len(bin) < 1 || len(bin) > 11 || !allDigits(bin) || text(strings.TrimSpace(name), true) != "" {
			return &Error{Key: fmt.Sprintf("installer.banks[%d]", i), Msg: `must be "BIN=bank name", a BIN of 1 to 11 digits`}
		}
	}
	return nil
}

// validate checks the devices section. Settings of a backend that is not
// selected are refused, as with mqtt: they show the installer meant that
// backend, and running on another would hide the mistake until a sale.
func (d *Devices) validate() error {
	for _, b := range []struct{ key, val string }{
		{"devices.card_reader", oneOf(d.CardReader, SimDevice, "pcsc")},
		{"devices.printer", oneOf(d.Printer, SimDevice, "serial")},
		{"devices.magstripe", oneOf(d.Magstripe, "none", "serial")},
		{"devices.keypad", oneOf(d.Keypad, SimDevice, "tty", "input", "matrix")},
		{"devices.screen", oneOf(d.Screen, SimDevice)},
	} {
		if b.val != "" {
			return &Error{Key: b.key, Msg: b.val}
		}
	}
	if d.PCSCReader != "" {
		if d.CardReader != "pcsc" {
			return &Error{Key: "devices.pcsc_reader", Msg: `set but devices.card_reader is not "pcsc"`}
		}
		if msg := text(d.PCSCReader, true); msg != "" {
			return &Error{Key: "devices.pcsc_reader", Msg: msg}
		}
	}
	if d.KeypadInput != "" && d.Keypad != "input" {
		return &Error{Key: "devices.keypad_input", Msg: `set but devices.keypad is not "input"`}
	}
	if d.Keypad == "input" && !strings.HasPrefix(d.KeypadInput, "/") {
		return &Error{Key: "devices.keypad_input", Msg: "required: the input-event device, such as /dev/input/event0"}
	}
	if err := d.KeypadMatrix.validate(d.Keypad == "matrix"); err != nil {
		return err
	}
	if d.ScreenRows < 2 || d.ScreenRows > 16 {
		return &Error{Key: "devices.screen_rows", Msg: "must be 2 to 16 lines"}
	}
	if d.ScreenCols < 16 || d.ScreenCols > 64 {
		return &Error{Key: "devices.screen_cols", Msg: "must be 16 to 64 characters"}
	}
	if _, err := magstripe.FramingByName(d.MagstripeFraming); err != nil {
		return &Error{Key: "devices.magstripe_framing", Msg: `must be "magtek", "lines" or "lines:" and the tracks sent, such as "lines:2,3"`}
	}
	if d.PrinterWidth < 24 || d.PrinterWidth > 64 {
		return &Error{Key: "devices.printer_width", Msg: "must be 24 to 64 characters (32 on 58 mm paper, 48 on 80 mm)"}
	}
	lines := []struct {
		key, backend string
		line         SerialLine
	}{
		{"devices.printer_line", d.Printer, d.PrinterLine},
		{"devices.magstripe_line", d.Magstripe, d.MagstripeLine},
	}
	for _, l := range lines {
		used := l.backend == "serial"
		// The device names the line; the other keys alone may stay in a
		// file as a template for when the backend is switched on.
		if !used && l.line.Device != "" {
			return &Error{Key: l.key, Msg: fmt.Sprintf(`set but %s is not "serial"`, strings.TrimSuffix(l.key, "_line"))}
		}
		if !used {
			continue
		}
		if err := l.line.validate(l.key); err != nil {
			return err
		}
	}
	return nil
}

// validate checks the matrix keypad section; used says devices.keypad is
// "matrix".
func (m KeypadMatrix) validate(used bool) error {
	set := len(m.Rows) > 0 || len(m.Cols) > 0 || len(m.Keys) > 0 || m.Orientation != ""
	if !used {
		if set {
			return &Error{Key: "devices.keypad_matrix", Msg: `set but devices.keypad is not "matrix"`}
		}
		return nil
	}
	if _, err := m.Driver(); err != nil {
		return &Error{Key: "devices.keypad_matrix", Msg: strings.TrimPrefix(err.Error(), keypad.ErrConfig.Error()+": ")}
	}
	return nil
}

// Driver is the section as drivers/keypad's configuration.
func (m KeypadMatrix) Driver() (keypad.Config, error) {
	c := keypad.Config{Rows: m.Rows, Cols: m.Cols, Orientation: keypad.Orientation(m.Orientation)}
	for _, row := range m.Keys {
		var keys []string
		for _, k := range strings.Fields(row) {
			if k == "-" {
				k = ""
			}
			keys = append(keys, k)
		}
		c.Keys = append(c.Keys, keys)
	}
	return c, c.Validate()
}

// validate checks one serial line. The device need not exist yet: a
// USB-serial adapter may be plugged in after start, and the driver waits.
func (l SerialLine) validate(key string) error {
	switch {
	case l.Device == "":
		return &Error{Key: key + ".device", Msg: "required: the serial device, such as /dev/ttyS1"}
	case !strings.HasPrefix(l.Device, "/"):
		return &Error{Key: key + ".device", Msg: "must be an absolute path, such as /dev/ttyS1"}
	case !slices.Contains([]int{1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200}, l.Baud):
		return &Error{Key: key + ".baud", Msg: "must be one of 1200 2400 4800 9600 19200 38400 57600 115200"}
	case l.DataBits < 5 || l.DataBits > 8:
		return &Error{Key: key + ".data_bits", Msg: "must be 5 to 8"}
	case l.StopBits != 1 && l.StopBits != 2:
		return &Error{Key: key + ".stop_bits", Msg: "must be 1 or 2"}
	}
	if msg := oneOf(l.Parity, "none", "odd", "even", "mark", "space"); msg != "" {
		return &Error{Key: key + ".parity", Msg: msg}
	}
	return nil
}

// validate checks the mqtt section. Settings that only matter with a broker
// are rejected when url is empty: they show the installer meant reporting to
// be on, and silently running without it would hide the terminal from the
// fleet.
func (m *MQTT) validate() error {
	tls := false
	if m.URL != "" {
		var msg string
		tls, msg = brokerURL(m.URL)
		if msg != "" {
			return &Error{Key: "mqtt.url", Msg: msg}
		}
	}
	needsURL := func(key, val string) error {
		if val != "" && m.URL == "" {
			return &Error{Key: key, Msg: "set but mqtt.url is empty (reporting is off)"}
		}
		return nil
	}
	if err := needsURL("mqtt.username", m.Username); err != nil {
		return err
	}
	if err := needsURL("mqtt.password", m.Password); err != nil {
		return err
	}
	if m.Password != "" && m.Username == "" {
		// MQTT 3.1.1 allows a password only with a user name.
		return &Error{Key: "mqtt.password", Msg: "requires mqtt.username"}
	}
	files := []struct{ key, val string }{
		{"mqtt.ca_file", m.CAFile}, {"mqtt.cert_file", m.CertFile}, {"mqtt.key_file", m.KeyFile},
	}
	for _, f := range files {
		if f.val == "" {
			continue
		}
		if err := needsURL(f.key, f.val); err != nil {
			return err
		}
		if !tls {
			// A CA or client certificate on a plain link means the installer
			// believes the link is encrypted; it is not.
			return &Error{Key: f.key, Msg: "needs a TLS mqtt.url (ssl://, tls:// or mqtts://)"}
		}
	}
	if m.KeyFile != "" && m.CertFile == "" {
		return &Error{Key: "mqtt.cert_file", Msg: "required when mqtt.key_file is set"}
	}
	if m.CertFile != "" && m.KeyFile == "" {
		return &Error{Key: "mqtt.key_file", Msg: "required when mqtt.cert_file is set"}
	}
	for _, f := range files {
		if f.val == "" {
			continue
		}
		if msg := readable(f.val); msg != "" {
			return &Error{Key: f.key, Msg: msg}
		}
	}
	if m.Password != "" && !tls {
		return &Error{Key: "mqtt.url", Msg: tlsNeeded + " when mqtt.password is set: the password would cross the network in clear text"}
	}
	if msg := between(m.Keepalive, 5*time.Second, 10*time.Minute); msg != "" {
		return &Error{Key: "mqtt.keepalive", Msg: msg}
	}
	return nil
}

// tlsNeeded starts the refusals of a plain broker URL.
const tlsNeeded = "must be TLS (ssl://, tls:// or mqtts://)"

// brokerURL checks an MQTT broker URL and reports whether it uses TLS. The
// message never quotes the URL, which might carry credentials.
func brokerURL(s string) (tls bool, msg string) {
	const want = "must be scheme://host:port with scheme tcp, mqtt, ssl, tls or mqtts"
	u, err := url.Parse(s)
	if err != nil {
		return false, want
	}
	switch u.Scheme {
	case "tcp", "mqtt":
	case "ssl", "tls", "mqtts":
		tls = true
	default:
		return false, want
	}
	if u.User != nil {
		return false, "must not carry credentials; use mqtt.username and mqtt.password"
	}
	if u.Opaque != "" || u.Hostname() == "" || !validPort(u.Port()) {
		return false, want
	}
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return false, "must not have a path, query or fragment"
	}
	return tls, ""
}

func hostAddress(s string) string {
	const want = `must be "sim" or host:port`
	if s == "" {
		return "required: " + want[len("must be "):]
	}
	if s == "sim" {
		return ""
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil || host == "" || strings.ContainsAny(host, " \t") || !validPort(port) {
		return want
	}
	return ""
}

func validPort(p string) bool {
	if p == "" || len(p) > 5 || !allDigits(p) {
		return false
	}
	n, _ := strconv.Atoi(p)
	return n >= 1 && n <= 65535
}

// validateLink checks the host link's transport protection and its
// response-code table.
func (h Host) validateLink() error {
	seen := map[string]string{}
	for _, l := range []struct {
		key   string
		codes []string
	}{{"host.approval_codes", h.ApprovalCodes}, {"host.decline_codes", h.DeclineCodes}} {
		for i, c := range l.codes {
			key := fmt.Sprintf("%s[%d]", l.key, i)
			if len(c) != 2 || !isAlnumUpper(c) {
				return &Error{Key: key, Msg: "must be a 2-character response code (digits or capital letters)"}
			}
			if prev, dup := seen[c]; dup {
				return &Error{Key: key, Msg: "already listed in " + prev}
			}
			seen[c] = l.key
		}
	}
	sim := h.Address == "sim"
	switch {
	case h.TLSCAFile != "" && sim:
		return &Error{Key: "host.tls_ca_file", Msg: "set but host.address is sim: the simulated host has no link"}
	case h.TLSServerName != "" && h.TLSCAFile == "":
		return &Error{Key: "host.tls_server_name", Msg: "set without host.tls_ca_file"}
	case h.PublicLink && !sim && h.TLSCAFile == "":
		return &Error{Key: "host.tls_ca_file", Msg: "required: host.public_link says the link crosses a public network"}
	case h.TLSCAFile != "":
		if msg := readable(h.TLSCAFile); msg != "" {
			return &Error{Key: "host.tls_ca_file", Msg: msg}
		}
	}
	return nil
}

func isAlnumUpper(s string) bool {
	for i := 0; i < len(s); i++ {
		if (s[i] < '0' || s[i] > '9') && (s[i] < 'A' || s[i] > 'Z') {
			return false
		}
	}
	return true
}

// readable proves the file exists, is a regular file and can be read by this
// process. It stats before opening so a FIFO or device named by mistake is
// rejected instead of blocking the daemon's start in open(2).
func readable(path string) string {
	st, err := os.Stat(path)
	if err != nil {
		return err.Error() // the *PathError names the path, which is not secret
	}
	if !st.Mode().IsRegular() {
		return path + ": not a regular file"
	}
	f, err := os.Open(path)
	if err != nil {
		return err.Error()
	}
	f.Close()
	return ""
}

// parseAmount turns a decimal CNY string into fen without floating point. The
// ceiling is 12 digits of fen, ISO 8583 field 4's width.
func parseAmount(s string) (int64, string) {
	const (
		format = "must be a CNY amount such as 0.01 or 12.5 (digits, at most 2 decimals)"
		ceil   = int64(999999999999)
	)
	if s == "" {
		return 0, "required"
	}
	if s[0] == '-' {
		return 0, "must be more than zero"
	}
	whole, frac, dot := strings.Cut(s, ".")
	if whole == "" || !allDigits(whole) || (dot && (frac == "" || len(frac) > 2 || !allDigits(frac))) {
		return 0, format
	}
	whole = strings.TrimLeft(whole, "0")
	if len(whole) > 10 {
		return 0, "must not exceed 9999999999.99"
	}
	var n int64
	for _, r := range whole + (frac + "00")[:2] {
		n = n*10 + int64(r-'0')
	}
	switch {
	case n == 0:
		return 0, "must be more than zero"
	case n > ceil:
		return 0, "must not exceed 9999999999.99"
	}
	return n, ""
}

var profileName = regexp.MustCompile(`^[a-z0-9-]+$`)

func profile(s string) string {
	if !profileName.MatchString(s) {
		return "must be a profile name of lowercase letters, digits and '-'"
	}
	return ""
}

func digits(s string, n int) string {
	if s == "" {
		return fmt.Sprintf("required: %d digits", n)
	}
	if len(s) != n || !allDigits(s) {
		return fmt.Sprintf("must be %d digits", n)
	}
	return ""
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func serial(s string) string {
	if len(s) < 1 || len(s) > 32 {
		return "must be 1 to 32 printable ASCII characters without spaces"
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return "must be 1 to 32 printable ASCII characters without spaces"
		}
	}
	return ""
}

// text checks a name printed on slips and sent to the host: valid UTF-8 with
// no control characters, which would garble a receipt or a message field.
func text(s string, required bool) string {
	if strings.TrimSpace(s) == "" {
		if required {
			return "required"
		}
		if s == "" {
			return ""
		}
		return "must not be only spaces"
	}
	if !utf8.ValidString(s) {
		return "must be valid UTF-8"
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return "must not contain control characters"
		}
	}
	return ""
}

// lowerHex accepts lowercase hex only, and an even number of digits: hashes
// and salts are compared as strings, and every common tool (sha256sum,
// hex.EncodeToString) writes lowercase. It never quotes the value.
func lowerHex(s string, lo, hi int) string {
	var want string
	if lo == hi {
		want = fmt.Sprintf("must be %d lowercase hex characters", lo)
	} else {
		want = fmt.Sprintf("must be %d to %d lowercase hex characters (%d to %d bytes)", lo, hi, lo/2, hi/2)
	}
	if s == "" {
		return "required: " + want[len("must be "):]
	}
	if len(s) < lo || len(s) > hi || len(s)%2 != 0 {
		return want
	}
	for i := 0; i < len(s); i++ {
		if !(s[i] >= '0' && s[i] <= '9' || s[i] >= 'a' && s[i] <= 'f') {
			return want
		}
	}
	return ""
}

// hexDigits checks wire constants (TPDU, header), which are decoded to bytes,
// so either case is fine.
func hexDigits(s string, n int) string {
	if len(s) != n {
		return fmt.Sprintf("must be %d hex digits", n)
	}
	for i := 0; i < len(s); i++ {
		c := s[i] | 0x20 // fold ASCII letters to lowercase
		if !(s[i] >= '0' && s[i] <= '9' || c >= 'a' && c <= 'f') {
			return fmt.Sprintf("must be %d hex digits", n)
		}
	}
	return ""
}

func oneOf(s string, allowed ...string) string {
	for _, a := range allowed {
		if s == a {
			return ""
		}
	}
	return `must be "` + strings.Join(allowed, `" or "`) + `"`
}

func between(d, lo, hi time.Duration) string {
	if d < lo || d > hi {
		return fmt.Sprintf("must be between %v and %v", fmtDuration(lo), fmtDuration(hi))
	}
	return ""
}

// fmtDuration prints 5m rather than time's 5m0s.
func fmtDuration(d time.Duration) string {
	if d >= time.Minute && d%time.Minute == 0 {
		return fmt.Sprintf("%dm", d/time.Minute)
	}
	return d.String()
}

// walker copies a YAML node tree into a struct by its yaml tags, rejecting
// unknown keys, duplicates and wrong shapes by YAML path. It records the line
// of every key it sees so Parse can point Validate's errors at the file.
type walker struct {
	lines map[string]int
}

var durationType = reflect.TypeFor[time.Duration]()

func (w *walker) document(doc *yaml.Node, c *Config) error {
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		return nil
	}
	n := doc.Content[0]
	if isNull(n) {
		return nil
	}
	if resolve(n).Kind != yaml.MappingNode {
		return &Error{Msg: "the file must be a mapping of keys (terminal:, merchant:, ...)", Line: n.Line}
	}
	return w.value("", n, reflect.ValueOf(c).Elem())
}

// value decodes n into v. path is the YAML path of n; messages describe the
// shape expected and found, never the value.
func (w *walker) value(path string, n *yaml.Node, v reflect.Value) error {
	n = resolve(n)
	bad := func(want string) error {
		return &Error{Key: path, Msg: fmt.Sprintf("must be %s, not %s", want, shape(n)), Line: n.Line}
	}
	switch {
	case v.Type() == durationType:
		if isNull(n) {
			return nil
		}
		if n.Kind != yaml.ScalarNode {
			return bad("a duration such as 30s")
		}
		s := n.Value
		if s == "" {
			return nil // as if left out: the default applies
		}
		if allDigits(strings.TrimPrefix(s, "-")) {
			// yaml.v3 would read a bare number as nanoseconds.
			return &Error{Key: path, Msg: "needs a unit, such as 30s or 5m", Line: n.Line}
		}
		d, err := time.ParseDuration(s)
		if err != nil {
			return &Error{Key: path, Msg: "must be a duration such as 30s or 5m", Line: n.Line}
		}
		v.SetInt(int64(d))
	case v.Kind() == reflect.Bool:
		if isNull(n) {
			return nil
		}
		// Only the two words: YAML 1.1's yes/no/on/off are a classic trap.
		if n.Kind != yaml.ScalarNode || (n.Value != "true" && n.Value != "false") {
			return bad("true or false")
		}
		v.SetBool(n.Value == "true")
	case v.Kind() == reflect.Int:
		if isNull(n) {
			return nil
		}
		if n.Kind != yaml.ScalarNode || !allDigits(n.Value) || len(n.Value) > 9 {
			return bad("a whole number")
		}
		i, _ := strconv.Atoi(n.Value)
		v.SetInt(int64(i))
	case v.Kind() == reflect.String:
		if isNull(n) {
			return nil
		}
		if n.Kind != yaml.ScalarNode {
			return bad("a single value")
		}
		// The text as written, so "0898..." keeps its zero and "0.10" its
		// trailing zero, whatever type YAML would resolve it to.
		v.SetString(n.Value)
	case v.Kind() == reflect.Slice && v.Type().Elem().Kind() == reflect.String:
		if isNull(n) {
			return nil
		}
		if n.Kind != yaml.SequenceNode {
			return bad("a list")
		}
		out := make([]string, len(n.Content))
		for i, item := range n.Content {
			p := fmt.Sprintf("%s[%d]", path, i)
			w.lines[p] = item.Line
			if err := w.value(p, item, reflect.ValueOf(&out[i]).Elem()); err != nil {
				return err
			}
		}
		v.Set(reflect.ValueOf(out))
	case v.Kind() == reflect.Slice && v.Type().Elem().Kind() == reflect.Struct:
		if isNull(n) {
			return nil
		}
		if n.Kind != yaml.SequenceNode {
			return bad("a list")
		}
		out := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, item := range n.Content {
			p := fmt.Sprintf("%s[%d]", path, i)
			w.lines[p] = item.Line
			if err := w.value(p, item, out.Index(i)); err != nil {
				return err
			}
		}
		v.Set(out)
	case v.Kind() == reflect.Struct:
		if isNull(n) {
			return nil
		}
		if n.Kind != yaml.MappingNode {
			return bad("a mapping of keys")
		}
		return w.mapping(path, n, v)
	default:
		// Only reachable if a field of a new type is added to Config
		// without teaching the walker about it.
		return &Error{Key: path, Msg: fmt.Sprintf("internal: cannot decode into %v", v.Type())}
	}
	return nil
}

func (w *walker) mapping(path string, n *yaml.Node, v reflect.Value) error {
	fields := yamlFields(v.Type())
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			return &Error{Key: path, Msg: "keys must be plain names", Line: k.Line}
		}
		p := join(path, k.Value)
		if seen[k.Value] {
			return &Error{Key: p, Msg: fmt.Sprintf("duplicate key (first at line %d)", w.lines[p]), Line: k.Line}
		}
		seen[k.Value] = true
		w.lines[p] = k.Line
		idx, ok := fields[k.Value]
		if !ok && p == "ticket" {
			return &Error{Key: p, Msg: "replaced by the central section (central.tickets, central.keys with a kid): see testdata/posagent.example.yaml", Line: k.Line}
		}
		if !ok {
			if msg, removed := removedKeys[p]; removed {
				return &Error{Key: p, Msg: msg, Line: k.Line}
			}
			return &Error{Key: p, Msg: "unknown key", Line: k.Line}
		}
		if err := w.value(p, val, v.Field(idx)); err != nil {
			return err
		}
	}
	return nil
}

// yamlFields maps yaml key to field index, skipping `yaml:"-"` and untagged
// fields: every key the file may hold is spelt out in a tag.
func yamlFields(t reflect.Type) map[string]int {
	m := make(map[string]int, t.NumField())
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		if name != "" && name != "-" {
			m[name] = i
		}
	}
	return m
}

// parentKey is the section holding key ("devices.printer_line" for
// "devices.printer_line.device"), "" at the top.
func parentKey(key string) string {
	if i := strings.LastIndexAny(key, ".["); i > 0 {
		return key[:i]
	}
	return ""
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// resolve follows an alias (*anchor) to its target.
func resolve(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	n = resolve(n)
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

func shape(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return "a single value"
	default:
		return "this"
	}
}
