package agent

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/posagent/posagent/agent/config"
)

// withoutSimulators runs the test as a firmware build would: no simulator.
func withoutSimulators(t *testing.T) {
	saved := newSimulator
	newSimulator = nil
	t.Cleanup(func() { newSimulator = saved })
}

// A build without simulators refuses, at start and as a config error, each
// config key naming "sim" and the crash tests' pause points; it never
// reaches the state dir.
func TestNoSimulatorsRefusesSim(t *testing.T) {
	withoutSimulators(t)
	real := func(c *config.Config) {
		c.Devices.CardReader, c.Host.Address, c.Devices.Printer = "pcsc", "127.0.0.1:5000", "serial"
	}
	for _, tc := range []struct {
		key  string
		edit func(*config.Config)
	}{
		{"devices.card_reader", func(c *config.Config) { real(c); c.Devices.CardReader = config.SimDevice }},
		{"host.address", func(c *config.Config) { real(c); c.Host.Address = config.SimDevice }},
		{"devices.printer", func(c *config.Config) { real(c); c.Devices.Printer = config.SimDevice }},
	} {
		t.Run(tc.key, func(t *testing.T) {
			cfg := config.Default()
			tc.edit(cfg)
			var ce *config.Error
			if err := checkSimulated(cfg, Options{}); !errors.As(err, &ce) || ce.Key != tc.key || !strings.Contains(ce.Msg, "not in this build") {
				t.Fatalf("checkSimulated = %v, want a config error on %s", err, tc.key)
			}
		})
	}
	cfg := config.Default()
	real(cfg)
	if err := checkSimulated(cfg, Options{}); err != nil {
		t.Errorf("real devices refused: %v", err)
	}
	if err := checkSimulated(cfg, Options{PauseAt: "enter:sign-on"}); err == nil || !strings.Contains(err.Error(), "pause points") {
		t.Errorf("--pause-at without simulators: %v", err)
	}
	// Run says so before anything else: the default (simulated) config.
	def := config.Default()
	def.StateDir = filepath.Join(t.TempDir(), "state")
	var ce *config.Error
	if _, err := Run(context.Background(), def, Options{}); !errors.As(err, &ce) || ce.Key != "devices.card_reader" {
		t.Errorf("Run of the simulated default = %v", err)
	}
	if _, err := os.Stat(def.StateDir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the refused run made its state dir: %v", err)
	}
}
