package demo

import (
	"bytes"
	"context"
	"errors"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/posagent/posagent/agent"
	"github.com/posagent/posagent/agent/sim/inproc"
	"github.com/posagent/posagent/agent/sim/slipimage"
	"github.com/posagent/posagent/provisioning"
)

func TestDemoEndsLiveWithEmbeddedBroker(t *testing.T) {
	var out, errs bytes.Buffer
	res, err := Run(context.Background(), Options{Options: agent.Options{Stdout: &out, Stderr: &errs}})
	if err != nil {
		t.Fatalf("Run = %v\n%s\n%s", err, out.String(), errs.String())
	}
	// Two copies of the sale's slip and two of the void's.
	if res.Checkpoint.Step != provisioning.StepLive || res.Printed != 4 {
		t.Fatalf("ended at %s with %d slip copies", res.Checkpoint.Step, res.Printed)
	}
	text := out.String()
	for _, want := range []string{
		"retained status of 10000001 on the broker: step=live state=live",
		"demo| final state: live",
		"622202*********0128 /I",
		"银联POS签购单",
		"撤销 VOID",
		"原凭证号 ORIG TRACE:",
		"发卡行 ISSUER:          " + inproc.DefaultIssuer,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	// The last word, whatever the monitor still receives: make test checks
	// that `make demo` ends with it.
	if lines := strings.Split(strings.TrimSpace(text), "\n"); lines[len(lines)-1] != "demo| final state: live" {
		t.Errorf("last line %q, want the final state", lines[len(lines)-1])
	}
	for _, p := range inproc.Profiles {
		if strings.Contains(text+errs.String(), p.PAN) {
			t.Fatal("demo output contains a full PAN")
		}
	}
}

func TestDemoRetryWithAnotherCard(t *testing.T) {
	var out bytes.Buffer
	res, err := Run(context.Background(), Options{
		Options: agent.Options{Stdout: &out, Keys: "ENTER ENTER"},
		Cards:   []string{"name-mismatch", "debit"},
	})
	if err != nil || res.Checkpoint.Step != provisioning.StepLive {
		t.Fatalf("Run = %v at %s\n%s", err, res.Checkpoint.Step, out.String())
	}
	if !strings.Contains(out.String(), provisioning.RejectNameMismatch) {
		t.Error("the first card's rejection is not shown")
	}
}

// The demo's own keypad (no Keys, no KeysFile) answers once per card: a
// refused card is retried with the next one and the accepted one confirmed.
func TestDemoDefaultKeysRetryWithTheNextCard(t *testing.T) {
	var out bytes.Buffer
	res, err := Run(context.Background(), Options{Options: agent.Options{Stdout: &out}, Cards: []string{"foreign", "debit"}})
	if err != nil || res.Checkpoint.Step != provisioning.StepLive {
		t.Fatalf("Run = %v at %s\n%s", err, res.Checkpoint.Step, out.String())
	}
	text := out.String()
	refused, live := strings.Index(text, provisioning.RejectNotUnionPay), strings.Index(text, "demo| final state: live")
	if refused < 0 || live < refused {
		t.Errorf("want the refusal (%s) and then live:\n%s", provisioning.RejectNotUnionPay, text)
	}
}

// A refused card with no other card to try stops for the installer with the
// refusal's code, instead of retrying for ever.
func TestDemoNeedsAttentionWhenNoKeyAnswers(t *testing.T) {
	var out bytes.Buffer
	res, err := Run(context.Background(), Options{Options: agent.Options{Stdout: &out}, Cards: []string{"foreign"}})
	if !errors.Is(err, agent.ErrNeedsAttention) || res.Checkpoint.Step != provisioning.StepNeedsAttention {
		t.Fatalf("Run = %v at %s", err, res.Checkpoint.Step)
	}
	if res.Checkpoint.Failure == nil || res.Checkpoint.Failure.Code != provisioning.RejectNotUnionPay {
		t.Errorf("failure = %+v, want %s", res.Checkpoint.Failure, provisioning.RejectNotUnionPay)
	}
}

// BenchmarkDemo is the whole `posagent demo` in process: embedded broker,
// monitor, every step, the slip, and the retained status read back.
func BenchmarkDemo(b *testing.B) {
	for b.Loop() {
		res, err := Run(context.Background(), Options{})
		if err != nil || res.Checkpoint.Step != provisioning.StepLive {
			b.Fatalf("Run = %v", err)
		}
	}
}

// TestDemoSlipPictures: the demo leaves the test sale's slip as PNG pictures
// (merchant and cardholder copies) next to the text copies.
func TestDemoSlipPictures(t *testing.T) {
	if _, err := slipimage.New(slipimage.Options{}); err != nil {
		if os.Getenv("POSAGENT_REQUIRE_BENCH") == "1" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	dir := t.TempDir()
	var out bytes.Buffer
	if _, err := Run(context.Background(), Options{Options: agent.Options{Stdout: &out, SlipDir: dir, SlipPictures: true}}); err != nil {
		t.Fatal(err)
	}
	pics, _ := filepath.Glob(filepath.Join(dir, "sale-*.png"))
	texts, _ := filepath.Glob(filepath.Join(dir, "sale-*.txt"))
	if len(pics) != 2 || len(texts) != 2 {
		t.Fatalf("%d pictures and %d texts in %s, want 2 and 2\n%s", len(pics), len(texts), dir, out.String())
	}
	for _, p := range pics {
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(f)
		f.Close()
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		// A 58 mm slip with some 40 lines of text.
		if b := img.Bounds(); b.Dx() < 384 || b.Dy() < 40*24 {
			t.Errorf("%s is %v, not a slip", p, b)
		}
		if !strings.Contains(out.String(), "slip| picture: "+p) {
			t.Errorf("demo did not say where %s is", p)
		}
	}
}
