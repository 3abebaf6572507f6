package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/posagent/posagent/agent/central/broker"
	"github.com/posagent/posagent/agent/central/mqtt"
	"github.com/posagent/posagent/agent/central/report/reporttest"
	"github.com/posagent/posagent/agent/testkit/bench"
	"github.com/posagent/posagent/provisioning"
	"github.com/posagent/posagent/provisioning/pan"
)

// fleet starts a broker with one terminal that has reported a finished test
// sale, and returns the broker URL.
func fleet(t *testing.T) string {
	t.Helper()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	b, err := broker.Start("127.0.0.1:0", quiet)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	r := reporttest.Start(t, mqtt.Options{URL: b.URL(), TID: "10000001", MID: "898310048160001", Serial: "SN1", Logger: quiet})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	card := pan.MustParse("6222021234567890128")
	r.Report(ctx, provisioning.Status{
		Step: provisioning.StepTestSale, State: provisioning.StateDone, Attempt: 1, Boot: 1, Card: card.Masked(),
		Sale: &provisioning.TxnRecord{STAN: 3, RC: "00", RRN: "000000000001", AuthCode: "123456", Masked: card.Masked(), Amount: 1},
		Time: time.Date(2025, 1, 2, 10, 0, 0, 0, time.UTC),
	})
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	return b.URL()
}

func TestUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		stderr string
	}{
		{"no command", nil, 2, "usage: posctl"},
		{"unknown command", []string{"frobnicate"}, 2, `unknown command "frobnicate"`},
		{"watch without --mqtt", []string{"watch"}, 2, "--mqtt is required"},
		{"unknown flag", []string{"watch", "--mqtt", "tcp://127.0.0.1:1", "--bogus"}, 2, "flag provided but not defined"},
		{"stray argument", []string{"watch", "--mqtt", "tcp://127.0.0.1:1", "extra"}, 2, `unexpected argument "extra"`},
		{"missing password file", []string{"watch", "--mqtt", "tcp://127.0.0.1:1", "--user", "u", "--password-file", "/nonexistent/pw"}, 1, "password file"},
		{"watch help", []string{"watch", "-h"}, 0, "usage: posctl watch"},
		{"metrics of a snapshot", []string{"watch", "--mqtt", "tcp://127.0.0.1:1", "--once", "--metrics", "127.0.0.1:0"}, 2, "--metrics needs a live watch"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := run(tc.args, &stdout, &stderr); code != tc.code {
				t.Errorf("exit %d, want %d; stderr:\n%s", code, tc.code, stderr.String())
			}
			if !strings.Contains(stderr.String(), tc.stderr) {
				t.Errorf("stderr lacks %q:\n%s", tc.stderr, stderr.String())
			}
		})
	}
	var stdout, stderr bytes.Buffer
	if code := run([]string{"help"}, &stdout, &stderr); code != 0 || !strings.Contains(stdout.String(), "watch") {
		t.Errorf("help: exit %d, stdout %q", code, stdout.String())
	}
}

func TestWatchOnce(t *testing.T) {
	url := fleet(t)
	dir := t.TempDir()
	pw := filepath.Join(dir, "pw")
	if err := os.WriteFile(pw, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	// The embedded broker lets everyone in: the flags only have to be accepted.
	code := run([]string{"watch", "--mqtt", url, "--once", "--user", "support", "--password-file", pw}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d; stderr:\n%s", code, stderr.String())
	}
	out := stdout.String()
	for _, want := range []string{
		"10000001 online  serial=SN1",
		"10000001 status  step=test-sale state=done attempt=1 card=622202*********0128 rc=00 rrn=000000000001",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("stdout lacks %q:\n%s", want, out)
		}
	}
	if regexp.MustCompile(`[0-9]{16,}`).MatchString(out) {
		t.Errorf("stdout shows a full card number:\n%s", out)
	}
	if strings.Contains(stdout.String()+stderr.String(), "s3cret") {
		t.Error("the password was printed")
	}

	stdout.Reset()
	if code := run([]string{"watch", "--mqtt", url, "--tid", "10000001", "--once", "--json"}, &stdout, &stderr); code != 0 {
		t.Fatalf("--json exit %d; stderr:\n%s", code, stderr.String())
	}
	for _, l := range strings.Split(strings.TrimSpace(stdout.String()), "\n") {
		var rec struct {
			Topic    string
			Retained bool
			Payload  map[string]any
		}
		if err := json.Unmarshal([]byte(l), &rec); err != nil || !rec.Retained || !strings.HasPrefix(rec.Topic, "pos/v1/10000001/") {
			t.Errorf("line %q: %+v %v", l, rec, err)
		}
	}
}

// TestWatchTable: --table --once folds the retained snapshot into the fleet
// table, one row per terminal, card numbers never shown.
func TestWatchTable(t *testing.T) {
	url := fleet(t)
	var stdout, stderr bytes.Buffer
	if code := run([]string{"watch", "--mqtt", url, "--once", "--table"}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d; stderr:\n%s", code, stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("want a header and one row:\n%s", stdout.String())
	}
	for _, col := range []string{"TID", "MID", "STEP", "STATE"} {
		if !strings.Contains(strings.ToUpper(lines[0]), col) {
			t.Errorf("header lacks %s: %q", col, lines[0])
		}
	}
	for _, cell := range []string{"10000001", "898310048160001", "test-sale", "done"} {
		if !strings.Contains(lines[1], cell) {
			t.Errorf("row lacks %q: %q", cell, lines[1])
		}
	}
	if regexp.MustCompile(`[0-9]{16,}`).MatchString(stdout.String()) {
		t.Errorf("the table shows a full card number:\n%s", stdout.String())
	}
}

func TestWatchUnreachableBroker(t *testing.T) {
	url := "tcp://" + bench.ReserveAddr(t) // nothing listens, nothing else can
	var stdout, stderr bytes.Buffer
	if code := run([]string{"watch", "--mqtt", url, "--once"}, &stdout, &stderr); code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	if lines := strings.Count(stderr.String(), "\n"); lines != 1 || !strings.HasPrefix(stderr.String(), "posctl: ") {
		t.Errorf("stderr should be one line:\n%s", stderr.String())
	}
}
