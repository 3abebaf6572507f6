package keypadtest

import (
	"fmt"
	"sync"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpiotest"
)

// Matrix wires Drive and Sense pins into a key matrix without diodes, the
// way cheap POS keypads are built: a pressed key shorts its drive line to its
// sense line. A sense line reads Low when a chain of pressed keys connects it
// to a drive line that is an output driving Low; otherwise it reads High, its
// pull-up. Chains through several keys are what make ghost keys: with (0,0),
// (0,1) and (1,0) down, driving line 1 low reaches sense 1 through 1→0→0→1,
// so (1,1) looks pressed too.
//
// The sense lines are plain gpiotest.Pins: the wiring writes their L (under
// their Mutex) whenever a drive line changes or the pressed keys change, so
// the scanner reads them exactly as it reads any gpiotest.Pin.
//
// Keys are addressed by (drive, sense) index, whatever the keypad calls rows.
// Pressed sets may be changed at any time, or scripted per scan.
type Matrix struct {
	Drive []*Pin
	Sense []*gpiotest.Pin

	mu      sync.Mutex
	pressed map[[2]int]bool
	low     []bool // drive line i is an output driving Low
	script  [][][2]int
	scans   int
}

// NewMatrix makes drive and sense pins named D0…, S0… and wires them.
func NewMatrix(drive, sense int) *Matrix {
	m := &Matrix{pressed: map[[2]int]bool{}, low: make([]bool, drive)}
	for i := 0; i < drive; i++ {
		p := NewPin(fmt.Sprintf("D%d", i), i)
		i := i
		p.changed = func(_ *Pin, out bool, l gpio.Level) { m.driven(i, out && l == gpio.Low) }
		m.Drive = append(m.Drive, p)
	}
	for j := 0; j < sense; j++ {
		m.Sense = append(m.Sense, &gpiotest.Pin{N: fmt.Sprintf("S%d", j), Num: 100 + j, L: gpio.High})
	}
	return m
}

// Set replaces the set of pressed keys.
func (m *Matrix) Set(keys ...[2]int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.press(keys)
	m.settle()
}

// Script makes scan i (counted from the first time drive line 0 is driven
// Low after this call) see steps[i] pressed; the last step holds afterwards.
// A script lets a test preload ticks and still change keys between scans
// without racing the scanner.
func (m *Matrix) Script(steps ...[][2]int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.script, m.scans = steps, 0
}

// Scans returns how many scans began since the last Script call.
func (m *Matrix) Scans() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.scans
}

func (m *Matrix) press(keys [][2]int) {
	m.pressed = map[[2]int]bool{}
	for _, k := range keys {
		m.pressed[k] = true
	}
}

// driven is called by drive line i after each In or Out.
func (m *Matrix) driven(i int, low bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if i == 0 && low && len(m.script) > 0 {
		// Every scan drives line 0 first: that marks the start of a scan.
		idx := min(m.scans, len(m.script)-1)
		m.press(m.script[idx])
		m.scans++
	}
	m.low[i] = low
	m.settle()
}

// settle writes every sense line's level from the wiring. m.mu is held.
func (m *Matrix) settle() {
	for j, s := range m.Sense {
		l := gpio.High
		if m.reachesLow(j) {
			l = gpio.Low
		}
		s.Lock()
		s.L = l
		s.Unlock()
	}
}

// reachesLow searches breadth-first from sense line j over pressed keys for
// a drive line driving Low.
func (m *Matrix) reachesLow(j int) bool {
	seenD := make([]bool, len(m.Drive))
	seenS := make([]bool, len(m.Sense))
	seenS[j] = true
	queue := []int{j}
	for len(queue) > 0 {
		s := queue[0]
		queue = queue[1:]
		for i := range m.Drive {
			if seenD[i] || !m.pressed[[2]int{i, s}] {
				continue
			}
			if m.low[i] {
				return true
			}
			seenD[i] = true
			for s2 := range m.Sense {
				if !seenS[s2] && m.pressed[[2]int{i, s2}] {
					seenS[s2] = true
					queue = append(queue, s2)
				}
			}
		}
	}
	return false
}
