package keypad

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/posagent/posagent/drivers/keypad/keypadtest"
	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpiotest"
)

// The test keypad: 4 rows × 4 columns, with one empty position at (3,3) to
// show that an unnamed crossing delivers nothing.
var testKeys = [][]string{
	{"1", "2", "3", "F1"},
	{"4", "5", "6", "F2"},
	{"7", "8", "9", "F3"},
	{"CANCEL", "0", "ENTER", ""},
}

const (
	period = 5 * time.Millisecond
	bounce = 20 * time.Millisecond // 5 agreeing readings at 5 ms
	stuck  = time.Second           // 200 readings
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func testConfig(o Orientation) Config {
	return Config{
		Rows:        []string{"R0", "R1", "R2", "R3"},
		Cols:        []string{"C0", "C1", "C2", "C3"},
		Keys:        testKeys,
		Orientation: o,
		ScanEvery:   period,
		Debounce:    bounce,
		StuckAfter:  stuck,
	}
}

// rig is a Matrix over a fake wired matrix. The fake addresses switches by
// (drive, sense); press translates key names to that through the orientation.
type rig struct {
	m     *Matrix
	wire  *keypadtest.Matrix
	clock *keypadtest.Clock
	o     Orientation
}

func newRig(t *testing.T, o Orientation) *rig {
	t.Helper()
	cfg := testConfig(o)
	drive, sense := len(cfg.Rows), len(cfg.Cols)
	if o == ColsDrive {
		drive, sense = sense, drive
	}
	wire := keypadtest.NewMatrix(drive, sense)
	// Drive lines are keypadtest.Pins (gpiotest plus direction), sense lines
	// bare gpiotest.Pins; which side is which follows the orientation.
	var drivePins, sensePins []gpio.PinIO
	for _, p := range wire.Drive {
		drivePins = append(drivePins, p)
	}
	for _, p := range wire.Sense {
		sensePins = append(sensePins, p)
	}
	rows, cols := drivePins, sensePins
	if o == ColsDrive {
		rows, cols = cols, rows
	}
	pins := map[string]gpio.PinIO{}
	for i, n := range cfg.Rows {
		pins[n] = rows[i]
	}
	for i, n := range cfg.Cols {
		pins[n] = cols[i]
	}
	clock := keypadtest.NewClock(t0, period)
	m, err := Open(cfg, func(n string) gpio.PinIO { return pins[n] }, WithClock(clock))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	return &rig{m: m, wire: wire, clock: clock, o: o}
}

// switches turns key names (or "r,c" for unnamed crossings) into the fake's
// (drive, sense) addresses.
func (r *rig) switches(t *testing.T, keys ...string) [][2]int {
	t.Helper()
	var out [][2]int
next:
	for _, k := range keys {
		var row, col int
		if _, err := fmt.Sscanf(k, "%d,%d", &row, &col); err == nil {
			out = append(out, r.addr(row, col))
			continue
		}
		for row, names := range testKeys {
			for col, n := range names {
				if n == k {
					out = append(out, r.addr(row, col))
					continue next
				}
			}
		}
		t.Fatalf("no key %q", k)
	}
	return out
}

func (r *rig) addr(row, col int) [2]int {
	if r.o == ColsDrive {
		return [2]int{col, row}
	}
	return [2]int{row, col}
}

// step holds a set of keys down for n scans.
type step struct {
	keys []string
	n    int
}

func hold(n int, keys ...string) step { return step{keys, n} }

// run scans synchronously through steps and returns what was queued, as
// "KEY@scan" and "STUCK:KEY@scan", scan counted from 0.
func (r *rig) run(t *testing.T, steps []step) []string {
	t.Helper()
	var got []string
	now, scan := t0, 0
	for _, s := range steps {
		r.wire.Set(r.switches(t, s.keys...)...)
		for i := 0; i < s.n; i++ {
			now = now.Add(period)
			if err := r.m.scan(now); err != nil {
				t.Fatal(err)
			}
			for {
				ev, ok := r.m.pop()
				if !ok {
					break
				}
				var se *StuckKeyError
				switch {
				case errors.As(ev.err, &se):
					got = append(got, fmt.Sprintf("STUCK:%s@%d", se.Key, scan))
				case ev.err != nil:
					t.Fatalf("scan %d: %v", scan, ev.err)
				default:
					got = append(got, fmt.Sprintf("%s@%d", ev.key, scan))
				}
			}
			scan++
		}
	}
	return got
}

func TestScan(t *testing.T) {
	tests := []struct {
		name  string
		steps []step
		want  []string
	}{
		{"single press is reported after the debounce time",
			// Seen at scan 0 (t=5ms), stable for 20 ms at scan 4.
			[]step{hold(10, "5"), hold(10)},
			[]string{"5@4"}},
		{"one event per press however long it is held (below StuckAfter)",
			[]step{hold(150, "5"), hold(10)},
			[]string{"5@4"}},
		{"tap shorter than debounce is noise",
			[]step{hold(4, "5"), hold(10)},
			nil},
		{"bounce on press gives one event",
			// Chatter: down, up, down, up, then held. The wait restarts at
			// the last change (scan 4), so the press counts at scan 8.
			[]step{hold(1, "5"), hold(1), hold(1, "5"), hold(1), hold(10, "5"), hold(10)},
			[]string{"5@8"}},
		{"bounce on release gives no second event",
			[]step{hold(10, "5"), hold(1), hold(1, "5"), hold(1), hold(1, "5"), hold(10), hold(10)},
			[]string{"5@4"}},
		{"release shorter than debounce is bounce, not a re-press",
			[]step{hold(10, "5"), hold(3), hold(10, "5"), hold(10)},
			[]string{"5@4"}},
		{"release and re-press give two events",
			// Release counts at scan 14, the new press is seen at 20 and
			// counts at 24.
			[]step{hold(10, "5"), hold(10), hold(10, "5"), hold(10)},
			[]string{"5@4", "5@24"}},
		{"two keys at once come in row-major order",
			[]step{hold(10, "ENTER", "1"), hold(10)},
			[]string{"1@4", "ENTER@4"}},
		{"two keys in one row at once",
			[]step{hold(10, "F2", "4"), hold(10)},
			[]string{"4@4", "F2@4"}},
		{"second key while the first is held",
			[]step{hold(10, "9"), hold(10, "9", "1"), hold(10)},
			[]string{"9@4", "1@14"}},
		{"three rectangle corners at once: no key, no ghost",
			// 1 (0,0), 2 (0,1), 4 (1,0) make 5 (1,1) read down.
			[]step{hold(20, "1", "2", "4"), hold(10)},
			nil},
		{"third rectangle corner is withheld until unambiguous",
			// 1 and 2 share a row: fine. Adding 4 closes the rectangle:
			// 4 is not reported and neither is the ghost 5. Releasing 1
			// leaves 2 and 4, which read unambiguously, so 4 is reported.
			[]step{hold(10, "1", "2"), hold(10, "1", "2", "4"), hold(10, "2", "4"), hold(10)},
			[]string{"1@4", "2@4", "4@24"}},
		{"rectangle does not release keys already down",
			// 1, 2 held; 4 added then removed; 1 and 2 must not be
			// re-reported (they were never released).
			[]step{hold(10, "1", "2"), hold(10, "1", "2", "4"), hold(10, "1", "2"), hold(10)},
			[]string{"1@4", "2@4"}},
		{"stuck key is reported once, then ignored until released",
			[]step{hold(400, "5"), hold(10), hold(10, "5"), hold(10)},
			[]string{"5@4", "STUCK:5@204", "5@414"}},
		{"other keys work while one is stuck",
			[]step{hold(210, "5"), hold(10, "5", "9"), hold(10)},
			[]string{"5@4", "STUCK:5@204", "9@214"}},
		{"unnamed crossing delivers nothing",
			[]step{hold(10, "3,3"), hold(10)},
			nil},
	}
	for _, o := range []Orientation{RowsDrive, ColsDrive} {
		for _, tt := range tests {
			t.Run(string(o)+"/"+tt.name, func(t *testing.T) {
				r := newRig(t, o)
				got := r.run(t, tt.steps)
				if !reflect.DeepEqual(got, tt.want) {
					t.Errorf("got %q, want %q", got, tt.want)
				}
			})
		}
	}
}

// TestGhostWiring checks the fake itself: without the ghost policy the
// fourth corner really does read as down, so TestScan's rectangle cases
// test something.
func TestGhostWiring(t *testing.T) {
	r := newRig(t, RowsDrive)
	r.wire.Set(r.switches(t, "1", "2", "4")...)
	if err := r.m.read(); err != nil {
		t.Fatal(err)
	}
	if !r.m.down[1][1] {
		t.Fatal("fake matrix shows no ghost at (1,1)")
	}
	amb := ambiguous(r.m.down)
	for _, rc := range [][2]int{{0, 0}, {0, 1}, {1, 0}, {1, 1}} {
		if !amb[rc[0]][rc[1]] {
			t.Errorf("(%d,%d) not ambiguous", rc[0], rc[1])
		}
	}
	if amb[2][2] {
		t.Error("(2,2) ambiguous")
	}
}

// TestScanDrivesOneLineAtATime checks the electrical contract: during a
// scan exactly one drive line is an output and it is Low; between scans
// every drive line is a floating input and the sense lines are pulled up.
func TestScanDrivesOneLineAtATime(t *testing.T) {
	for _, o := range []Orientation{RowsDrive, ColsDrive} {
		t.Run(string(o), func(t *testing.T) {
			r := newRig(t, o)
			check := func() {
				for _, d := range r.wire.Drive {
					if _, out := d.Level(); out || d.PullNow() != gpio.Float {
						t.Errorf("%s: output=%v pull=%s after scan", d, out, d.PullNow())
					}
				}
				for _, s := range r.wire.Sense {
					// gpiotest has no direction; a sense line is only ever
					// set up with In, so its pull says it all.
					s.Lock()
					pull := s.P
					s.Unlock()
					if pull != gpio.PullUp {
						t.Errorf("%s: pull=%s", s, pull)
					}
				}
			}
			check()
			if err := r.m.scan(t0); err != nil {
				t.Fatal(err)
			}
			check()
			for _, d := range r.wire.Drive {
				if !reflect.DeepEqual(d.Outs(), []gpio.Level{gpio.Low}) {
					t.Errorf("%s driven %v, want one Low", d, d.Outs())
				}
			}
		})
	}
}

type keyResult struct {
	key string
	err error
}

func keyAsync(ctx context.Context, m *Matrix) <-chan keyResult {
	ch := make(chan keyResult, 1)
	go func() {
		k, err := m.Key(ctx)
		ch <- keyResult{k, err}
	}()
	return ch
}

func TestKey(t *testing.T) {
	r := newRig(t, RowsDrive)
	// Script: bounce, hold 5 and ENTER together, release, hold 5 past
	// StuckAfter. One scan per tick.
	var script [][][2]int
	add := func(n int, keys ...string) {
		for i := 0; i < n; i++ {
			script = append(script, r.switches(t, keys...))
		}
	}
	add(1, "5")
	add(1)
	add(10, "5", "ENTER")
	add(10)
	add(210, "5")
	r.wire.Script(script...)
	r.clock.Tick(len(script) + 20)

	ctx := context.Background()
	for _, want := range []string{"5", "ENTER", "5"} {
		k, err := r.m.Key(ctx)
		if err != nil || k != want {
			t.Fatalf("Key = %q, %v; want %q", k, err, want)
		}
	}
	_, err := r.m.Key(ctx)
	var se *StuckKeyError
	if !errors.Is(err, ErrStuckKey) || !errors.As(err, &se) || se.Key != "5" || se.Held != stuck {
		t.Fatalf("Key error = %v, want 5 stuck for %s", err, stuck)
	}

	// Nothing more: once every tick is taken, a cancelled Key must report
	// the cancellation and not a further press.
	cctx, cancel := context.WithCancel(ctx)
	res := keyAsync(cctx, r.m)
	r.clock.Drain()
	cancel()
	if got := <-res; !errors.Is(got.err, context.Canceled) {
		t.Fatalf("after script: Key = %q, %v; want context.Canceled", got.key, got.err)
	}
	if got := r.clock.Periods(); len(got) == 0 || got[0] != period {
		t.Errorf("ticker periods %v, want %s", got, period)
	}
}

func TestKeyContext(t *testing.T) {
	r := newRig(t, RowsDrive)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := r.m.Key(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled ctx: %v", err)
	}

	ctx, cancel = context.WithCancel(context.Background())
	res := keyAsync(ctx, r.m)
	r.clock.Tick(3) // a few empty scans while waiting
	r.clock.Drain()
	cancel()
	if got := <-res; !errors.Is(got.err, context.Canceled) {
		t.Fatalf("cancel while waiting: %v", got.err)
	}

	dctx, dcancel := context.WithDeadline(context.Background(), time.Unix(1, 0))
	defer dcancel()
	if _, err := r.m.Key(dctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("deadline: %v", err)
	}
}

func TestClose(t *testing.T) {
	r := newRig(t, RowsDrive)
	res := keyAsync(context.Background(), r.m)
	// Hold a key for one scan so a drive line has been driven, then close
	// while Key waits.
	r.wire.Set(r.switches(t, "5")...)
	r.clock.Tick(1)
	r.clock.Drain()
	if err := r.m.Close(); err != nil {
		t.Fatal(err)
	}
	if got := <-res; !errors.Is(got.err, ErrClosed) {
		t.Fatalf("Key during Close = %q, %v", got.key, got.err)
	}
	if err := r.m.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := r.m.Key(context.Background()); !errors.Is(err, ErrClosed) {
		t.Fatalf("Key after Close: %v", err)
	}
	for _, d := range r.wire.Drive {
		if _, out := d.Level(); out {
			t.Errorf("%s still an output after Close", d)
		}
	}
}

// failPin fails Out, as a pin whose chip went away would.
type failPin struct{ *keypadtest.Pin }

func (failPin) Out(gpio.Level) error { return errors.New("gpio line gone") }

func TestScanPinError(t *testing.T) {
	cfg := testConfig(RowsDrive)
	pins := map[string]gpio.PinIO{}
	for _, n := range cfg.Rows {
		pins[n] = failPin{keypadtest.NewPin(n, 0)}
	}
	for _, n := range cfg.Cols {
		pins[n] = &gpiotest.Pin{N: n}
	}
	clock := keypadtest.NewClock(t0, period)
	m, err := Open(cfg, func(n string) gpio.PinIO { return pins[n] }, WithClock(clock))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	clock.Tick(1)
	_, err = m.Key(context.Background())
	if err == nil || !strings.Contains(err.Error(), "R0") || !strings.Contains(err.Error(), "gpio line gone") {
		t.Fatalf("Key = %v, want drive error naming R0", err)
	}
}

func TestOpenMissingPin(t *testing.T) {
	cfg := testConfig(RowsDrive)
	_, err := Open(cfg, func(n string) gpio.PinIO {
		if n == "C2" {
			return nil
		}
		return &gpiotest.Pin{N: n}
	})
	if err == nil || !strings.Contains(err.Error(), `Cols[2]: no GPIO pin named "C2"`) {
		t.Fatalf("Open = %v", err)
	}
	if _, err := Open(cfg, nil); err == nil {
		t.Fatal("Open with nil lookup succeeded")
	}
}
