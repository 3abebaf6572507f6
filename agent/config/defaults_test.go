package config

import (
	"errors"
	"reflect"
	"slices"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/posagent/posagent/agent/acquirer"
	"github.com/posagent/posagent/agent/sim/inproc"
	"github.com/posagent/posagent/provisioning/pan"
)

func TestDefault(t *testing.T) {
	c := Default()
	if err := c.Validate(); err != nil {
		t.Fatalf("Default().Validate: %v", err)
	}
	if c.TestSale.Minor != 1 {
		t.Errorf("Minor = %d, want 1", c.TestSale.Minor)
	}
	var ce *Error
	if err := c.ValidateForRun(); !errors.As(err, &ce) || ce.Key != "state_dir" {
		t.Errorf("ValidateForRun without state_dir = %v, want *Error for state_dir", err)
	}
	c.StateDir = t.TempDir()
	if err := c.ValidateForRun(); err != nil {
		t.Errorf("ValidateForRun with state_dir: %v", err)
	}

	// The check value must be that of the simulated debit card under the
	// demo's TMK and TID, or the demo could never bind.
	tmk, err := acquirer.ParseKey(inproc.DemoTMK)
	if err != nil {
		t.Fatal(err)
	}
	want, err := acquirer.AccountCheck(tmk, c.Terminal.TID, pan.MustParse(inproc.DemoPAN))
	if err != nil || want != c.Merchant.AccountCheck {
		t.Errorf("AccountCheck is not the demo card's under the demo TMK (%v)", err)
	}

	// Each call is a fresh value.
	c.Binding.AcceptedBINs[0] = "4"
	if Default().Binding.AcceptedBINs[0] != "62" {
		t.Error("Default shares its slice between calls")
	}
}

// TestMarshalRoundTrip: the demo may write Default() out with yaml.Marshal;
// what it writes must parse back to the same config.
func TestMarshalRoundTrip(t *testing.T) {
	want := Default()
	want.StateDir = "/tmp/posagent-demo"
	want.MQTT.URL = "tcp://127.0.0.1:1883"
	want.Host.Timeout = 90 * time.Second
	want.Sim.Cards = []string{"credit", "debit"}
	b, err := yaml.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Parse(b)
	if err != nil {
		t.Fatalf("Parse(Marshal(Default())): %v\n%s", err, b)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("round trip:\n got %+v\nwant %+v", got, want)
	}
}

func TestDefaultsApplied(t *testing.T) {
	minimal := `
terminal: {mid: "898310048990001", tid: "10000001", serial: PA-1}
merchant:
  name: Shop
  legal_person: LI SI
  account_check: ` + demoCheck + `
  card_type: credit
host: {address: "10.0.0.1:8583"}
sim: {scripted_keys_with_real_host: true}
`
	c, err := Parse([]byte(minimal))
	if err != nil {
		t.Fatal(err)
	}
	if c.Host.TPDU != DefaultTPDU || c.Host.Header != DefaultHeader || c.Host.Timeout != 30*time.Second ||
		c.MQTT.Keepalive != 30*time.Second || !reflect.DeepEqual(c.Devices, Devices{CardReader: "sim", Printer: "sim", PrinterWidth: 32, PrinterLine: defaultLine, Magstripe: "none", MagstripeLine: defaultLine, MagstripeFraming: "magtek", Keypad: "sim", Screen: "sim", ScreenRows: 8, ScreenCols: 24}) ||
		c.Host.MAC != "unionpay-ecb" || c.Host.KeyMode != "004" || c.Host.MACFullKey ||
		c.TestSale.Amount != "0.01" || c.TestSale.Minor != 1 ||
		!slices.Equal(c.Binding.AcceptedBINs, []string{"62"}) || c.Sim.Card != "debit" || c.Sim.Cards != nil {
		t.Errorf("defaults not applied: %+v", c)
	}
}
