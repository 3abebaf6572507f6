// Package serialport opens serial lines (a UART or a USB-serial adapter) as an
// io.ReadWriteCloser over github.com/tarm/serial, and keeps them open: when
// the device disappears (a USB adapter unplugged) it notices and reopens the
// device path with backoff until the device is back.
//
// Reads always time out (tarm/serial blocks Close behind a read without one),
// and a timeout is reported as an error matching os.ErrDeadlineExceeded with
// Timeout() true, not as tarm's (0, io.EOF), so readers can tell "no data yet"
// from "line closed". While the device is away, Read keeps returning timeouts,
// so a reader loop rides out an unplug; Write fails with ErrGone, because
// dropping output silently would lose a printed slip.
package serialport

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/tarm/serial"
)

// Parity is the parity bit setting.
type Parity byte

// Parity settings, as tarm/serial spells them.
const (
	ParityNone  Parity = 'N'
	ParityOdd   Parity = 'O'
	ParityEven  Parity = 'E'
	ParityMark  Parity = 'M'
	ParitySpace Parity = 'S'
)

// Config describes a line. Zero values pick the defaults noted: 9600 8N1 with
// a 100 ms read timeout, the setting of most POS magstripe readers and printers.
type Config struct {
	Device   string // e.g. /dev/ttyUSB0, /dev/ttyS1
	Baud     int    // default 9600
	DataBits int    // 5 to 8, default 8
	Parity   Parity // default ParityNone
	StopBits int    // 1 or 2, default 1
	// ReadTimeout bounds each Read; 0 means 100 ms. The line's timer counts
	// in tenths of a second from 0.1 s to 25.5 s, so it is rounded into that.
	ReadTimeout time.Duration
}

// Errors callers branch on.
var (
	// ErrTimeout is returned by Read when no byte arrived within the read
	// timeout, and while the device is away. It matches os.ErrDeadlineExceeded.
	ErrTimeout error = timeoutError{}
	// ErrGone is returned by Write while the device is away.
	ErrGone = errors.New("serialport: device gone")
	// ErrClosed is returned after Close.
	ErrClosed = errors.New("serialport: closed")
	// ErrHangup is why a line that keeps reading nothing at once was taken
	// for gone (reported in Event.Err).
	ErrHangup = errors.New("serialport: line hung up")
	// ErrConfig is wrapped by configuration errors.
	ErrConfig = errors.New("serialport: bad config")
)

type timeoutError struct{}

func (timeoutError) Error() string        { return "serialport: read timeout" }
func (timeoutError) Timeout() bool        { return true }
func (timeoutError) Is(target error) bool { return target == os.ErrDeadlineExceeded }

func (c Config) withDefaults() Config {
	if c.Baud == 0 {
		c.Baud = 9600
	}
	if c.DataBits == 0 {
		c.DataBits = 8
	}
	if c.Parity == 0 {
		c.Parity = ParityNone
	}
	if c.StopBits == 0 {
		c.StopBits = 1
	}
	if c.ReadTimeout <= 0 {
		c.ReadTimeout = 100 * time.Millisecond
	}
	c.ReadTimeout = min(max(c.ReadTimeout, 100*time.Millisecond), 25500*time.Millisecond)
	return c
}

// Validate checks c after defaults are applied.
func (c Config) Validate() error {
	c = c.withDefaults()
	switch {
	case c.Device == "":
		return fmt.Errorf("%w: no device", ErrConfig)
	case c.Baud < 0:
		return fmt.Errorf("%w: baud %d", ErrConfig, c.Baud)
	case c.DataBits < 5 || c.DataBits > 8:
		return fmt.Errorf("%w: %d data bits", ErrConfig, c.DataBits)
	case c.StopBits != 1 && c.StopBits != 2:
		return fmt.Errorf("%w: %d stop bits", ErrConfig, c.StopBits)
	}
	switch c.Parity {
	case ParityNone, ParityOdd, ParityEven, ParityMark, ParitySpace:
	default:
		return fmt.Errorf("%w: parity %q", ErrConfig, c.Parity)
	}
	return nil
}

// TarmConfig is the tarm/serial configuration for c (defaults applied).
func (c Config) TarmConfig() *serial.Config {
	c = c.withDefaults()
	return &serial.Config{Name: c.Device, Baud: c.Baud, ReadTimeout: c.ReadTimeout,
		Size: byte(c.DataBits), Parity: serial.Parity(c.Parity), StopBits: serial.StopBits(c.StopBits)}
}

// Options are the seams of a Port; the zero value is the real thing.
type Options struct {
	// Open opens the device; nil means tarm/serial.
	Open func(Config) (io.ReadWriteCloser, error)
	// Backoff is the wait before reopen attempt n (n = 1, 2, …); nil means
	// 100 ms doubling up to 5 s.
	Backoff func(n int) time.Duration
	// Now and Sleep are the clock; nil means the wall clock. Sleep returns
	// early with ctx's error when ctx is done.
	Now   func() time.Time
	Sleep func(ctx context.Context, d time.Duration) error
	// Event, when set, is told when the device goes away and comes back
	// (for health reporting). It must not block or call the Port.
	Event func(Event)
	// Lazy lets Open succeed while the device is missing: reads time out
	// until it appears. Without it, Open returns the first open's error.
	Lazy bool
}

// Event is a change of the line's presence.
type Event struct {
	Device  string
	Present bool
	Err     error // why it went away; nil when it came back
	Attempt int   // reopen attempts it took to come back
}

// DefaultBackoff waits 100 ms before the first reopen and doubles up to 5 s.
func DefaultBackoff(n int) time.Duration {
	d := 100 * time.Millisecond
	for i := 1; i < n && d < 5*time.Second; i++ {
		d *= 2
	}
	return min(d, 5*time.Second)
}

func openTarm(c Config) (io.ReadWriteCloser, error) {
	p, err := serial.OpenPort(c.TarmConfig())
	if err != nil {
		return nil, err
	}
	return p, nil
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Port is an open line that reopens itself. Read and Write may be called
// from different goroutines (a reader loop and a writer); Close may be called
// at any time and returns once a pending Read has timed out.
type Port struct {
	cfg  Config
	opts Options

	ctx    context.Context // cancelled by Close: ends backoff waits
	cancel context.CancelFunc

	quickEOFs atomic.Int32 // consecutive instant empty reads (see Read)

	mu      sync.Mutex
	line    io.ReadWriteCloser // nil while the device is away
	closed  bool
	attempt int       // reopen attempts since the device went away
	next    time.Time // earliest next reopen attempt
}

// Open opens cfg's device. ctx bounds only this first open; use Close to
// stop the Port. The Port owns the device and closes it on Close.
func Open(ctx context.Context, cfg Config, opts Options) (*Port, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	if opts.Open == nil {
		opts.Open = openTarm
	}
	if opts.Backoff == nil {
		opts.Backoff = DefaultBackoff
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Sleep == nil {
		opts.Sleep = sleepCtx
	}
	p := &Port{cfg: cfg, opts: opts}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	line, err := opts.Open(cfg)
	if err != nil {
		if !opts.Lazy {
			p.cancel()
			return nil, fmt.Errorf("serialport: open %s: %w", cfg.Device, err)
		}
		p.attempt = 1
		p.next = opts.Now().Add(opts.Backoff(1))
	}
	p.line = line
	return p, nil
}

// Config is the line's configuration with defaults applied.
func (p *Port) Config() Config { return p.cfg }

// Present reports whether the device is open right now.
func (p *Port) Present() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.line != nil
}

// Read reads from the line. It returns ErrTimeout when nothing arrived within
// the read timeout, and also while the device is away (after waiting up to a
// read timeout for the next reopen attempt), so callers loop on timeouts and
// check their context in between.
func (p *Port) Read(b []byte) (int, error) {
	line, err := p.current()
	if err != nil {
		return 0, err
	}
	if line == nil {
		return 0, p.waitAway()
	}
	start := p.opts.Now()
	n, err := line.Read(b)
	switch {
	case err == nil:
		p.quickEOFs.Store(0)
		return n, nil
	case errors.Is(err, io.EOF) && n == 0:
		// tarm/serial's way of saying the read timed out (VTIME expired)…
		// or that the line hung up: a tty whose other side is gone (a pty
		// master closed, a modem line dropped) reads 0 bytes at once, every
		// time. Several in a row, each far quicker than the timeout, is a
		// hangup, not silence.
		if p.opts.Now().Sub(start) < p.cfg.ReadTimeout/4 {
			if p.quickEOFs.Add(1) >= quickEOFLimit {
				p.lost(line, ErrHangup)
			}
		} else {
			p.quickEOFs.Store(0)
		}
		return 0, ErrTimeout
	case isGone(err):
		p.lost(line, err)
		return n, ErrTimeout
	}
	return n, fmt.Errorf("serialport: read %s: %w", p.cfg.Device, err)
}

// Write writes to the line; while the device is away it fails with ErrGone
// (after one reopen attempt if one is due).
func (p *Port) Write(b []byte) (int, error) {
	line, err := p.current()
	if err != nil {
		return 0, err
	}
	if line == nil {
		return 0, fmt.Errorf("serialport: write %s: %w", p.cfg.Device, ErrGone)
	}
	n, err := line.Write(b)
	if err != nil && isGone(err) {
		p.lost(line, err)
		return n, fmt.Errorf("serialport: write %s: %w: %w", p.cfg.Device, ErrGone, err)
	}
	if err != nil {
		return n, fmt.Errorf("serialport: write %s: %w", p.cfg.Device, err)
	}
	return n, nil
}

// Close closes the device and stops reopening it.
func (p *Port) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	line := p.line
	p.line = nil
	p.mu.Unlock()
	p.cancel()
	if line != nil {
		return line.Close()
	}
	return nil
}

// current returns the open line, reopening the device if it is away and an
// attempt is due; nil means still away.
func (p *Port) current() (io.ReadWriteCloser, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, ErrClosed
	}
	if p.line != nil {
		return p.line, nil
	}
	if p.opts.Now().Before(p.next) {
		return nil, nil
	}
	line, err := p.opts.Open(p.cfg)
	if err != nil {
		p.attempt++
		p.next = p.opts.Now().Add(p.opts.Backoff(p.attempt))
		return nil, nil
	}
	p.line = line
	if p.opts.Event != nil {
		p.opts.Event(Event{Device: p.cfg.Device, Present: true, Attempt: p.attempt})
	}
	p.attempt = 0
	return line, nil
}

// waitAway waits until the next reopen attempt is due, but no longer than a
// read timeout, so Read keeps its promise to return within about that time.
func (p *Port) waitAway() error {
	p.mu.Lock()
	d := min(p.next.Sub(p.opts.Now()), p.cfg.ReadTimeout)
	p.mu.Unlock()
	if d > 0 {
		if err := p.opts.Sleep(p.ctx, d); err != nil {
			return ErrClosed
		}
	}
	return ErrTimeout
}

// quickEOFLimit is how many instant empty reads in a row mean a hangup. One
// could be a timeout that raced a clock step; three cannot.
const quickEOFLimit = 3

// lost closes a line that failed as a vanished device does.
func (p *Port) lost(line io.ReadWriteCloser, err error) {
	p.mu.Lock()
	if p.line != line { // another goroutine noticed first
		p.mu.Unlock()
		return
	}
	p.line = nil
	p.quickEOFs.Store(0)
	p.attempt = 1
	p.next = p.opts.Now().Add(p.opts.Backoff(1))
	p.mu.Unlock()
	_ = line.Close()
	if p.opts.Event != nil {
		p.opts.Event(Event{Device: p.cfg.Device, Present: false, Err: err})
	}
}

// isGone tells a vanished device from other failures: a USB-serial adapter
// unplugged (or a pty whose other side closed) fails with EIO, ENXIO or
// ENODEV, and a line closed under us with os.ErrClosed or EBADF.
func isGone(err error) bool {
	return errors.Is(err, syscall.EIO) || errors.Is(err, syscall.ENXIO) ||
		errors.Is(err, syscall.ENODEV) || errors.Is(err, syscall.EBADF) || errors.Is(err, os.ErrClosed)
}
