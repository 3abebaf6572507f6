// Package demo is posagent's demo: the whole install on the simulated
// devices and host, reporting to an MQTT broker (the embedded mochi broker
// unless one is given) while a monitor prints what central monitoring
// receives. Firmware builds leave it out: a terminal runs the install on
// its own devices (agent.Run).
package demo

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/posagent/posagent/agent"
	"github.com/posagent/posagent/agent/central/broker"
	"github.com/posagent/posagent/agent/central/monitor"
	"github.com/posagent/posagent/agent/config"
)

// Options set up a demo run: the whole install on simulated devices.
type Options struct {
	agent.Options
	// MQTT is an external broker's URL; "" starts the embedded broker on loopback.
	MQTT string
	// StateDir keeps the checkpoint between runs; "" uses a temporary directory
	// removed afterwards.
	StateDir string
	// Cards are the virtual cards inserted in turn (sim profile names); nil = debit.
	Cards []string
}

// defaultKeys is the demo's keypad when neither Keys nor KeysFile is given: one
// ENTER per card, pressed as an installer standing at the terminal would. A
// refused card's ENTER retries the step with the next card; the accepted
// card's ENTER confirms it. The script is bounded on purpose: when the last
// card is refused too, its ENTER retries once with the same card and then
// nothing answers, so the demo stops in needs-attention with the refusal
// code instead of retrying forever.
func defaultKeys(cards int) string {
	if cards < 1 {
		cards = 1
	}
	return strings.TrimSpace(strings.Repeat("ENTER ", cards))
}

// Run runs the install flow with the default demo config, reporting to an
// MQTT broker while a monitor prints what central monitoring receives.
func Run(ctx context.Context, d Options) (agent.Result, error) {
	out := &lockedWriter{w: d.Stdout}
	if d.Stdout == nil {
		out.w = io.Discard
	}
	d.Stdout = out
	if d.Stderr == nil {
		d.Stderr = io.Discard
	}
	cfg := config.Default()
	cfg.Sim.Cards = d.Cards
	if d.Keys == "" && d.KeysFile == "" {
		d.Keys = defaultKeys(len(d.Cards))
	}
	if d.StateDir == "" {
		dir, err := os.MkdirTemp("", "posagent-demo-")
		if err != nil {
			return agent.Result{}, err
		}
		defer os.RemoveAll(dir)
		d.StateDir = dir
	}
	cfg.StateDir = d.StateDir

	url := d.MQTT
	if url == "" {
		// The embedded broker is the demo's alone: a terminal always
		// reports to central's.
		b, err := broker.Start("127.0.0.1:0", slog.New(slog.NewTextHandler(d.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
		if err != nil {
			return agent.Result{}, fmt.Errorf("demo: embedded broker: %w", err)
		}
		defer b.Close()
		url = b.URL()
		fmt.Fprintf(out, "demo| embedded MQTT broker at %s\n", url)
	}
	cfg.MQTT.URL = url
	fmt.Fprintf(out, "demo| terminal TID %s MID %s, state in %s\n", cfg.Terminal.TID, cfg.Terminal.MID, cfg.StateDir)

	wctx, stopWatch := context.WithCancel(ctx)
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		err := monitor.Watch(wctx, monitor.Options{URL: url, TID: cfg.Terminal.TID, Out: &prefixWriter{w: out, prefix: "monitor| "}})
		if err != nil && wctx.Err() == nil {
			fmt.Fprintf(out, "demo| monitor: %v\n", err)
		}
	}()
	// The monitor stops before the last lines, so "final state" is the
	// demo's last word and no late event prints after it.
	stopMonitor := func() { stopWatch(); <-watched }
	defer stopMonitor()

	res, err := agent.Run(ctx, cfg, d.Options)
	if err != nil {
		stopMonitor()
		step := string(res.Checkpoint.Step)
		if step == "" {
			step = "not started"
		}
		fmt.Fprintf(out, "demo| final state: %s (%v)\n", step, err)
		return res, err
	}
	lctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	st, err := monitor.Latest(lctx, url, cfg.Terminal.TID)
	stopMonitor()
	if err != nil {
		return res, fmt.Errorf("demo: reading back the retained status: %w", err)
	}
	fmt.Fprintf(out, "demo| retained status of %s on the broker: step=%s state=%s\n", st.TID, st.Step, st.State)
	fmt.Fprintf(out, "demo| final state: %s\n", res.Checkpoint.Step)
	return res, nil
}

// lockedWriter serialises writes from the flow and the monitor goroutine.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// prefixWriter prefixes each complete line, buffering partial ones.
type prefixWriter struct {
	w      io.Writer
	prefix string
	buf    []byte
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	p.buf = append(p.buf, b...)
	for {
		i := bytes.IndexByte(p.buf, '\n')
		if i < 0 {
			return len(b), nil
		}
		line := append([]byte(p.prefix), p.buf[:i+1]...)
		p.buf = p.buf[i+1:]
		if _, err := p.w.Write(line); err != nil {
			return len(b), err
		}
	}
}
