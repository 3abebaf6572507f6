package fleet

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/posagent/posagent/agent/testkit/bench"
)

// Totals are a fleet's counters, summed over its children.
type Totals struct {
	Connects, Lost, Failed, Installed int64
}

// Connected is how many connections are open now.
func (t Totals) Connected() int64 { return t.Connects - t.Lost }

// Fleet is a running fleet: n terminals in Procs children.
type Fleet struct {
	N, Procs int
	Started  time.Time // when the first child was started

	tb    testing.TB
	procs []*proc

	mu       sync.Mutex
	changed  chan struct{} // closed and replaced on every progress line and exit
	perSec   map[int64]int64
	closeErr error
	once     sync.Once
}

type proc struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stderr bench.Buffer
	last   Totals
	exited chan struct{} // closed once the child's stdout ended and it was reaped
	err    error         // its exit, once exited
	closed bool          // printed "closed"
}

// Launch starts n terminals as ceil(n/MaxPerProcess) children of this test
// binary (whose TestMain must call ChildMain when IsChild), each with cfg
// and its share of [0, n), the terminals logging in with password. The
// test's cleanup closes what Close has not.
func Launch(tb testing.TB, cfg Config, n int, password string) *Fleet {
	tb.Helper()
	k := (n + MaxPerProcess - 1) / MaxPerProcess
	f := &Fleet{N: n, Procs: k, tb: tb, changed: make(chan struct{}), perSec: map[int64]int64{}}
	tb.Cleanup(func() {
		if err := f.Close(); err != nil {
			tb.Error(err)
		}
	})
	f.Started = time.Now()
	for j := range k {
		c := cfg
		c.First, c.End = j*n/k, (j+1)*n/k
		js, err := json.Marshal(c)
		if err != nil {
			tb.Fatal(err)
		}
		p := &proc{exited: make(chan struct{})}
		p.cmd = exec.Command(os.Args[0], "-test.run=^$", "-test.bench=^$")
		p.cmd.Env = append(os.Environ(), childEnv+"="+string(js), passwordEnv+"="+password)
		p.cmd.Stderr = &p.stderr
		if p.stdin, err = p.cmd.StdinPipe(); err != nil {
			tb.Fatal(err)
		}
		out, err := p.cmd.StdoutPipe()
		if err != nil {
			tb.Fatal(err)
		}
		if err := p.cmd.Start(); err != nil {
			tb.Fatalf("fleet: start child %d: %v", j, err)
		}
		f.procs = append(f.procs, p)
		go f.read(p, out)
	}
	return f
}

// read follows one child's progress lines until its stdout ends.
func (f *Fleet) read(p *proc, out io.Reader) {
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		line := sc.Text()
		if line == "closed" {
			f.mu.Lock()
			p.closed = true
			f.mu.Unlock()
			continue
		}
		var ms int64
		var t Totals
		if n, err := fmt.Sscanf(line, "p %d %d %d %d %d", &ms, &t.Connects, &t.Lost, &t.Failed, &t.Installed); n != 5 || err != nil {
			continue // not ours (a stray line of the test binary)
		}
		f.mu.Lock()
		// The connects since the last line go to the second of this one:
		// lines come every 100 ms, so a second's count is off by at most
		// one line's worth at its edges.
		f.perSec[ms/1000] += t.Connects - p.last.Connects
		p.last = t
		f.notifyLocked()
		f.mu.Unlock()
	}
	err := p.cmd.Wait()
	f.mu.Lock()
	p.err = err
	close(p.exited)
	f.notifyLocked()
	f.mu.Unlock()
}

func (f *Fleet) notifyLocked() {
	close(f.changed)
	f.changed = make(chan struct{})
}

// Totals are the counters of the children's latest lines.
func (f *Fleet) Totals() Totals {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.totalsLocked()
}

func (f *Fleet) totalsLocked() Totals {
	var s Totals
	for _, p := range f.procs {
		s.Connects += p.last.Connects
		s.Lost += p.last.Lost
		s.Failed += p.last.Failed
		s.Installed += p.last.Installed
	}
	return s
}

// Wait returns nil once done holds for the totals, or an error when a child
// exits first (with its stderr) or ctx ends (with the totals).
func (f *Fleet) Wait(ctx context.Context, done func(Totals) bool) error {
	for {
		f.mu.Lock()
		t := f.totalsLocked()
		ch := f.changed
		var dead *proc
		for _, p := range f.procs {
			select {
			case <-p.exited:
				dead = p
			default:
			}
		}
		f.mu.Unlock()
		if done(t) {
			return nil
		}
		if dead != nil {
			return fmt.Errorf("fleet: a child exited (%v): %s", dead.err, strings.TrimSpace(dead.stderr.String()))
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("fleet: %w with %+v of %d terminals", ctx.Err(), t, f.N)
		}
	}
}

// ConnectsPerSecond is the connects of each wall-clock second from since on
// (the first element is since's second), up to the latest line.
func (f *Fleet) ConnectsPerSecond(since time.Time) []int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	first, last := since.Unix(), since.Unix()
	for s := range f.perSec {
		last = max(last, s)
	}
	out := make([]int64, last-first+1)
	for s, n := range f.perSec {
		if s >= first {
			out[s-first] += n
		}
	}
	return out
}

// Close tells every child to close its terminals (each sends its retained
// shutdown state and disconnects) and waits for them to exit, killing a
// child that takes more than a minute. A second Close returns the first's
// result.
func (f *Fleet) Close() error {
	f.once.Do(func() {
		for _, p := range f.procs {
			_, _ = io.WriteString(p.stdin, "close\n")
			p.stdin.Close()
		}
		var errs []string
		for j, p := range f.procs {
			select {
			case <-p.exited:
			case <-time.After(time.Minute):
				_ = p.cmd.Process.Kill()
				<-p.exited
			}
			f.mu.Lock()
			ok := p.closed && p.err == nil
			f.mu.Unlock()
			if !ok {
				errs = append(errs, "child "+strconv.Itoa(j)+": "+fmt.Sprint(p.err)+": "+strings.TrimSpace(p.stderr.String()))
			}
		}
		if len(errs) > 0 {
			f.closeErr = fmt.Errorf("fleet: close: %s", strings.Join(errs, "; "))
		}
	})
	return f.closeErr
}
