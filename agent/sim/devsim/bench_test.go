package devsim

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/posagent/posagent/drivers/magstripe"
	"github.com/posagent/posagent/drivers/printer"
)

func TestBenchCommands(t *testing.T) {
	ctx := testCtx(t)
	dir := t.TempDir()
	b, err := NewBench(dir, "lines")
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	for _, name := range []string{"ttyMSR", "ttyPRN", "slips"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	port, _ := open(t, ctx, filepath.Join(dir, "ttyMSR"))
	r := magstripe.NewReader(port, magstripe.Config{Framing: magstripe.Lines(1, 2, 3), Now: func() time.Time { return now }})
	for _, cmd := range []string{"garbage", "swipe good"} {
		if _, err := b.Exec(cmd); err != nil {
			t.Fatal(err)
		}
	}
	if sw, err := r.Swipe(ctx, false); err != nil || sw.PAN.IsZero() {
		t.Fatalf("%+v %v", sw, err)
	}
	pport, _ := open(t, ctx, filepath.Join(dir, "ttyPRN"))
	prn := printer.New(pport, printer.Options{})
	if _, err := b.Exec("paper out"); err != nil {
		t.Fatal(err)
	}
	if err := prn.SelfTest(ctx); !errors.Is(err, printer.ErrPaperEnd) {
		t.Fatalf("paper out: %v", err)
	}
	for _, cmd := range []string{"paper in", "paper after 3", "cover shut", "slips", "help", "", "unplug", "plug"} {
		if _, err := b.Exec(cmd); err != nil {
			t.Errorf("%q: %v", cmd, err)
		}
	}
	for _, bad := range []string{"swipe nosuch", "paper after x", "cover", "dance"} {
		if _, err := b.Exec(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if _, err := NewBench(t.TempDir(), "morse"); err == nil {
		t.Error("unknown framing accepted")
	}
}
