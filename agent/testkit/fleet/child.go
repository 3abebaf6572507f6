package fleet

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/posagent/posagent/agent/central/mqtt"
	"github.com/posagent/posagent/agent/central/report"
)

// The environment of a child: its Config as JSON, and the terminals'
// password on its own, so that it is in no error message that quotes the
// configuration.
const (
	childEnv    = "POSAGENT_FLEET_CHILD"
	passwordEnv = "POSAGENT_FLEET_PASSWORD"
)

// Config is one child's share of a fleet.
type Config struct {
	// URLs are the brokers (mqtt.Options.URLs): each terminal starts on the
	// one its TID picks (mqtt.StartIndex) and fails over round robin.
	URLs []string `json:"urls"`
	// Prefix and the index make the TID: Prefix + "%06d" of i, for i in
	// [First, End).
	Prefix     string `json:"prefix"`
	First, End int
	// Username is the terminals' login (one user for the whole fleet: a
	// user per terminal is one rabbitmqctl call each); the password is
	// Launch's argument.
	Username string `json:"username,omitempty"`
	// Install: report a whole install (Install) once connected, and count
	// the terminal when the broker has acknowledged all of it. Without it
	// the terminals only connect.
	Install bool `json:"install"`
	// ReconnectMax and ConnectJitter are the client's (mqtt.Options; 0
	// ReconnectMax is its default, a minute).
	ReconnectMax  time.Duration `json:"reconnect_max"`
	ConnectJitter time.Duration `json:"connect_jitter"`
	// NoJitter makes every random wait of the client the top of its window
	// (mqtt.Options.Rand): the same doubling backoff, 1 s, 2 s, 4 s … up to
	// ReconnectMax, without the spread, as paho's own backoff was. The
	// arrival stays spread: the child starts each terminal after its own
	// random delay up to ConnectJitter (the client's first-connect jitter
	// off), so that a fleet with and one without jitter connect the same way
	// before whatever the run measures; with the top of the window there
	// too all would connect in one instant, a different experiment.
	NoJitter bool `json:"no_jitter"`
}

// top is a Rand that always draws the largest number.
type top struct{}

func (top) Int64N(n int64) int64 { return n - 1 }

// TID is terminal i's TID.
func (c Config) TID(i int) string { return fmt.Sprintf("%s%06d", c.Prefix, i) }

// IsChild says whether this process was started by Launch as a child.
func IsChild() bool { return os.Getenv(childEnv) != "" }

// ChildMain runs the child Launch started (its Config in the environment)
// until its stdin ends, and returns the exit code. Call it from TestMain
// when IsChild.
func ChildMain() int {
	var cfg Config
	if err := json.Unmarshal([]byte(os.Getenv(childEnv)), &cfg); err != nil {
		fmt.Fprintf(os.Stderr, "fleet child: %s: %v\n", childEnv, err)
		return 2
	}
	if err := Run(cfg, os.Getenv(passwordEnv), os.Stdin, os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "fleet child: %v\n", err)
		return 1
	}
	return 0
}

// The clients' log messages the counters key on (agent/central/mqtt logs
// them; MsgUnreachable is exported for this kind of use).
const (
	msgConnected = "mqtt: connected"
	msgLost      = "mqtt: connection to broker lost; reconnecting"
)

// counters are a child's totals, counted by a slog.Handler that every
// client logs to.
type counters struct {
	connects, lost, failed, installed atomic.Int64
}

type countHandler struct{ c *counters }

func (h countHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h countHandler) Handle(_ context.Context, r slog.Record) error {
	switch r.Message {
	case msgConnected:
		h.c.connects.Add(1)
	case msgLost:
		h.c.lost.Add(1)
	case mqtt.MsgUnreachable:
		h.c.failed.Add(1)
	}
	return nil
}

func (h countHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h countHandler) WithGroup(string) slog.Handler      { return h }

// terminal is one simulated terminal.
type terminal struct {
	link  *mqtt.Client
	rep   *report.Reporter // nil without Install
	delay time.Duration    // before Start (NoJitter's spread arrival)
}

// Run runs terminals [cfg.First, cfg.End) until in ends (EOF, or a line
// "close"), printing a progress line to out every ProgressInterval and
// once more after the terminals are closed:
//
//	p UNIX_MS CONNECTS LOST FAILED INSTALLED
//	closed
func Run(cfg Config, password string, in io.Reader, out io.Writer) error {
	if len(cfg.URLs) == 0 {
		return errors.New("no broker URL")
	}
	if cfg.First < 0 || cfg.End < cfg.First || cfg.End-cfg.First > MaxPerProcess {
		return fmt.Errorf("terminals [%d,%d): want 0 ≤ first ≤ end, at most %d", cfg.First, cfg.End, MaxPerProcess)
	}
	var c counters
	counting := slog.New(countHandler{&c})
	quiet := slog.New(slog.DiscardHandler)
	terms := make([]terminal, 0, cfg.End-cfg.First)
	for i := cfg.First; i < cfg.End; i++ {
		tid := cfg.TID(i)
		o := mqtt.Options{
			URLs: cfg.URLs, Username: cfg.Username, Password: password, TID: tid, MID: "898310048160001",
			ReconnectMax: cfg.ReconnectMax, ConnectJitter: cfg.ConnectJitter, Logger: counting,
		}
		var delay time.Duration
		if cfg.NoJitter {
			o.Rand, o.ConnectJitter = top{}, 0
			delay = time.Duration(rand.Int64N(int64(cfg.ConnectJitter) + 1))
		}
		link, err := mqtt.New(o)
		if err != nil {
			return err
		}
		t := terminal{link: link, delay: delay}
		if cfg.Install {
			if t.rep, err = report.New(report.Options{Link: link, Logger: quiet}); err != nil {
				return err
			}
		}
		terms = append(terms, t)
	}

	w := bufio.NewWriter(out)
	var wmu sync.Mutex
	progress := func() {
		wmu.Lock()
		defer wmu.Unlock()
		fmt.Fprintf(w, "p %d %d %d %d %d\n", time.Now().UnixMilli(), c.connects.Load(), c.lost.Load(), c.failed.Load(), c.installed.Load())
		w.Flush()
	}
	stop := make(chan struct{})
	ticking := make(chan struct{})
	go func() {
		defer close(ticking)
		tick := time.NewTicker(ProgressInterval)
		defer tick.Stop()
		for {
			select {
			case <-tick.C:
				progress()
			case <-stop:
				return
			}
		}
	}()

	install := Install()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	errs := make(chan error, 1)
	for _, t := range terms {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case <-time.After(t.delay):
			case <-ctx.Done():
				return
			}
			if err := t.link.Start(ctx); err != nil {
				trySend(errs, err)
				return
			}
			if t.rep == nil {
				return
			}
			if err := t.rep.Start(ctx); err != nil {
				trySend(errs, err)
				return
			}
			for _, s := range install {
				t.rep.Report(ctx, s)
			}
			if t.rep.Flush(ctx) == nil {
				c.installed.Add(1)
			}
		}()
	}

	// Until the parent says so: EOF (its end of the pipe closed, or it
	// died) or "close".
	sc := bufio.NewScanner(in)
	for sc.Scan() && sc.Text() != "close" {
	}
	cancel() // ends the Flushes still waiting
	wg.Wait()
	var closing sync.WaitGroup
	for _, t := range terms {
		closing.Add(1)
		go func() {
			defer closing.Done()
			cctx, ccancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer ccancel()
			if t.rep != nil {
				_ = t.rep.Close(cctx)
			}
			_ = t.link.Close(cctx)
		}()
	}
	closing.Wait()
	close(stop)
	<-ticking
	progress()
	wmu.Lock()
	fmt.Fprintln(w, "closed")
	err := w.Flush()
	wmu.Unlock()
	select {
	case e := <-errs:
		return e
	default:
	}
	return err
}

func trySend(ch chan error, err error) {
	select {
	case ch <- err:
	default:
	}
}
