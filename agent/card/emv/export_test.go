package emv

// Phase is the TVR and TSI (hex) at the end of one phase of a read.
type Phase struct{ Name, TVR, TSI string }

// TracePhases records the phases of the reads and sales until the returned
// function is called. Tests using it must not run in parallel.
func TracePhases() (got func() []Phase, stop func()) {
	var out []Phase
	phaseHook = func(name string, tvr, tsi []byte) { out = append(out, Phase{name, Hex(tvr), Hex(tsi)}) }
	return func() []Phase { return out }, func() { phaseHook = nil }
}
