package agent

import (
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/posagent/posagent/agent/acquirer"
	"github.com/posagent/posagent/agent/config"
	"github.com/posagent/posagent/agent/sim/hostsim"
	"github.com/posagent/posagent/agent/sim/ledger"
	"github.com/posagent/posagent/agent/testkit/bench"
	"github.com/posagent/posagent/provisioning"
)

// The host link over TLS with the acquirer's CA pinned: the install goes
// live through it, and a host the CA did not sign is never sent a byte.
func TestHostLinkTLS(t *testing.T) {
	pki, err := bench.MakePKI(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	other, err := bench.MakePKI(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		ca   string
		live bool
	}{{"pinned CA", pki.CAFile, true}, {"another CA", other.CAFile, false}} {
		t.Run(tc.name, func(t *testing.T) {
			tmk, err := acquirer.ParseKey("0123456789ABCDEFFEDCBA9876543210")
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			cert, err := tls.LoadX509KeyPair(pki.ServerCert, pki.ServerKey)
			if err != nil {
				t.Fatal(err)
			}
			addr, l := startHostsim(t, dir, "ledger.jsonl", hostsim.Config{TMK: tmk, TLS: &tls.Config{Certificates: []tls.Certificate{cert}}})

			cfg := config.Default()
			cfg.StateDir = filepath.Join(dir, "state")
			cfg.Host.Address = addr
			cfg.Host.TLSCAFile, cfg.Host.TLSServerName, cfg.Host.PublicLink = tc.ca, "localhost", true
			cfg.Host.Timeout = 5 * time.Second
			cfg.Sim.ScriptedKeysWithRealHost = true // the test plays the installer
			if err := os.MkdirAll(cfg.StateDir, 0o700); err != nil {
				t.Fatal(err)
			}
			ks := &acquirer.FileKeyStore{Path: filepath.Join(cfg.StateDir, KeyFile)}
			if err := ks.SaveKeys(acquirer.Keys{TMK: tmk}); err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			res, err := Run(context.Background(), cfg, Options{Stdout: &out, Stderr: io.Discard})
			if tc.live {
				if err != nil || res.Checkpoint.Step != provisioning.StepLive {
					t.Fatalf("Run = %v at %s\n%s", err, res.Checkpoint.Step, out.String())
				}
				if es := ledger.Money(l.Entries()); len(es) != 2 || es[0].Event != ledger.EventApproved || es[1].Event != ledger.EventVoided {
					t.Fatalf("host ledger %+v, want the sale and its void", es)
				}
				return
			}
			if err == nil || res.Checkpoint.Failure == nil || res.Checkpoint.Failure.Code != "E_NETWORK" {
				t.Fatalf("Run = %v, failure %+v\n%s", err, res.Checkpoint.Failure, out.String())
			}
			if n := len(l.Entries()); n != 0 {
				t.Fatalf("a host the CA did not sign booked %d messages", n)
			}
			if !strings.Contains(res.Checkpoint.Failure.Cause, "tls") {
				t.Errorf("cause %q does not say TLS", res.Checkpoint.Failure.Cause)
			}
		})
	}
}
