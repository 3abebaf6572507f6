package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/posagent/posagent/agent/central/monitor"
	"github.com/posagent/posagent/agent/central/mqtt"
	"github.com/posagent/posagent/agent/testkit/bench"
	"github.com/posagent/posagent/provisioning"
)

// `posagent run` with mqtt.urls: the terminal's start node (by its TID) is
// down, so it moves to the other broker, and the install is reported there.
func TestRunWithBrokerList(t *testing.T) {
	m := bench.StartMosquitto(t)
	dead := "tcp://" + bench.ReserveAddr(t)
	urls := []string{m.URL, dead}
	if mqtt.StartIndex(demoTID, 2) != 1 {
		urls[0], urls[1] = urls[1], urls[0]
	}
	dir := t.TempDir()
	path := runConfig(t, dir, "", [2]string{"  urls: []  ", `  urls: ["` + urls[0] + `", "` + urls[1] + `"]  `})
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"run", "--config", path}, &stdout, &stderr); code != 0 {
		t.Fatalf("run = %d\n%s\n%s", code, stdout.String(), stderr.String())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := monitor.Latest(ctx, m.URL, demoTID)
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr.String())
	}
	if st.Step != provisioning.StepLive || st.State != provisioning.StateLive {
		t.Errorf("retained status on the live broker = %s/%s, want live", st.Step, st.State)
	}
	if out := stdout.String() + stderr.String(); !strings.Contains(out, "broker="+dead) || !strings.Contains(out, "broker="+m.URL) {
		t.Errorf("the log names neither broker tried:\n%s", out)
	}
}
