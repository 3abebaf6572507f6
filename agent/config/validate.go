package config

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/posagent/posagent/agent/acquirer"
	"github.com/posagent/posagent/agent/central/trust"
	"github.com/posagent/posagent/agent/installer"
	"github.com/posagent/posagent/drivers/keypad"
	"github.com/posagent/posagent/drivers/magstripe"
)

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

// Validate returns the first problem, in file order, as a *Error. It changes
// nothing: Parse and Default apply the defaults and derive TestSale.Minor and
// Central.MaxTestMinor, and Validate checks that those still match the
// amounts they came from. The MQTT certificate and key files must be
// readable now, so a missing file stops the daemon at start rather than at
// the first report.
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
		{"host.profile", hostProfile(c.Host.Profile)},
		{"host.key_mode", oneOf(c.Host.KeyMode, "004", "003", "001")},
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
	if err := c.Central.validate(c.MQTT); err != nil {
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
	if minor != c.TestSale.Minor {
		return &Error{Key: "test_sale.amount", Msg: fmt.Sprintf(staleMinor, "TestSale.Minor")}
	}
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

// staleMinor refuses an amount changed after Parse or Default derived its
// value in fen from it; %s names the field. Only a program can cause it,
// never a file.
const staleMinor = "does not match %s, derived from it by Parse and Default: a caller that changes the amount sets both"

// validate checks the central section against the mqtt section it needs.
func (c Central) validate(m MQTT) error {
	switch {
	case c.Tickets && !m.On():
		return &Error{Key: "central.tickets", Msg: "on but mqtt.url is empty: tickets arrive over MQTT"}
	case c.Commands && !m.On():
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
	// m.validate has refused a list mixing plain and TLS: the first broker
	// tells for all.
	if b := m.Brokers(); c.On() && len(b) > 0 {
		if tls, _ := brokerURL(b[0]); !tls {
			on := "central.tickets"
			if !c.Tickets {
				on = "central.commands"
			}
			return &Error{Key: m.urlKey(), Msg: tlsNeeded + " when " + on + " is on"}
		}
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
	if minor != c.MaxTestMinor {
		return &Error{Key: "central.max_test_amount", Msg: fmt.Sprintf(staleMinor, "Central.MaxTestMinor")}
	}
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
func (d Devices) validate() error {
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
	if d.PCSCContactlessReader != "" {
		if d.CardReader != "pcsc" {
			return &Error{Key: "devices.pcsc_contactless_reader", Msg: `set but devices.card_reader is not "pcsc"`}
		}
		if msg := text(d.PCSCContactlessReader, true); msg != "" {
			return &Error{Key: "devices.pcsc_contactless_reader", Msg: msg}
		}
		if d.PCSCReader != "" && d.PCSCReader != d.PCSCContactlessReader {
			// A pinned reader is the only one read: the contactless one
			// would never be.
			return &Error{Key: "devices.pcsc_contactless_reader", Msg: "set while devices.pcsc_reader pins another reader"}
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
func (m MQTT) validate() error {
	tls := false
	if m.URL != "" && len(m.URLs) > 0 {
		return &Error{Key: "mqtt.urls", Msg: "set together with mqtt.url: give one broker in url, or every broker in urls"}
	}
	if m.URL != "" {
		var msg string
		tls, msg = brokerURL(m.URL)
		if msg != "" {
			return &Error{Key: "mqtt.url", Msg: msg}
		}
	}
	seen := map[string]bool{}
	for i, u := range m.URLs {
		key := fmt.Sprintf("mqtt.urls[%d]", i)
		t, msg := brokerURL(u)
		switch {
		case msg != "":
			return &Error{Key: key, Msg: msg}
		case i > 0 && t != tls:
			// The ticket and command subscriptions are allowed for the
			// whole session or not at all: a plain node would carry them
			// in clear.
			return &Error{Key: key, Msg: "mixes plain and TLS brokers; use TLS (ssl://, tls:// or mqtts://) for every one"}
		case seen[u]:
			return &Error{Key: key, Msg: "lists a broker a second time"}
		}
		tls = t
		seen[u] = true
	}
	needsURL := func(key, val string) error {
		if val != "" && !m.On() {
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
			return &Error{Key: f.key, Msg: "needs a TLS " + m.urlKey() + " (ssl://, tls:// or mqtts://)"}
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
		return &Error{Key: m.urlKey(), Msg: tlsNeeded + " when mqtt.password is set: the password would cross the network in clear text"}
	}
	for _, d := range []struct {
		key    string
		v      time.Duration
		lo, hi time.Duration
	}{
		{"mqtt.keepalive", m.Keepalive, 5 * time.Second, 10 * time.Minute},
		{"mqtt.reconnect_max", m.ReconnectMax, time.Second, 10 * time.Minute},
		{"mqtt.connect_jitter", m.ConnectJitter, 0, 10 * time.Minute},
		{"mqtt.heartbeat", m.Heartbeat, 5 * time.Second, 10 * time.Minute},
	} {
		if msg := between(d.v, d.lo, d.hi); msg != "" {
			return &Error{Key: d.key, Msg: msg}
		}
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
	if h.CARevocationFile != "" {
		if msg := readable(h.CARevocationFile); msg != "" {
			return &Error{Key: "host.ca_revocation_file", Msg: msg}
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

// hostProfile accepts the name of a built-in acquirer profile.
func hostProfile(name string) string {
	if _, ok := acquirer.LookupProfile(name); ok && name != "" {
		return ""
	}
	return `must name a built-in acquirer profile: "` + strings.Join(acquirer.ProfileNames(), `", "`) + `"`
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
