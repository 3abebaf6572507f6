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
	_ = m.Drive[0].Out(gpio.Low)
	m.Script(nil, [][2]int{{0, 0}})
	want := []gpio.Level{gpio.High, gpio.Low, gpio.Low}
	for i, w := range want {
		if got := m.Sense[0].Read(); got != w {
			t.Fatalf("scan %d: %s, want %s", i, got, w)
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

func TestPinEdges(t *testing.T) {
	p := &Pin{N: "P"}
	if err := p.In(gpio.PullDown, gpio.RisingEdge); err == nil {
		t.Fatal("edges without EdgesChan")
	}
	p.EdgesChan = make(chan gpio.Level, 1)
	p.EdgesChan <- gpio.High
	if !p.WaitForEdge(0) || p.Read() != gpio.High || p.WaitForEdge(0) {
		t.Fatal("edges")
	}
}
