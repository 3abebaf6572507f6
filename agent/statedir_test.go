package agent

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/posagent/posagent/agent/acquirer"
	"github.com/posagent/posagent/agent/config"
	"github.com/posagent/posagent/agent/store"
)

// TestStartRemovesInterruptedWrites: the temp files a crash in the middle
// of an atomic write leaves in the state dir (here: of keys.json, with the
// TMK in clear, and of the checkpoint) are gone once the agent has started,
// and nothing in the state dir but keys.json holds the TMK.
func TestStartRemovesInterruptedWrites(t *testing.T) {
	dir := t.TempDir()
	tmkHex := "8f3a61c2d4e5b7091a2b3c4d5e6f7081"
	tmk, err := acquirer.ParseKey(tmkHex)
	if err != nil {
		t.Fatal(err)
	}
	ks := &acquirer.FileKeyStore{Path: filepath.Join(dir, KeyFile)}
	if err := ks.SaveKeys(acquirer.Keys{TMK: tmk}); err != nil {
		t.Fatal(err)
	}
	// What a power cut between WriteFile's write and its rename leaves: the
	// whole new file under the temp name.
	keysImage, err := os.ReadFile(ks.Path)
	if err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string][]byte{
		".keys.json.tmp-1234567":  keysImage,
		".keys.json.tmp-89":       keysImage[:len(keysImage)/2], // cut short mid-write
		".state.json.tmp-4242424": []byte(`{"schema":1,"step":"sign-on"`),
	} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if !store.IsTemp(".keys.json.tmp-1234567") {
		t.Fatal("the leftovers are not named as store.WriteFile names its temp files")
	}

	cfg := config.Default()
	cfg.StateDir = dir
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var logs bytes.Buffer
	if _, err := Run(ctx, cfg, Options{Stderr: &logs}); err != nil {
		t.Fatalf("run: %v\n%s", err, logs.String())
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if store.IsTemp(e.Name()) {
			t.Errorf("%s is still there", e.Name())
		}
		if e.IsDir() || e.Name() == KeyFile {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(strings.ToLower(string(b)), tmkHex) {
			t.Errorf("%s holds the TMK", e.Name())
		}
	}
	if !strings.Contains(logs.String(), ".keys.json.tmp-1234567") {
		t.Errorf("the removal is not logged:\n%s", logs.String())
	}
}
