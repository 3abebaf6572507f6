package agent

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/posagent/posagent/agent/sim"
	"github.com/posagent/posagent/provisioning"
)

func TestDemoEndsLiveWithEmbeddedBroker(t *testing.T) {
	var out, errs bytes.Buffer
	res, err := Demo(context.Background(), DemoOptions{Options: Options{Stdout: &out, Stderr: &errs}})
	if err != nil {
		t.Fatalf("Demo = %v\n%s\n%s", err, out.String(), errs.String())
	}
	if res.Checkpoint.Step != provisioning.StepLive || res.Printed != 2 {
		t.Fatalf("ended at %s with %d slip copies", res.Checkpoint.Step, res.Printed)
	}
	text := out.String()
	for _, want := range []string{
		"retained status of 10000001 on the broker: step=live state=live",
		"demo| final state: live",
		"622202*********0128 /I",
		"银联POS签购单",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	for _, p := range sim.Profiles {
		if strings.Contains(text+errs.String(), p.PAN) {
			t.Fatal("demo output contains a full PAN")
		}
	}
}

func TestDemoRetryWithAnotherCard(t *testing.T) {
	var out bytes.Buffer
	res, err := Demo(context.Background(), DemoOptions{
		Options: Options{Stdout: &out, Keys: "ENTER ENTER"},
		Cards:   []string{"name-mismatch", "debit"},
	})
	if err != nil || res.Checkpoint.Step != provisioning.StepLive {
		t.Fatalf("Demo = %v at %s\n%s", err, res.Checkpoint.Step, out.String())
	}
	if !strings.Contains(out.String(), provisioning.RejectNameMismatch) {
		t.Error("the first card's rejection is not shown")
	}
}

func TestDemoNeedsAttentionWhenNoKeyAnswers(t *testing.T) {
	var out bytes.Buffer
	res, err := Demo(context.Background(), DemoOptions{Options: Options{Stdout: &out}, Cards: []string{"foreign"}})
	if !errors.Is(err, ErrNeedsAttention) || res.Checkpoint.Step != provisioning.StepNeedsAttention {
		t.Fatalf("Demo = %v at %s", err, res.Checkpoint.Step)
	}
}

// BenchmarkDemo is the whole `posagent demo` in process: embedded broker,
// monitor, every step, the slip, and the retained status read back.
func BenchmarkDemo(b *testing.B) {
	for b.Loop() {
		res, err := Demo(context.Background(), DemoOptions{})
		if err != nil || res.Checkpoint.Step != provisioning.StepLive {
			b.Fatalf("Demo = %v", err)
		}
	}
}
