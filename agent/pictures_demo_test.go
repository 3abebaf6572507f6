//go:build !firmware

package agent

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/posagent/posagent/provisioning"
)

// TestDemoWithoutCJKFont: on a machine without the slip pictures' font the
// demo still ends live, keeps the slips as text, and says in one line how to
// get the pictures. (Not parallel: it points the font search at nothing.)
func TestDemoWithoutCJKFont(t *testing.T) {
	saved := slipFontPaths
	slipFontPaths = []string{filepath.Join(t.TempDir(), "no-such-font.ttc")}
	t.Cleanup(func() { slipFontPaths = saved })

	dir := t.TempDir()
	var out, errs bytes.Buffer
	res, err := Demo(context.Background(), DemoOptions{Options: Options{Stdout: &out, Stderr: &errs, SlipDir: dir, SlipPictures: true}})
	if err != nil || res.Checkpoint.Step != provisioning.StepLive {
		t.Fatalf("Demo = %v at %s\n%s\n%s", err, res.Checkpoint.Step, out.String(), errs.String())
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
