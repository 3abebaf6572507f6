package keypad

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"periph.io/x/conn/v3/gpio"
)

// Keypad is what every keypad backend offers: Key blocks until a key is
// pressed or ctx is done, and Close releases the backend's hold on the
// hardware. The agent adapts it to ui.Keypad.
type Keypad interface {
	Key(ctx context.Context) (string, error)
	io.Closer
}

var (
	_ Keypad = (*Matrix)(nil)
	_ Keypad = (*InputEvents)(nil)
)

// ErrClosed is returned by Key once Close has been called.
var ErrClosed = errors.New("keypad: closed")

// ErrStuckKey is matched (errors.Is) by every *StuckKeyError.
var ErrStuckKey = errors.New("keypad: stuck key")

// StuckKeyError reports a key held down longer than Config.StuckAfter. It is
// returned by Key once per hold: the key was already delivered as a press
// when it went down, and it delivers nothing more until it is released. A
// caller may show "check keypad" and keep reading keys; the other keys keep
// working.
type StuckKeyError struct {
	Key  string        // the key's name
	Held time.Duration // how long it had been down when reported
}

// Error names the key, so a technician knows which one to check.
func (e *StuckKeyError) Error() string {
	return fmt.Sprintf("keypad: key %s stuck (held %s)", e.Key, e.Held)
}

// Is makes errors.Is(err, ErrStuckKey) true.
func (e *StuckKeyError) Is(target error) bool { return target == ErrStuckKey }

// Option changes how Open builds a Matrix.
type Option func(*Matrix)

// WithClock makes the Matrix scan on c instead of the system clock; tests
// pass a keypadtest.Clock.
func WithClock(c Clock) Option {
	return func(m *Matrix) { m.clock = c }
}

// keyState is one key's debounce state.
type keyState struct {
	raw     bool      // last reading (after ghost masking)
	changed time.Time // when raw last changed
	stable  bool      // debounced state
	since   time.Time // when stable last became true
	stuck   bool      // stuck already reported for this hold
}

type event struct {
	key string
	err error
}

// Matrix is a keypad wired as a matrix of switches between drive lines and
// sense lines.
//
// Scanning: each scan drives one drive line Low at a time, with every other
// drive line a high-impedance input, and reads the sense lines, which are
// pulled up: a Low sense line means a closed switch. Idle drive lines are
// left floating rather than driven High because two keys down on the same
// sense line would otherwise short a High output to the Low one.
//
// Keys are scanned only while a Key call is waiting. A press made while no
// one is reading is therefore not queued, so a stray press cannot answer a
// prompt that is not shown yet.
//
// Debounce: a key's new state counts once every reading for Debounce has
// agreed with it; chatter restarts the wait. Each debounced press is one
// event; releases are not events.
//
// Simultaneous keys: presses that become stable in the same scan are
// delivered in row-major order of Config.Keys (row 0 left to right, then
// row 1, …), whatever the orientation.
//
// Ghost keys: without diodes, three keys on the corners of a rectangle make
// the fourth corner read as pressed too, and the reading cannot say which
// three are real. Policy: whenever two rows read the same two (or more)
// columns down, every key on those crossings is ambiguous and keeps its
// previous debounced state for that scan. So keys already down stay down
// (no false release), no new press is reported from the rectangle (no ghost
// key), and once a key of the rectangle is released the remaining real
// keys read unambiguously and are reported then.
//
// Stuck keys: see StuckKeyError.
//
// Key and Close may be called from different goroutines; concurrent Key
// calls take turns.
type Matrix struct {
	cfg   Config
	clock Clock
	drive []gpio.PinIO
	sense []gpio.PinIO
	// colsDrive swaps (drive, sense) indexes into (row, col) of Config.Keys.
	colsDrive bool

	state [][]keyState // [row][col]
	down  [][]bool     // [row][col], reused between scans
	queue []event

	sem       chan struct{} // held by the running Key call, and forever by Close
	done      chan struct{}
	closeOnce sync.Once
	closeErr  error
}

// Open validates cfg, looks up its pins with lookup (which returns nil for
// an unknown name) and sets them up: sense lines as pulled-up inputs, drive
// lines as high-impedance inputs until scanned. It does not start scanning;
// Key does.
func Open(cfg Config, lookup func(name string) gpio.PinIO, opts ...Option) (*Matrix, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if lookup == nil {
		return nil, errors.New("keypad: open: no pin lookup")
	}
	cfg = cfg.withDefaults()
	m := &Matrix{
		cfg:       cfg,
		clock:     SystemClock{},
		colsDrive: cfg.Orientation == ColsDrive,
		sem:       make(chan struct{}, 1),
		done:      make(chan struct{}),
	}
	for _, o := range opts {
		o(m)
	}
	rows, err := lookupAll("Rows", cfg.Rows, lookup)
	if err != nil {
		return nil, err
	}
	cols, err := lookupAll("Cols", cfg.Cols, lookup)
	if err != nil {
		return nil, err
	}
	m.drive, m.sense = rows, cols
	if m.colsDrive {
		m.drive, m.sense = cols, rows
	}
	m.state = make([][]keyState, len(rows))
	m.down = make([][]bool, len(rows))
	for r := range rows {
		m.state[r] = make([]keyState, len(cols))
		m.down[r] = make([]bool, len(cols))
	}
	for _, p := range m.sense {
		if err := p.In(gpio.PullUp, gpio.NoEdge); err != nil {
			return nil, fmt.Errorf("keypad: open: sense pin %s: %w", p, err)
		}
	}
	for _, p := range m.drive {
		if err := p.In(gpio.Float, gpio.NoEdge); err != nil {
			return nil, fmt.Errorf("keypad: open: drive pin %s: %w", p, err)
		}
	}
	return m, nil
}

func lookupAll(field string, names []string, lookup func(string) gpio.PinIO) ([]gpio.PinIO, error) {
	pins := make([]gpio.PinIO, len(names))
	for i, n := range names {
		p := lookup(n)
		if p == nil {
			return nil, fmt.Errorf("keypad: open: %s[%d]: no GPIO pin named %q", field, i, n)
		}
		pins[i] = p
	}
	return pins, nil
}

// Key waits for the next debounced key press and returns its name, or a
// *StuckKeyError, or the error of a pin, or ctx's error, or ErrClosed.
func (m *Matrix) Key(ctx context.Context) (string, error) {
	// Checked first because select picks at random among ready cases: a
	// caller that has given up must always hear so.
	if err := ctx.Err(); err != nil {
		return "", fmt.Errorf("keypad: %w", err)
	}
	select {
	case m.sem <- struct{}{}:
	case <-m.done:
		return "", ErrClosed
	case <-ctx.Done():
		return "", fmt.Errorf("keypad: %w", ctx.Err())
	}
	defer func() { <-m.sem }()
	select {
	case <-m.done:
		return "", ErrClosed
	default:
	}
	if ev, ok := m.pop(); ok {
		return ev.key, ev.err
	}
	// A fresh ticker per call: a ticker left running between calls would
	// hand back one stale tick, and its old time would shorten the
	// debounce window of the first reading.
	ticks, stop := m.clock.NewTicker(m.cfg.ScanEvery)
	defer stop()
	for {
		// A tick is handled completely, event or not, before ctx is looked
		// at again: what a scan saw is never lost to a cancellation.
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("keypad: %w", ctx.Err())
		case <-m.done:
			return "", ErrClosed
		case now := <-ticks:
			if err := m.scan(now); err != nil {
				return "", err
			}
			if ev, ok := m.pop(); ok {
				return ev.key, ev.err
			}
		}
	}
}

func (m *Matrix) pop() (event, bool) {
	if len(m.queue) == 0 {
		return event{}, false
	}
	ev := m.queue[0]
	m.queue = m.queue[1:]
	return ev, true
}

// read fills m.down from the pins.
func (m *Matrix) read() error {
	for i, d := range m.drive {
		if err := d.Out(gpio.Low); err != nil {
			return fmt.Errorf("keypad: scan: drive %s: %w", d, err)
		}
		for j, s := range m.sense {
			r, c := i, j
			if m.colsDrive {
				r, c = j, i
			}
			m.down[r][c] = s.Read() == gpio.Low
		}
		if err := d.In(gpio.Float, gpio.NoEdge); err != nil {
			return fmt.Errorf("keypad: scan: release %s: %w", d, err)
		}
	}
	return nil
}

// ambiguous reports the crossings of every pair of rows that read two or
// more columns down in common: the ghost-key rectangles.
func ambiguous(down [][]bool) [][]bool {
	amb := make([][]bool, len(down))
	for r := range down {
		amb[r] = make([]bool, len(down[r]))
	}
	for r1 := range down {
		for r2 := r1 + 1; r2 < len(down); r2++ {
			n := 0
			for c := range down[r1] {
				if down[r1][c] && down[r2][c] {
					n++
				}
			}
			if n < 2 {
				continue
			}
			for c := range down[r1] {
				if down[r1][c] && down[r2][c] {
					amb[r1][c], amb[r2][c] = true, true
				}
			}
		}
	}
	return amb
}

// scan reads the matrix once at time now and queues what changed.
func (m *Matrix) scan(now time.Time) error {
	if err := m.read(); err != nil {
		return err
	}
	amb := ambiguous(m.down)
	for r, row := range m.cfg.Keys {
		for c, name := range row {
			st := &m.state[r][c]
			raw := m.down[r][c]
			if amb[r][c] {
				raw = st.stable
			}
			if raw != st.raw {
				st.raw, st.changed = raw, now
			}
			if name == "" {
				continue
			}
			if st.raw != st.stable && now.Sub(st.changed) >= m.cfg.Debounce {
				st.stable = st.raw
				if st.stable {
					st.since = now
					m.queue = append(m.queue, event{key: name})
				} else {
					st.stuck = false
				}
			}
			if st.stable && !st.stuck && m.cfg.StuckAfter > 0 && now.Sub(st.since) >= m.cfg.StuckAfter {
				st.stuck = true
				m.queue = append(m.queue, event{err: &StuckKeyError{Key: name, Held: now.Sub(st.since)}})
			}
		}
	}
	return nil
}

// Close stops scanning, waits for a running Key to return ErrClosed, and
// puts the drive lines back to high-impedance inputs so nothing is left
// driving Low. It does not close or halt the pins, which belong to the
// caller. Close is safe to call more than once.
func (m *Matrix) Close() error {
	m.closeOnce.Do(func() {
		close(m.done)
		m.sem <- struct{}{}
		var errs []error
		for _, d := range m.drive {
			if err := d.In(gpio.Float, gpio.NoEdge); err != nil {
				errs = append(errs, fmt.Errorf("keypad: close: release %s: %w", d, err))
			}
		}
		m.closeErr = errors.Join(errs...)
	})
	return m.closeErr
}
