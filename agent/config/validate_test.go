package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/posagent/posagent/agent/central/trust"
	"github.com/posagent/posagent/provisioning"
)

func TestHardwareDevices(t *testing.T) {
	c, err := Parse([]byte(edit(t, readExample(t),
		"host.mac", "x9.19", "host.mac_full_key", "true", "host.key_mode", `"001"`,
		"devices.card_reader", "pcsc", "devices.pcsc_reader", "Virtual PCD 00 00",
		"devices.printer", "serial", "devices.printer_line", "{device: /dev/ttyS1, baud: 115200}",
		"devices.printer_width", "48",
		"devices.magstripe", "serial", "devices.magstripe_line", "{device: /dev/ttyUSB0, parity: even, data_bits: 7}",
		"devices.magstripe_framing", `"lines:2,3"`,
	)))
	if err != nil {
		t.Fatal(err)
	}
	want := Devices{
		CardReader: "pcsc", PCSCReader: "Virtual PCD 00 00",
		Printer: "serial", PrinterLine: SerialLine{Device: "/dev/ttyS1", Baud: 115200, DataBits: 8, Parity: "none", StopBits: 1},
		PrinterWidth: 48,
		Magstripe:    "serial", MagstripeLine: SerialLine{Device: "/dev/ttyUSB0", Baud: 9600, DataBits: 7, Parity: "even", StopBits: 1},
		MagstripeFraming: "lines:2,3", Keypad: "sim", Screen: "sim", ScreenRows: 8, ScreenCols: 24,
	}
	if !reflect.DeepEqual(c.Devices, want) {
		t.Errorf("devices = %+v\nwant %+v", c.Devices, want)
	}
	if c.Host.MAC != "x9.19" || !c.Host.MACFullKey || c.Host.KeyMode != "001" {
		t.Errorf("host = %+v", c.Host)
	}
}

// host.profile names a built-in acquirer profile; the key mode follows it
// unless host.key_mode says otherwise, and "003" is a key mode now.
func TestHostProfile(t *testing.T) {
	c, err := Parse([]byte(edit(t, readExample(t), "host.profile", "centerm", "host.key_mode", "<absent>")))
	if err != nil {
		t.Fatal(err)
	}
	if c.Host.Profile != "centerm" || c.Host.KeyMode != "004" {
		t.Errorf("host = %+v", c.Host)
	}
	c, err = Parse([]byte(edit(t, readExample(t), "host.profile", "<absent>", "host.key_mode", `"003"`)))
	if err != nil {
		t.Fatal(err)
	}
	if c.Host.Profile != DefaultProfile || c.Host.KeyMode != "003" {
		t.Errorf("host = %+v", c.Host)
	}
	_, err = Parse([]byte(edit(t, readExample(t), "host.profile", "acme")))
	var ce *Error
	if !errors.As(err, &ce) || ce.Key != "host.profile" || !strings.Contains(ce.Msg, `"centerm"`) || !strings.Contains(ce.Msg, `"common"`) ||
		strings.Contains(err.Error(), "acme") || ce.Line == 0 {
		t.Errorf("unknown profile: %v", err)
	}
}

// centralKey writes an Ed25519 public key file for central.keys.
func centralKey(t testing.TB, dir string) string {
	t.Helper()
	_, pub, err := trust.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "central.pub")
	if err := os.WriteFile(path, pub, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestTicketMakesMerchantOptional: with install tickets the merchant record
// comes from central, so the merchant section may be left out; when given,
// it is still checked.
func TestTicketMakesMerchantOptional(t *testing.T) {
	key := centralKey(t, t.TempDir())
	on := []string{"mqtt.url", "ssl://127.0.0.1:8883", "central.tickets", "true", "central.keys", "[{kid: c-2026a, public_key_file: " + key + "}]"}
	with := edit(t, readExample(t), append(on, "merchant", "<absent>")...)
	if _, err := Parse([]byte(with)); err != nil {
		t.Errorf("ticket, no merchant section: %v", err)
	}
	without := edit(t, readExample(t), "merchant", "<absent>")
	var ce *Error
	if _, err := Parse([]byte(without)); !errors.As(err, &ce) || ce.Key != "merchant.name" {
		t.Errorf("no ticket, no merchant section: %v", err)
	}
	half := edit(t, readExample(t), append(on, "merchant.card_type", "gold")...)
	if _, err := Parse([]byte(half)); !errors.As(err, &ce) || ce.Key != "merchant.card_type" {
		t.Errorf("ticket, bad merchant section: %v", err)
	}
}

// TestCentral: keys with their kids become the key ring, rotation lists two,
// a revoked kid refuses its signatures; the amount cap is in fen.
func TestCentral(t *testing.T) {
	dir := t.TempDir()
	a := centralKey(t, filepath.Join(dir))
	b := filepath.Join(dir, "b.pub")
	_, pub, _ := trust.GenerateKey()
	os.WriteFile(b, pub, 0o644)
	c, err := Parse([]byte(edit(t, readExample(t), "mqtt.url", "ssl://127.0.0.1:8883",
		"central.tickets", "true", "central.commands", "true",
		"central.keys", "[{kid: c-2026a, public_key_file: "+a+"}, {kid: c-2026b, public_key_file: "+b+"}]",
		"central.revoked", "[c-2025]", "central.max_test_amount", `"0.50"`)))
	if err != nil {
		t.Fatal(err)
	}
	if c.Central.MaxTestMinor != 50 || !c.Central.On() || len(c.Central.Keys) != 2 || c.Central.Keys[1].KID != "c-2026b" {
		t.Errorf("central = %+v", c.Central)
	}
	r, err := c.Central.KeyRing()
	if err != nil {
		t.Fatal(err)
	}
	if got := r.KIDs(); !slices.Equal(got, []string{"c-2026a", "c-2026b"}) {
		t.Errorf("KIDs = %v", got)
	}
	if err := r.Verify("c-2025", []byte("m"), make([]byte, 64)); !errors.Is(err, trust.ErrRevokedKey) {
		t.Errorf("revoked kid: %v", err)
	}
	if d := Default(); d.Central.On() || d.Central.MaxTestMinor != 100 {
		t.Errorf("default central = %+v", d.Central)
	}
}

// TestInvalid breaks one key at a time and expects a *Error naming it. The
// base has MQTT on with a password, so every case also proves that no error
// echoes the password, salt or hash.
func TestInvalid(t *testing.T) {
	dir := t.TempDir()
	pem := filepath.Join(dir, "client.pem")
	if err := os.WriteFile(pem, []byte("-----BEGIN CERTIFICATE-----\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.pem")
	pub := centralKey(t, dir)
	keys := "[{kid: c-2026a, public_key_file: " + pub + "}]"

	base := edit(t, readExample(t),
		"mqtt.url", "ssl://broker.example.com:8883",
		"mqtt.username", "pos-10000001",
		"mqtt.password", secretPassword,
	)
	if _, err := Parse([]byte(base)); err != nil {
		t.Fatalf("base: %v", err)
	}

	cases := []struct {
		name string
		key  string   // expected Error.Key
		kv   []string // path, snippet pairs applied to base
	}{
		{"mid short", "terminal.mid", []string{"terminal.mid", `"12345"`}},
		{"mid letters", "terminal.mid", []string{"terminal.mid", `"89831004899000A"`}},
		{"mid missing", "terminal.mid", []string{"terminal.mid", "<absent>"}},
		{"tid long", "terminal.tid", []string{"terminal.tid", `"100000011"`}},
		{"tid list", "terminal.tid", []string{"terminal.tid", `[1]`}},
		{"tid mapping", "terminal.tid", []string{"terminal.tid", `{a: 1}`}},
		{"serial space", "terminal.serial", []string{"terminal.serial", `"PA DEMO"`}},
		{"serial empty", "terminal.serial", []string{"terminal.serial", `""`}},
		{"serial long", "terminal.serial", []string{"terminal.serial", strings.Repeat("X", 33)}},
		{"serial non-ascii", "terminal.serial", []string{"terminal.serial", "PA-示例"}},
		{"name empty", "merchant.name", []string{"merchant.name", `""`}},
		{"name control", "merchant.name", []string{"merchant.name", `"a\ab"`}},
		{"legal person missing", "merchant.legal_person", []string{"merchant.legal_person", "<absent>"}},
		{"account name blank", "merchant.account_name", []string{"merchant.account_name", `"   "`}},
		{"check short", "merchant.account_check", []string{"merchant.account_check", demoCheck[:63]}},
		{"check upper", "merchant.account_check", []string{"merchant.account_check", strings.ToUpper(demoCheck)}},
		{"check not hex", "merchant.account_check", []string{"merchant.account_check", "g" + demoCheck[1:]}},
		{"check missing", "merchant.account_check", []string{"merchant.account_check", "<absent>"}},
		{"old account hash", "merchant.account_hash", []string{"merchant.account_hash", demoHash}},
		{"old account salt", "merchant.account_salt", []string{"merchant.account_salt", demoSalt}},
		{"sim keypad with a real host", "devices.keypad", []string{"host.address", "acquirer.example.com:8583"}},
		{"card type", "merchant.card_type", []string{"merchant.card_type", "prepaid"}},
		{"address empty", "host.address", []string{"host.address", `""`}},
		{"address no port", "host.address", []string{"host.address", "acquirer.example.com"}},
		{"address port 0", "host.address", []string{"host.address", "acquirer.example.com:0"}},
		{"address port big", "host.address", []string{"host.address", "acquirer.example.com:65536"}},
		{"address no host", "host.address", []string{"host.address", `":8583"`}},
		{"tpdu short", "host.tpdu", []string{"host.tpdu", `"600003000"`}},
		{"tpdu not hex", "host.tpdu", []string{"host.tpdu", `"60000300zz"`}},
		{"header short", "host.header", []string{"host.header", `"6031"`}},
		{"timeout small", "host.timeout", []string{"host.timeout", "500ms"}},
		{"timeout big", "host.timeout", []string{"host.timeout", "6m"}},
		{"timeout no unit", "host.timeout", []string{"host.timeout", "30"}},
		{"timeout junk", "host.timeout", []string{"host.timeout", "soon"}},
		{"timeout list", "host.timeout", []string{"host.timeout", "[30s]"}},
		{"url scheme", "mqtt.url", []string{"mqtt.url", "http://broker:1883"}},
		{"url no port", "mqtt.url", []string{"mqtt.url", "tcp://broker"}},
		{"url creds", "mqtt.url", []string{"mqtt.url", "tcp://user:" + secretPassword + "@broker:1883"}},
		{"url path", "mqtt.url", []string{"mqtt.url", "tcp://broker:1883/x"}},
		{"url garbage", "mqtt.url", []string{"mqtt.url", `"::::"`}},
		{"url opaque", "mqtt.url", []string{"mqtt.url", `"tcp:broker:1883"`}},
		{"username without url", "mqtt.username", []string{"mqtt.url", `""`}},
		{"password without username", "mqtt.password", []string{"mqtt.username", `""`}},
		{"password list", "mqtt.password", []string{"mqtt.password", "[" + secretPassword + "]"}},
		{"password mapping", "mqtt.password", []string{"mqtt.password", "{x: " + secretPassword + "}"}},
		{"ca on plain link", "mqtt.ca_file", []string{"mqtt.url", "tcp://broker:1883", "mqtt.ca_file", pem}},
		{"ca missing", "mqtt.ca_file", []string{"mqtt.ca_file", missing}},
		{"ca directory", "mqtt.ca_file", []string{"mqtt.ca_file", dir}},
		{"key without cert", "mqtt.cert_file", []string{"mqtt.key_file", pem}},
		{"cert missing", "mqtt.cert_file", []string{"mqtt.cert_file", missing, "mqtt.key_file", pem}},
		{"cert without key", "mqtt.key_file", []string{"mqtt.cert_file", pem}},
		{"key missing", "mqtt.key_file", []string{"mqtt.cert_file", pem, "mqtt.key_file", missing}},
		{"keepalive small", "mqtt.keepalive", []string{"mqtt.keepalive", "1s"}},
		{"keepalive big", "mqtt.keepalive", []string{"mqtt.keepalive", "11m"}},
		{"url and urls", "mqtt.urls", []string{"mqtt.urls", "[ssl://b.example.com:8883]"}},
		{"urls mixed", "mqtt.urls[1]", []string{"mqtt.url", `""`, "mqtt.urls", "[ssl://a.example.com:8883, tcp://b.example.com:1883]"}},
		{"urls creds", "mqtt.urls[1]", []string{"mqtt.url", `""`, "mqtt.urls", "[ssl://a.example.com:8883, \"ssl://u:" + secretPassword + "@b.example.com:8883\"]"}},
		{"urls twice", "mqtt.urls[2]", []string{"mqtt.url", `""`, "mqtt.urls", "[ssl://a.example.com:8883, ssl://b.example.com:8883, ssl://a.example.com:8883]"}},
		{"urls scheme", "mqtt.urls[0]", []string{"mqtt.url", `""`, "mqtt.urls", "[http://a.example.com:8883]"}},
		{"urls not a list", "mqtt.urls", []string{"mqtt.url", `""`, "mqtt.urls", "ssl://a.example.com:8883"}},
		{"urls plain with a password", "mqtt.urls", []string{"mqtt.url", `""`, "mqtt.urls", "[tcp://a.example.com:1883, tcp://b.example.com:1883]"}},
		{"reconnect max small", "mqtt.reconnect_max", []string{"mqtt.reconnect_max", "500ms"}},
		{"reconnect max big", "mqtt.reconnect_max", []string{"mqtt.reconnect_max", "11m"}},
		{"connect jitter negative", "mqtt.connect_jitter", []string{"mqtt.connect_jitter", "-1s"}},
		{"connect jitter big", "mqtt.connect_jitter", []string{"mqtt.connect_jitter", "11m"}},
		{"heartbeat small", "mqtt.heartbeat", []string{"mqtt.heartbeat", "1s"}},
		{"heartbeat negative", "mqtt.heartbeat", []string{"mqtt.heartbeat", "-30s"}},
		{"heartbeat big", "mqtt.heartbeat", []string{"mqtt.heartbeat", "11m"}},
		{"mac", "host.mac", []string{"host.mac", "x919"}},
		{"mac full key yes", "host.mac_full_key", []string{"host.mac_full_key", "yes"}},
		{"mac full key number", "host.mac_full_key", []string{"host.mac_full_key", "1"}},
		{"key mode", "host.key_mode", []string{"host.key_mode", `"002"`}},
		{"profile unknown", "host.profile", []string{"host.profile", "acme"}},
		{"profile list", "host.profile", []string{"host.profile", "[common]"}},
		{"card reader", "devices.card_reader", []string{"devices.card_reader", "pcsc-lite"}},
		{"pcsc reader without pcsc", "devices.pcsc_reader", []string{"devices.pcsc_reader", "Virtual PCD 00 00"}},
		{"pcsc reader control chars", "devices.pcsc_reader", []string{"devices.card_reader", "pcsc", "devices.pcsc_reader", `"a\tb"`}},
		{"contactless reader without pcsc", "devices.pcsc_contactless_reader", []string{"devices.pcsc_contactless_reader", "Virtual PCD 00 01"}},
		{"contactless reader beside a pinned one", "devices.pcsc_contactless_reader", []string{"devices.card_reader", "pcsc",
			"devices.pcsc_reader", "Virtual PCD 00 00", "devices.pcsc_contactless_reader", "Virtual PCD 00 01"}},
		{"printer", "devices.printer", []string{"devices.printer", "escpos"}},
		{"printer width small", "devices.printer_width", []string{"devices.printer_width", "16"}},
		{"printer width text", "devices.printer_width", []string{"devices.printer_width", "wide"}},
		{"printer width negative", "devices.printer_width", []string{"devices.printer_width", "-32"}},
		{"printer line without serial", "devices.printer_line", []string{"devices.printer_line", "{device: /dev/ttyS1}"}},
		{"printer line no device", "devices.printer_line.device", []string{"devices.printer", "serial", "devices.printer_line", "{baud: 9600}"}},
		{"printer line absent", "devices.printer_line.device", []string{"devices.printer", "serial"}},
		{"printer line relative", "devices.printer_line.device", []string{"devices.printer", "serial", "devices.printer_line", "{device: ttyS1}"}},
		{"printer line baud", "devices.printer_line.baud", []string{"devices.printer", "serial", "devices.printer_line", "{device: /dev/ttyS1, baud: 9601}"}},
		{"printer line bits", "devices.printer_line.data_bits", []string{"devices.printer", "serial", "devices.printer_line", "{device: /dev/ttyS1, data_bits: 9}"}},
		{"printer line parity", "devices.printer_line.parity", []string{"devices.printer", "serial", "devices.printer_line", "{device: /dev/ttyS1, parity: E}"}},
		{"printer line stop", "devices.printer_line.stop_bits", []string{"devices.printer", "serial", "devices.printer_line", "{device: /dev/ttyS1, stop_bits: 3}"}},
		{"printer line unknown", "devices.printer_line.speed", []string{"devices.printer", "serial", "devices.printer_line", "{device: /dev/ttyS1, speed: 9600}"}},
		{"magstripe", "devices.magstripe", []string{"devices.magstripe", "usb"}},
		{"magstripe framing", "devices.magstripe_framing", []string{"devices.magstripe_framing", "lines:4"}},
		{"magstripe line without serial", "devices.magstripe_line", []string{"devices.magstripe_line", "{device: /dev/ttyS2}"}},
		{"keypad", "devices.keypad", []string{"devices.keypad", "gpio"}},
		{"keypad input without input", "devices.keypad_input", []string{"devices.keypad_input", "/dev/input/event0"}},
		{"keypad input missing", "devices.keypad_input", []string{"devices.keypad", "input"}},
		{"keypad matrix without matrix", "devices.keypad_matrix", []string{"devices.keypad_matrix", "{rows: [GPIO5]}"}},
		{"keypad matrix no pins", "devices.keypad_matrix", []string{"devices.keypad", "matrix"}},
		{"keypad matrix bad key", "devices.keypad_matrix", []string{"devices.keypad", "matrix", "devices.keypad_matrix",
			`{rows: [GPIO5, GPIO6], cols: [GPIO12, GPIO16], keys: ["1 2", "3 BOOM"]}`}},
		{"keypad matrix short row", "devices.keypad_matrix", []string{"devices.keypad", "matrix", "devices.keypad_matrix",
			`{rows: [GPIO5, GPIO6], cols: [GPIO12, GPIO16], keys: ["1 2", "3"]}`}},
		{"screen rows", "devices.screen_rows", []string{"devices.screen_rows", "1"}},
		{"screen cols", "devices.screen_cols", []string{"devices.screen_cols", "100"}},
		{"password hash missing", "installer.password_hash", []string{"devices.keypad", "tty", "installer.password_hash", `""`}},
		{"password hash junk", "installer.password_hash", []string{"installer.password_hash", "pbkdf2-sha256$1$" + demoSalt + "$x"}},
		{"password in clear", "installer.password_hash", []string{"installer.password_hash", `"2468"`}},
		{"max tries", "installer.max_tries", []string{"installer.max_tries", "11"}},
		{"lockout short", "installer.lockout", []string{"installer.lockout", "10s"}},
		{"idle short", "installer.idle_timeout", []string{"installer.idle_timeout", "1s"}},
		{"function key", "installer.function_key", []string{"installer.function_key", "F5"}},
		{"host tls with the sim host", "host.tls_ca_file", []string{"host.tls_ca_file", pem}},
		{"host tls name without ca", "host.tls_server_name", []string{"host.address", `"acquirer.example.cn:5000"`, "host.tls_server_name", "acquirer.example.cn"}},
		{"public link without tls", "host.tls_ca_file", []string{"host.address", `"acquirer.example.cn:5000"`, "host.public_link", "true"}},
		{"host ca missing", "host.tls_ca_file", []string{"host.address", `"acquirer.example.cn:5000"`, "host.tls_ca_file", missing}},
		{"approval code long", "host.approval_codes[0]", []string{"host.approval_codes", `["000"]`}},
		{"approval code lower", "host.approval_codes[1]", []string{"host.approval_codes", `["00", "a4"]`}},
		{"code approves and declines", "host.decline_codes[0]", []string{"host.approval_codes", `["00"]`, "host.decline_codes", `["00"]`}},
		{"tickets without mqtt", "central.tickets", []string{"mqtt.url", `""`, "mqtt.username", `""`, "mqtt.password", `""`, "central.tickets", "true", "central.keys", keys}},
		{"commands without mqtt", "central.commands", []string{"mqtt.url", `""`, "mqtt.username", `""`, "mqtt.password", `""`, "central.commands", "true", "central.keys", keys}},
		{"tickets yes", "central.tickets", []string{"central.tickets", "yes"}},
		{"tickets without keys", "central.keys", []string{"central.tickets", "true"}},
		{"commands without keys", "central.keys", []string{"central.commands", "true"}},
		{"keys while off", "central.keys", []string{"central.keys", keys}},
		{"revoked while off", "central.revoked", []string{"central.revoked", "[c-2025]"}},
		{"keys scalar", "central.keys", []string{"central.commands", "true", "central.keys", pub}},
		{"key scalar", "central.keys[0]", []string{"central.commands", "true", "central.keys", "[" + pub + "]"}},
		{"kid missing", "central.keys[0].kid", []string{"central.commands", "true", "central.keys", "[{public_key_file: " + pub + "}]"}},
		{"kid bad", "central.keys[0].kid", []string{"central.commands", "true", "central.keys", "[{kid: a b, public_key_file: " + pub + "}]"}},
		{"kid twice", "central.keys[1].kid", []string{"central.commands", "true", "central.keys", "[{kid: k, public_key_file: " + pub + "}, {kid: k, public_key_file: " + pub + "}]"}},
		{"kid revoked", "central.keys[0].kid", []string{"central.commands", "true", "central.keys", keys, "central.revoked", "[c-2026a]"}},
		{"key file missing", "central.keys[0].public_key_file", []string{"central.commands", "true", "central.keys", "[{kid: k, public_key_file: " + missing + "}]"}},
		{"key file absent", "central.keys[0].public_key_file", []string{"central.commands", "true", "central.keys", "[{kid: k}]"}},
		{"key file not a key", "central.keys[0].public_key_file", []string{"central.commands", "true", "central.keys", "[{kid: k, public_key_file: " + pem + "}]"}},
		{"key unknown field", "central.keys[0].file", []string{"central.commands", "true", "central.keys", "[{kid: k, file: " + pub + "}]"}},
		{"revoked bad", "central.revoked[0]", []string{"central.commands", "true", "central.keys", keys, "central.revoked", `["a/b"]`}},
		{"max test amount", "central.max_test_amount", []string{"central.max_test_amount", `"100.01"`}},
		{"max test amount zero", "central.max_test_amount", []string{"central.max_test_amount", `"0"`}},
		{"bank without name", "installer.banks[1]", []string{"installer.banks", `["62=UnionPay", "622202="]`}},
		{"bank BIN letters", "installer.banks[0]", []string{"installer.banks", `["62x=Bank"]`}},
		{"screen", "devices.screen", []string{"devices.screen", "tty"}},
		{"state dir list", "state_dir", []string{"state_dir", "[/a, /b]"}},
		{"amount zero", "test_sale.amount", []string{"test_sale.amount", `"0.00"`}},
		{"amount 3 decimals", "test_sale.amount", []string{"test_sale.amount", `"1.234"`}},
		{"bins empty", "binding.accepted_bins", []string{"binding.accepted_bins", "[]"}},
		{"bins scalar", "binding.accepted_bins", []string{"binding.accepted_bins", "62"}},
		{"bin letters", "binding.accepted_bins[1]", []string{"binding.accepted_bins", `["62", "62a"]`}},
		{"bin long", "binding.accepted_bins[0]", []string{"binding.accepted_bins", `["622202123456"]`}},
		{"bin nested", "binding.accepted_bins[0]", []string{"binding.accepted_bins", `[[62]]`}},
		{"sim card upper", "sim.card", []string{"sim.card", "Debit"}},
		{"sim cards empty name", "sim.cards[1]", []string{"sim.cards", `[debit, ""]`}},
		{"sim cards space", "sim.cards[0]", []string{"sim.cards", `["wrong card"]`}},
		{"unknown key", "terminal.mdi", []string{"terminal.mdi", `"898310048990001"`}},
		{"unknown section", "reporting", []string{"reporting", "{on: true}"}},
		{"unknown nested in mqtt", "mqtt.passwd", []string{"mqtt.passwd", secretPassword}},
		{"section scalar", "terminal", []string{"terminal", "5"}},
		{"section list", "mqtt", []string{"mqtt", "[a]"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			src := edit(t, base, tc.kv...)
			_, err := Parse([]byte(src))
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("Parse = %v, want *Error for %s\n%s", err, tc.key, src)
			}
			t.Log(err)
			if ce.Key != tc.key {
				t.Errorf("Key = %q, want %q (%v)", ce.Key, tc.key, err)
			}
			for _, v := range []string{secretPassword, demoCheck, demoHash, demoSalt, strings.ToUpper(demoCheck), demoCheck[:63]} {
				if strings.Contains(strings.ToLower(err.Error()), strings.ToLower(v)) {
					t.Errorf("error echoes a secret value: %v", err)
				}
			}
			// A key present in the file is located by line.
			if !strings.HasSuffix(tc.name, "missing") && ce.Line == 0 && tc.kv[1] != "<absent>" {
				t.Errorf("no line number in %v", err)
			}
		})
	}
}

func TestMQTTWithTLSFiles(t *testing.T) {
	dir := t.TempDir()
	var paths []string
	for _, n := range []string{"ca.pem", "cert.pem", "key.pem"} {
		p := filepath.Join(dir, n)
		if err := os.WriteFile(p, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	src := edit(t, readExample(t),
		"mqtt.url", "mqtts://broker.example.com:8883",
		"mqtt.ca_file", paths[0], "mqtt.cert_file", paths[1], "mqtt.key_file", paths[2])
	if _, err := Parse([]byte(src)); err != nil {
		t.Errorf("Parse: %v", err)
	}
}

func TestValidateForRunStateDir(t *testing.T) {
	c, err := Parse([]byte(edit(t, readExample(t), "state_dir", "<absent>")))
	if err != nil {
		t.Fatalf("Parse without state_dir: %v", err)
	}
	var ce *Error
	if err := c.ValidateForRun(); !errors.As(err, &ce) || ce.Key != "state_dir" {
		t.Errorf("ValidateForRun = %v, want *Error for state_dir", err)
	}
}

func TestParseAmount(t *testing.T) {
	cases := []struct {
		in    string
		minor int64
		ok    bool
	}{
		{"0.01", 1, true},
		{"12.5", 1250, true},
		{"3", 300, true},
		{"12.50", 1250, true},
		{"007.1", 710, true},
		{"100", 10000, true},
		{"9999999999.99", 999999999999, true},
		{"0009999999999.99", 999999999999, true},
		{"", 0, false},
		{"0", 0, false},
		{"0.00", 0, false},
		{"-1", 0, false},
		{"-0.01", 0, false},
		{"+1", 0, false},
		{"1.234", 0, false},
		{"1.", 0, false},
		{".5", 0, false},
		{"1.2.3", 0, false},
		{"1,50", 0, false},
		{"1e3", 0, false},
		{" 1", 0, false},
		{"abc", 0, false},
		{"NaN", 0, false},
		{"10000000000", 0, false},
		{"10000000000.00", 0, false},
		{"99999999999999999999999", 0, false},
		{"１", 0, false}, // fullwidth digit
	}
	for _, tc := range cases {
		minor, msg := parseAmount(tc.in)
		if ok := msg == ""; ok != tc.ok || minor != tc.minor {
			t.Errorf("parseAmount(%q) = %d, %q; want %d, ok=%v", tc.in, minor, msg, tc.minor, tc.ok)
		}
	}
}

// TestValidateChangesNothing: Validate only reads, whether the config is
// valid or not; the amounts in fen are derived by Parse and Default, and an
// amount changed after them is refused rather than silently re-derived.
func TestValidateChangesNothing(t *testing.T) {
	dir := t.TempDir()
	full := edit(t, readExample(t), "mqtt.url", "ssl://127.0.0.1:8883",
		"central.tickets", "true", "central.keys", "[{kid: c-1, public_key_file: "+centralKey(t, dir)+"}]",
		"central.max_test_amount", `"0.50"`, "test_sale.amount", `"12.5"`,
		"devices.keypad", "matrix", "devices.keypad_matrix",
		`{rows: [GPIO5, GPIO6], cols: [GPIO13, GPIO19], keys: ["1 2", "3 -"]}`)
	parse := func() *Config {
		c, err := Parse([]byte(full))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	if c := parse(); c.TestSale.Minor != 1250 || c.Central.MaxTestMinor != 50 {
		t.Fatalf("Parse derived Minor %d, MaxTestMinor %d; want 1250, 50", c.TestSale.Minor, c.Central.MaxTestMinor)
	}
	for _, tc := range []struct {
		name    string
		make    func() *Config
		change  func(*Config)
		wantKey string // "" for valid
	}{
		{"default", Default, func(*Config) {}, ""},
		{"parsed", parse, func(*Config) {}, ""},
		{"invalid", parse, func(c *Config) { c.Terminal.MID = "1" }, "terminal.mid"},
		{"amount changed", Default, func(c *Config) { c.TestSale.Amount = "12.5" }, "test_sale.amount"},
		{"amount and minor changed", Default, func(c *Config) { c.TestSale.Amount, c.TestSale.Minor = "12.5", 1250 }, ""},
		{"cap changed", parse, func(c *Config) { c.Central.MaxTestAmount = "0.20" }, "central.max_test_amount"},
		{"minor zeroed", Default, func(c *Config) { c.TestSale.Minor = 0 }, "test_sale.amount"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, twin := tc.make(), tc.make()
			tc.change(c)
			tc.change(twin)
			err := c.Validate()
			var ce *Error
			switch {
			case tc.wantKey == "" && err != nil:
				t.Errorf("Validate = %v", err)
			case tc.wantKey != "" && (!errors.As(err, &ce) || ce.Key != tc.wantKey):
				t.Errorf("Validate = %v, want a *Error for %s", err, tc.wantKey)
			}
			if !reflect.DeepEqual(c, twin) {
				t.Errorf("Validate changed the config:\n got %+v\nwant %+v", c, twin)
			}
			c.ValidateForRun()
			if !reflect.DeepEqual(c, twin) {
				t.Errorf("ValidateForRun changed the config")
			}
		})
	}
}

// TestCardTypesMatchProvisioning keeps the accepted strings in step with the
// provisioning flow, which reads card_type as a provisioning.CardType.
func TestCardTypesMatchProvisioning(t *testing.T) {
	for _, ct := range []provisioning.CardType{provisioning.Debit, provisioning.Credit} {
		c := Default()
		c.Merchant.CardType = string(ct)
		if err := c.Validate(); err != nil {
			t.Errorf("card_type %q: %v", ct, err)
		}
	}
}

// TestSimKeypadWithRealHost: the scripted keypad confirms the settlement
// card itself, so with a real host it needs the test-bench switch; with the
// simulated host, or a real keypad, it needs nothing.
func TestSimKeypadWithRealHost(t *testing.T) {
	real := []string{"host.address", "acquirer.example.com:8583"}
	for _, tc := range []struct {
		name string
		kv   []string
		ok   bool
	}{
		{"sim host", nil, true},
		{"real host", real, false},
		{"real host, test bench", append(real, "sim.scripted_keys_with_real_host", "true"), true},
		{"real host, real keypad", append(real, "devices.keypad", "tty"), true},
	} {
		_, err := Parse([]byte(edit(t, readExample(t), tc.kv...)))
		var ce *Error
		switch {
		case tc.ok && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case !tc.ok && (!errors.As(err, &ce) || ce.Key != "devices.keypad" || !strings.Contains(ce.Msg, "scripted_keys_with_real_host")):
			t.Errorf("%s: %v, want devices.keypad refused", tc.name, err)
		}
	}
}

// A cluster's brokers in mqtt.urls; the failover settings' defaults, and
// connect_jitter's 0s that means "at once" rather than "the default".
func TestMQTTBrokers(t *testing.T) {
	urls := []string{"ssl://a.example.com:8883", "ssl://b.example.com:8883", "mqtts://c.example.com:8883"}
	c, err := Parse([]byte(edit(t, readExample(t), "mqtt.urls", "["+strings.Join(urls, ", ")+"]",
		"mqtt.connect_jitter", "<absent>", "mqtt.reconnect_max", "<absent>", "mqtt.heartbeat", "<absent>")))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c.MQTT.Brokers(), urls) || !c.MQTT.On() {
		t.Errorf("Brokers() = %v, want %v", c.MQTT.Brokers(), urls)
	}
	if c.MQTT.ConnectJitter != DefaultConnectJitter || c.MQTT.ReconnectMax != time.Minute || c.MQTT.Heartbeat != 30*time.Second {
		t.Errorf("defaults: jitter %v, reconnect max %v, heartbeat %v", c.MQTT.ConnectJitter, c.MQTT.ReconnectMax, c.MQTT.Heartbeat)
	}
	for snippet, want := range map[string]time.Duration{"0s": 0, `""`: DefaultConnectJitter, "~": DefaultConnectJitter, "3s": 3 * time.Second} {
		c, err := Parse([]byte(edit(t, readExample(t), "mqtt.url", "tcp://127.0.0.1:1883", "mqtt.connect_jitter", snippet)))
		if err != nil {
			t.Fatal(err)
		}
		if c.MQTT.ConnectJitter != want {
			t.Errorf("connect_jitter: %s = %v, want %v", snippet, c.MQTT.ConnectJitter, want)
		}
		if b := c.MQTT.Brokers(); !slices.Equal(b, []string{"tcp://127.0.0.1:1883"}) {
			t.Errorf("Brokers() of url = %v", b)
		}
	}
	if c := Default(); c.MQTT.On() || c.MQTT.Brokers() != nil {
		t.Errorf("Default reports to %v", c.MQTT.Brokers())
	}
	// Tickets need TLS on every broker: plain urls are refused, naming urls.
	dir := t.TempDir()
	keys := "[{kid: c-2026a, public_key_file: " + centralKey(t, dir) + "}]"
	_, err = Parse([]byte(edit(t, readExample(t), "mqtt.urls", "[tcp://a.example.com:1883, tcp://b.example.com:1883]",
		"central.tickets", "true", "central.keys", keys)))
	var ce *Error
	if !errors.As(err, &ce) || ce.Key != "mqtt.urls" || !strings.Contains(ce.Msg, "central.tickets") {
		t.Errorf("tickets over plain urls: %v, want an error on mqtt.urls", err)
	}
}
