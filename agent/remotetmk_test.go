package agent

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/posagent/posagent/agent/acquirer"
	"github.com/posagent/posagent/agent/config"
	"github.com/posagent/posagent/agent/sim/hostsim"
	"github.com/posagent/posagent/agent/sim/inproc"
	"github.com/posagent/posagent/provisioning"
	"github.com/posagent/posagent/provisioning/pan"
)

// A terminal without an injected TMK, on the remote-tmk profile, downloads
// its TMK from the host, goes live with it, and keeps its private key 0600
// in the state dir; nothing of either key is on stdout or in the logs.
func TestRemoteTMKInstall(t *testing.T) {
	tmk, err := acquirer.ParseKey("0123456789ABCDEFFEDCBA9876543210")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	// The host's first random bytes are the TMK it will make, so that the
	// merchant's account check, which the acquirer computes under the TMK,
	// can be in the config before the download.
	downloaded, err := acquirer.ParseKey("89ABCDEF01234567FEDCBA9876543210")
	if err != nil {
		t.Fatal(err)
	}
	addr, _ := startHostsim(t, dir, "ledger.jsonl", hostsim.Config{TMK: tmk, TMKDownload: true,
		Rand: io.MultiReader(bytes.NewReader(downloaded), rand.Reader)})

	cfg := config.Default()
	cfg.StateDir = filepath.Join(dir, "state")
	cfg.Host.Address, cfg.Host.Profile, cfg.Host.Timeout = addr, "remote-tmk", 5*time.Second
	cfg.Sim.ScriptedKeysWithRealHost = true
	if cfg.Merchant.AccountCheck, err = acquirer.AccountCheck(downloaded, cfg.Terminal.TID, pan.MustParse(inproc.DemoPAN)); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(cfg.StateDir, 0o700); err != nil {
		t.Fatal(err)
	}
	var out, logs bytes.Buffer
	res, err := Run(context.Background(), cfg, Options{Stdout: &out, Stderr: &logs})
	if err != nil || res.Checkpoint.Step != provisioning.StepLive {
		t.Fatalf("Run = %v at %s\n%s\n%s", err, res.Checkpoint.Step, out.String(), logs.String())
	}
	fi, err := os.Stat(filepath.Join(cfg.StateDir, TerminalKeyFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("terminal key file: %v %v", fi, err)
	}
	ks := &acquirer.FileKeyStore{Path: filepath.Join(cfg.StateDir, KeyFile)}
	k, err := ks.LoadKeys()
	if err != nil || !bytes.Equal(k.TMK, downloaded) || len(k.PendingTMK) != 0 {
		t.Fatalf("key store %v %v", k, err)
	}
	pemBytes, _ := os.ReadFile(filepath.Join(cfg.StateDir, TerminalKeyFile))
	for _, secret := range []string{strings.ToUpper(hexs(k.TMK)), hexs(k.TMK), string(pemBytes[40:80])} {
		if strings.Contains(out.String(), secret) || strings.Contains(logs.String(), secret) {
			t.Fatal("a key is on stdout or in the logs")
		}
	}
}

func hexs(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 0, 2*len(b))
	for _, c := range b {
		out = append(out, digits[c>>4], digits[c&15])
	}
	return string(out)
}
