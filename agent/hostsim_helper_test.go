package agent

import (
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/posagent/posagent/agent/sim/hostsim"
	"github.com/posagent/posagent/agent/sim/ledger"
)

// startHostsim runs the acquirer simulator of cfg on 127.0.0.1 with a fresh
// ledger in dir (file name), quiet unless cfg has a log, both closed when the
// test ends; it returns the host's address and its ledger.
func startHostsim(t *testing.T, dir, name string, cfg hostsim.Config) (string, *ledger.Ledger) {
	t.Helper()
	l, err := ledger.Open(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	cfg.Ledger = l
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	srv, err := hostsim.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	addr, err := srv.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return addr.String(), l
}
