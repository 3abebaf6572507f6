package keypadtest

import (
	"fmt"
	"sync"

	"periph.io/x/conn/v3/gpio"
)

// Matrix wires Drive and Sense pins into a key matrix without diodes, the
// way cheap POS keypads are built: a pressed key shorts its drive line to its
// sense line. A sense line reads Low when a chain of pressed keys connects it
// to a drive line that is an output driving Low; otherwise it reads its pull
// (High for a pull-up). Chains through several keys are what make ghost keys:
// with (0,0), (0,1) and (1,0) down, driving line 1 low reaches sense 1 through
// 1→0→0→1, so (1,1) looks pressed too.
//
// Keys are addressed by (drive, sense) index, whatever the keypad calls rows.
// Pressed sets may be changed at any time, or scripted per scan.
type Matrix struct {
	Drive []*Pin
	Sense []*Pin

	mu      sync.Mutex
	pressed map[[2]int]bool
	script  [][][2]int
	scans   int
}

// NewMatrix makes drive and sense pins named D0…, S0… and wires them.
func NewMatrix(drive, sense int) *Matrix {
	m := &Matrix{pressed: map[[2]int]bool{}}
	for i := 0; i < drive; i++ {
		m.Drive = append(m.Drive, &Pin{N: fmt.Sprintf("D%d", i), Num: i})
	}
	for j := 0; j < sense; j++ {
		p := &Pin{N: fmt.Sprintf("S%d", j), Num: 100 + j}
		p.Sense = func() gpio.Level { return m.read(p, j) }
		m.Sense = append(m.Sense, p)
	}
	return m
}

// Set replaces the set of pressed keys.
func (m *Matrix) Set(keys ...[2]int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.pressed = map[[2]int]bool{}
	for _, k := range keys {
		m.pressed[k] = true
	}
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

// read computes sense line j's level. It is called by the pin's Read.
func (m *Matrix) read(p *Pin, j int) gpio.Level {
	low := make([]bool, len(m.Drive))
	for i, d := range m.Drive {
		l, out := d.Level()
		low[i] = out && l == gpio.Low
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.script) > 0 && j == 0 && low[0] {
		// Sense line 0 is read once per scan while drive line 0 is low:
		// that read marks the start of a scan.
		idx := m.scans
		if idx >= len(m.script) {
			idx = len(m.script) - 1
		}
		m.pressed = map[[2]int]bool{}
		for _, k := range m.script[idx] {
			m.pressed[k] = true
		}
		m.scans++
	}
	// Breadth-first search from sense line j over pressed keys.
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
			if low[i] {
				return gpio.Low
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
	if p.Pull() == gpio.PullDown {
		return gpio.Low
	}
	return gpio.High
}
