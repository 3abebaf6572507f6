package demo

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/posagent/posagent/agent"
	"github.com/posagent/posagent/provisioning"
)

// TestDemoWithoutCJKFont: on a machine without the slip pictures' font the
// demo still ends live, keeps the slips as text, and says in one line how to
// get the pictures. (It points the font search at nothing.)
func TestDemoWithoutCJKFont(t *testing.T) {
	dir := t.TempDir()
	var out, errs bytes.Buffer
	res, err := Run(context.Background(), Options{Options: agent.Options{Stdout: &out, Stderr: &errs, SlipDir: dir, SlipPictures: true,
		SlipFontPaths: []string{filepath.Join(t.TempDir(), "no-such-font.ttc")}}})
	if err != nil || res.Checkpoint.Step != provisioning.StepLive {
		t.Fatalf("Run = %v at %s\n%s\n%s", err, res.Checkpoint.Step, out.String(), errs.String())
	}
	var said []string
	for _, line := range strings.Split(out.String()+errs.String(), "\n") {
		if strings.Contains(line, "font") {
			said = append(said, line)
		}
	}
	if len(said) != 1 || !strings.Contains(said[0], "slips as text only") || !strings.Contains(said[0], "scripts/deps.sh demo") {
		t.Errorf("want one line saying the slips are text only and how to get pictures, got %q", said)
	}
	pics, _ := filepath.Glob(filepath.Join(dir, "*.png"))
	texts, _ := filepath.Glob(filepath.Join(dir, "sale-*.txt"))
	if len(pics) != 0 || len(texts) != 2 {
		t.Errorf("%d pictures and %d text slips in %s, want 0 and 2", len(pics), len(texts), dir)
	}
}
