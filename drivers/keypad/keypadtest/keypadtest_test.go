package keypadtest

import (
	"testing"
	"time"

	"periph.io/x/conn/v3/gpio"
)

func TestMatrixPaths(t *testing.T) {
	m := NewMatrix(2, 3)
	for _, s := range m.Sense {
		_ = s.In(gpio.PullUp, gpio.NoEdge)
	}
	_ = m.Drive[0].Out(gpio.Low)
	_ = m.Drive[1].In(gpio.Float, gpio.NoEdge)
	read := func() (out [3]gpio.Level) {
		for j, s := range m.Sense {
			out[j] = s.Read()
		}
		return out
	}
	if got := read(); got != [3]gpio.Level{gpio.High, gpio.High, gpio.High} {
		t.Fatalf("idle: %v", got)
	}
	m.Set([2]int{0, 1})
	if got := read(); got != [3]gpio.Level{gpio.High, gpio.Low, gpio.High} {
		t.Fatalf("one key: %v", got)
	}
	// (0,1), (1,1), (1,2): sense 2 reaches drive 0 through drive 1.
	m.Set([2]int{0, 1}, [2]int{1, 1}, [2]int{1, 2})
	if got := read(); got != [3]gpio.Level{gpio.High, gpio.Low, gpio.Low} {
		t.Fatalf("ghost path: %v", got)
	}
	// A key on an undriven line alone reads nothing.
	m.Set([2]int{1, 0})
	if got := read(); got != [3]gpio.Level{gpio.High, gpio.High, gpio.High} {
		t.Fatalf("undriven: %v", got)
	}
}

func TestMatrixScript(t *testing.T) {
	m := NewMatrix(1, 1)
	_ = m.Sense[0].In(gpio.PullUp, gpio.NoEdge)
	m.Script(nil, [][2]int{{0, 0}})
	want := []gpio.Level{gpio.High, gpio.Low, gpio.Low}
	for i, w := range want {
		// A scan drives line 0 Low, reads, then floats it: each drive
		// starts the next scripted step.
		_ = m.Drive[0].Out(gpio.Low)
		if got := m.Sense[0].Read(); got != w {
			t.Fatalf("scan %d: %s, want %s", i, got, w)
		}
		_ = m.Drive[0].In(gpio.Float, gpio.NoEdge)
		if got := m.Sense[0].Read(); got != gpio.High {
			t.Fatalf("scan %d, line floating: %s, want High", i, got)
		}
	}
	if m.Scans() != 3 {
		t.Fatalf("scans %d", m.Scans())
	}
}

func TestClock(t *testing.T) {
	c := NewClock(time.Unix(0, 0), time.Second)
	ch, stop := c.NewTicker(time.Second)
	defer stop()
	c.Tick(2)
	if got := (<-ch).Unix(); got != 1 {
		t.Fatalf("first tick %d", got)
	}
	if got := (<-ch).Unix(); got != 2 {
		t.Fatalf("second tick %d", got)
	}
	if got := (<-c.After(3 * time.Second)).Unix(); got != 5 || c.Now().Unix() != 5 {
		t.Fatalf("after: %d", got)
	}
	if len(c.Periods()) != 1 || len(c.Waits()) != 1 {
		t.Fatal("records")
	}
}

// TestPinIsGPIOTest checks that Pin keeps gpiotest's behaviour (In with a
// pull-up reads High, Out sets the level) and adds the direction and history.
func TestPinIsGPIOTest(t *testing.T) {
	p := NewPin("P", 1)
	if err := p.In(gpio.PullUp, gpio.NoEdge); err != nil {
		t.Fatal(err)
	}
	if l, out := p.Level(); l != gpio.High || out {
		t.Fatalf("after In(PullUp): %s output=%v", l, out)
	}
	_ = p.Out(gpio.Low)
	_ = p.Out(gpio.High)
	if l, out := p.Level(); l != gpio.High || !out {
		t.Fatalf("after Out: %s output=%v", l, out)
	}
	if got := p.Outs(); len(got) != 2 || got[0] != gpio.Low || got[1] != gpio.High {
		t.Fatalf("outs %v", got)
	}
	p.ResetOuts()
	if len(p.Outs()) != 0 || p.PullNow() != gpio.PullUp {
		t.Fatal("reset or pull")
	}
}
