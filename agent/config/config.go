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
// Parse applies defaults, derives what is computed from the file (the
// amounts in fen) and runs Validate; the daemon then calls ValidateForRun,
// which also insists on what only a real run needs (state_dir). Validate and
// ValidateForRun only read the configuration. Default returns the complete
// configuration of the simulated demo.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/posagent/posagent/agent/central/trust"
	"github.com/posagent/posagent/drivers/keypad"
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
	// Profile names the acquirer's built-in profile (agent/acquirer
	// ProfileNames): its 60.3 codes, key mode, parameter layouts and
	// fallback policy. Default "common".
	Profile string `yaml:"profile"`
	// KeyMode is the working keys sign-on asks for: "004" double-length
	// with a track key, "003" double-length without, "001" single DES.
	// Default: the profile's ("004" for common).
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
	// CARevocationFile is the acquirer's list of revoked issuer public key
	// certificates (YAML: revoked: [{rid, index, serial}], hex), which
	// offline data authentication refuses; empty: none revoked.
	CARevocationFile string `yaml:"ca_revocation_file"`
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

// MQTT is where the daemon reports status. No broker (url and urls both
// empty) turns reporting off, which is how a terminal without a broker still
// takes payments.
type MQTT struct {
	// URL is one broker, scheme://host:port with scheme tcp, mqtt (plain) or
	// ssl, tls, mqtts (TLS). It must not carry credentials: URLs get logged.
	URL string `yaml:"url"`
	// URLs are the brokers of a cluster, each as URL, all plain or all TLS,
	// instead of url (setting both is an error). The terminal starts on the
	// one its TID picks and moves to the next when a connection fails or is
	// lost (docs/mqtt.md, "Brokers and failover").
	URLs     []string `yaml:"urls"`
	Username string   `yaml:"username"`
	Password string   `yaml:"password"` // never echoed by any error
	CAFile   string   `yaml:"ca_file"`  // PEM CA bundle for the broker; TLS schemes only
	CertFile string   `yaml:"cert_file"`
	KeyFile  string   `yaml:"key_file"` // client certificate and key: both or neither
	// Keepalive is the MQTT keepalive interval. Default 30s, 5s to 10m.
	Keepalive time.Duration `yaml:"keepalive"`
	// ReconnectMax caps the random wait before a reconnect attempt: the
	// n-th in a row waits up to min(ReconnectMax, 1s·2ⁿ). Default 1m, 1s
	// to 10m. Busy answers in a row (a broker up but overloaded) double the
	// cap, up to 8×ReconnectMax (docs/mqtt.md, "A busy broker").
	ReconnectMax time.Duration `yaml:"reconnect_max"`
	// ConnectJitter delays the first connection after start by a random
	// time up to this, so a region's terminals powering up together do not
	// all connect in the same second. Default 10s when the key is left out;
	// 0s connects at once (the demo); at most 10m.
	ConnectJitter time.Duration `yaml:"connect_jitter"`
	// Heartbeat is the interval of the terminal's heartbeat, which tells
	// central the terminal is there even when a clustered broker never
	// delivers its Will. Default 30s, 5s to 10m; it cannot be turned off.
	Heartbeat time.Duration `yaml:"heartbeat"`
}

// Brokers is the broker list: URLs, or URL alone; empty when reporting is off.
func (m MQTT) Brokers() []string {
	if m.URL != "" {
		return []string{m.URL}
	}
	return m.URLs
}

// On reports whether a broker is configured.
func (m MQTT) On() bool { return len(m.Brokers()) > 0 }

// urlKey is the key an error about the brokers names.
func (m MQTT) urlKey() string {
	if m.URL == "" && len(m.URLs) > 0 {
		return "mqtt.urls"
	}
	return "mqtt.url"
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
	// PCSCContactlessReader names the PC/SC reader that is contactless: a
	// card tapped there is read as qPBOC (PPSE, the cryptogram from GPO,
	// no GENERATE AC). Empty: every reader is a contact one.
	PCSCContactlessReader string `yaml:"pcsc_contactless_reader"`
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
// of central's Ed25519 keys (agent/central/trust, docs/mqtt.md "Signed messages"):
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
	// MaxTestMinor is MaxTestAmount in fen, derived by Parse and Default; it
	// is not read from the file. A caller that changes MaxTestAmount sets it
	// too: Validate refuses the two when they disagree.
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
	// Minor is Amount in fen, derived by Parse and Default; it is not read
	// from the file. A caller that changes Amount sets Minor too: Validate
	// refuses the two when they disagree.
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

// Parse decodes one YAML document strictly, applies defaults, derives the
// amounts in fen and Validates.
// Unknown keys, duplicate keys, wrong shapes (a list where a value belongs)
// and more than one document are errors. Every error is a *Error.
//
// Parse walks the YAML node tree itself instead of yaml.v3's Decode with
// KnownFields(true): Decode reports Go type names and a line but not the YAML
// path, and its type errors quote the offending value, which could be the
// password.
func Parse(data []byte) (*Config, error) {
	c := &Config{}
	d := &walker{lines: map[string]int{}, zero: map[string]bool{}}
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
	if !d.zero["mqtt.connect_jitter"] && c.MQTT.ConnectJitter == 0 {
		// Unlike the other durations, 0s is a value here (connect at once);
		// only a key left out or empty takes the default.
		c.MQTT.ConnectJitter = DefaultConnectJitter
	}
	c.derive()
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

// derive fills the fields computed from others instead of read from the
// file: the test sale's amount and central's cap on it, in fen. Parse calls
// it after the defaults and Default on its own values, so Validate, which
// only reads, can check both amounts and that they still agree. An amount
// that does not parse leaves 0, for Validate to report the amount itself.
func (c *Config) derive() {
	c.TestSale.Minor, _ = parseAmount(c.TestSale.Amount)
	c.Central.MaxTestMinor, _ = parseAmount(c.Central.MaxTestAmount)
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
