package serialport

import (
	"context"
	"errors"
	"io"
	"os"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"
	"github.com/tarm/serial"
)

func TestConfig(t *testing.T) {
	c := Config{Device: "/dev/ttyS1"}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	got := c.TarmConfig()
	want := serial.Config{Name: "/dev/ttyS1", Baud: 9600, ReadTimeout: 100 * time.Millisecond, Size: 8,
		Parity: serial.ParityNone, StopBits: serial.Stop1}
	if *got != want {
		t.Errorf("got %+v", *got)
	}
	if tc := (Config{Device: "x", ReadTimeout: time.Minute, Parity: ParityEven, StopBits: 2, DataBits: 7}).TarmConfig(); tc.ReadTimeout != 25500*time.Millisecond || tc.Parity != serial.ParityEven || tc.StopBits != serial.Stop2 || tc.Size != 7 {
		t.Errorf("got %+v", *tc)
	}
	for _, bad := range []Config{{}, {Device: "x", DataBits: 9}, {Device: "x", StopBits: 3}, {Device: "x", Parity: 'X'}, {Device: "x", Baud: -1}} {
		if err := bad.Validate(); !errors.Is(err, ErrConfig) {
			t.Errorf("%+v: %v", bad, err)
		}
	}
}

func TestDefaultBackoff(t *testing.T) {
	var got []time.Duration
	for n := 1; n <= 8; n++ {
		got = append(got, DefaultBackoff(n))
	}
	ms := time.Millisecond
	want := []time.Duration{100 * ms, 200 * ms, 400 * ms, 800 * ms, 1600 * ms, 3200 * ms, 5000 * ms, 5000 * ms}
	if !slices.Equal(got, want) {
		t.Errorf("%v", got)
	}
}

// device is a fake serial device that can be unplugged.
type device struct {
	mu      sync.Mutex
	present bool
	opens   []time.Time
	clock   *clock
	line    *fakeLine
}

type fakeLine struct {
	clock  *clock // a timeout takes the read timeout, as on a real line
	hungUp bool   // empty reads return at once, as on a tty whose other side closed
	mu     sync.Mutex
	data   []byte
	err    error // returned once data is used up; nil means tarm's timeout
	closed bool
	wrote  []byte
}

func (l *fakeLine) Read(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return 0, os.ErrClosed
	}
	if len(l.data) > 0 {
		n := copy(p, l.data)
		l.data = l.data[n:]
		return n, nil
	}
	if l.err != nil {
		return 0, l.err
	}
	if !l.hungUp {
		l.clock.sleep(context.Background(), 100*time.Millisecond)
	}
	return 0, io.EOF
}

func (l *fakeLine) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err != nil {
		return 0, l.err
	}
	l.wrote = append(l.wrote, p...)
	return len(p), nil
}

func (l *fakeLine) Close() error {
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
	return nil
}

func (d *device) open(Config) (io.ReadWriteCloser, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.opens = append(d.opens, d.clock.now())
	if !d.present {
		return nil, &os.PathError{Op: "open", Path: "/dev/ttyUSB0", Err: syscall.ENOENT}
	}
	d.line = &fakeLine{clock: d.clock}
	return d.line, nil
}

func (d *device) unplug() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.present = false
	d.line.mu.Lock()
	d.line.err = &os.PathError{Op: "read", Path: "/dev/ttyUSB0", Err: syscall.EIO}
	d.line.mu.Unlock()
}

func (d *device) plug(data string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.present = true
}

// clock is a fake clock that Sleep advances.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) sleep(ctx context.Context, d time.Duration) error {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
	return ctx.Err()
}

func setup(t *testing.T, lazy bool) (*Port, *device, *clock, *[]Event) {
	t.Helper()
	c := &clock{t: time.Unix(1000, 0)}
	d := &device{present: !lazy, clock: c}
	var events []Event
	p, err := Open(context.Background(), Config{Device: "/dev/ttyUSB0"}, Options{
		Open: d.open, Now: c.now, Sleep: c.sleep, Lazy: lazy,
		Event: func(e Event) { events = append(events, e) },
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p, d, c, &events
}

func TestTimeoutNormalised(t *testing.T) {
	p, d, _, _ := setup(t, false)
	d.line.data = []byte("ab")
	buf := make([]byte, 8)
	if n, err := p.Read(buf); n != 2 || err != nil {
		t.Fatalf("%d %v", n, err)
	}
	_, err := p.Read(buf)
	var te interface{ Timeout() bool }
	if !errors.Is(err, ErrTimeout) || !errors.Is(err, os.ErrDeadlineExceeded) || !errors.As(err, &te) || !te.Timeout() {
		t.Fatalf("err = %v", err)
	}
	if errors.Is(err, io.EOF) {
		t.Error("a timeout still looks like EOF")
	}
}

func TestUnplugAndBack(t *testing.T) {
	p, d, c, events := setup(t, false)
	start := c.now()
	d.unplug()
	buf := make([]byte, 8)
	if _, err := p.Read(buf); !errors.Is(err, ErrTimeout) {
		t.Fatalf("read at unplug: %v", err)
	}
	if p.Present() || len(*events) != 1 || (*events)[0].Present || !errors.Is((*events)[0].Err, syscall.EIO) {
		t.Fatalf("events %+v", *events)
	}
	if _, err := p.Write([]byte("x")); !errors.Is(err, ErrGone) {
		t.Fatalf("write while away: %v", err)
	}
	// Reads keep timing out while reopen attempts back off.
	for range 12 {
		if _, err := p.Read(buf); !errors.Is(err, ErrTimeout) {
			t.Fatalf("read while away: %v", err)
		}
	}
	var gaps []time.Duration
	for i, o := range d.opens[1:] { // d.opens[0] is the first Open
		prev := start
		if i > 0 {
			prev = d.opens[i]
		}
		gaps = append(gaps, o.Sub(prev))
	}
	ms := time.Millisecond
	if !slices.Equal(gaps, []time.Duration{100 * ms, 200 * ms, 400 * ms}) {
		t.Errorf("reopen attempts after %v", gaps)
	}
	d.plug("")
	for p.Present() == false {
		if _, err := p.Read(buf); err != nil && !errors.Is(err, ErrTimeout) {
			t.Fatal(err)
		}
	}
	d.line.data = []byte("back")
	if n, err := p.Read(buf); err != nil || string(buf[:n]) != "back" {
		t.Fatalf("%q %v", buf[:n], err)
	}
	if last := (*events)[len(*events)-1]; !last.Present || last.Attempt < 3 {
		t.Errorf("events %+v", *events)
	}
	if _, err := p.Write([]byte("ok")); err != nil || string(d.line.wrote) != "ok" {
		t.Errorf("write after replug: %v", err)
	}
}

func TestLazyAndClose(t *testing.T) {
	p, d, _, _ := setup(t, true)
	if p.Present() {
		t.Fatal("present without a device")
	}
	if _, err := p.Read(make([]byte, 1)); !errors.Is(err, ErrTimeout) {
		t.Fatal(err)
	}
	d.plug("")
	for !p.Present() {
		p.Read(make([]byte, 1))
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Read(make([]byte, 1)); !errors.Is(err, ErrClosed) {
		t.Fatal(err)
	}
	if _, err := p.Write([]byte("x")); !errors.Is(err, ErrClosed) {
		t.Fatal(err)
	}
	if !d.line.closed {
		t.Error("device not closed")
	}
}

func TestOpenMissing(t *testing.T) {
	_, err := Open(context.Background(), Config{Device: "/nonexistent/tty"}, Options{})
	if !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("err = %v", err)
	}
}

// TestPty opens a real pty slave through tarm/serial: data, the read timeout,
// and the other side going away as a USB adapter does.
func TestPty(t *testing.T) {
	master, slave, err := pty.Open()
	if err != nil {
		if os.Getenv("POSAGENT_REQUIRE_BENCH") != "" {
			t.Fatalf("no pty: %v", err)
		}
		t.Skipf("no pty: %v", err)
	}
	defer slave.Close()
	var mu sync.Mutex
	var events []Event
	p, err := Open(context.Background(), Config{Device: slave.Name(), Baud: 115200}, Options{
		Event: func(e Event) { mu.Lock(); events = append(events, e); mu.Unlock() },
		Sleep: func(ctx context.Context, d time.Duration) error { return sleepCtx(ctx, time.Millisecond) },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if _, err := master.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	var got []byte
	buf := make([]byte, 16)
	for len(got) < 5 {
		n, err := p.Read(buf)
		if err != nil && !errors.Is(err, ErrTimeout) {
			t.Fatal(err)
		}
		got = append(got, buf[:n]...)
	}
	if string(got) != "hello" {
		t.Fatalf("%q", got)
	}
	t0 := time.Now()
	if _, err := p.Read(buf); !errors.Is(err, ErrTimeout) {
		t.Fatalf("idle read: %v", err)
	}
	if d := time.Since(t0); d < 50*time.Millisecond {
		t.Errorf("idle read returned after %v, before the line's timeout", d)
	}
	if _, err := p.Write([]byte("out")); err != nil {
		t.Fatal(err)
	}
	master.Close()
	slave.Close()
	for p.Present() {
		if _, err := p.Read(buf); err != nil && !errors.Is(err, ErrTimeout) {
			t.Fatalf("read after the master closed: %v", err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(events) == 0 || events[0].Present {
		t.Errorf("events %+v", events)
	}
}

func TestHangup(t *testing.T) {
	p, d, _, events := setup(t, false)
	buf := make([]byte, 4)
	// A real timeout now and then is not a hangup.
	for range 5 {
		if _, err := p.Read(buf); !errors.Is(err, ErrTimeout) || !p.Present() {
			t.Fatalf("timeout taken for a hangup: %v", err)
		}
	}
	d.line.mu.Lock()
	d.line.hungUp = true
	d.line.mu.Unlock()
	for i := 0; p.Present(); i++ {
		if i > quickEOFLimit {
			t.Fatal("hangup not noticed")
		}
		if _, err := p.Read(buf); !errors.Is(err, ErrTimeout) {
			t.Fatal(err)
		}
	}
	if len(*events) != 1 || !errors.Is((*events)[0].Err, ErrHangup) {
		t.Errorf("events %+v", *events)
	}
}
