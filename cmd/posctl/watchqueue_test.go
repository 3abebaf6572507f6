//go:build !firmware

package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/posagent/posagent/agent/testkit/bench"
)

func TestWatchQueueUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		stderr string
	}{
		{"both modes", []string{"watch", "--amqp", "amqp://127.0.0.1:1/", "--mqtt", "tcp://127.0.0.1:1"}, 2, "--mqtt and --amqp together"},
		{"once", []string{"watch", "--amqp", "amqp://127.0.0.1:1/", "--once"}, 2, "--once has no meaning in queue mode"},
		{"tid", []string{"watch", "--amqp", "amqp://127.0.0.1:1/", "--tid", "10000001"}, 2, "--tid and --tid-prefix have no meaning"},
		{"tid prefix", []string{"watch", "--amqp", "amqp://127.0.0.1:1/", "--tid-prefix", "1"}, 2, "--tid and --tid-prefix have no meaning"},
		{"no shards", []string{"watch", "--amqp", "amqp://127.0.0.1:1/", "--shards", "0"}, 2, "--shards must be at least 1"},
		{"not amqp", []string{"watch", "--amqp", "tcp://u:hunter2@127.0.0.1:1"}, 2, "--amqp wants amqp://"},
		{"tid and prefix", []string{"watch", "--mqtt", "tcp://127.0.0.1:1", "--tid", "1", "--tid-prefix", "1"}, 2, "--tid and --tid-prefix together"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := run(tc.args, &stdout, &stderr); code != tc.code {
				t.Errorf("exit %d, want %d; stderr:\n%s", code, tc.code, stderr.String())
			}
			if !strings.Contains(stderr.String(), tc.stderr) {
				t.Errorf("stderr lacks %q:\n%s", tc.stderr, stderr.String())
			}
			if strings.Contains(stderr.String(), "hunter2") {
				t.Errorf("stderr shows the password:\n%s", stderr.String())
			}
		})
	}
}

func TestWatchQueueNothingListens(t *testing.T) {
	addr := bench.ReserveAddr(t)
	var stdout, stderr bytes.Buffer
	code := run([]string{"watch", "--amqp", "amqp://" + addr + "/", "--user", "monitor"}, &stdout, &stderr)
	if code != 1 || !strings.Contains(stderr.String(), "monitor: connect amqp://monitor") {
		t.Errorf("exit %d, stderr:\n%s", code, stderr.String())
	}
}
