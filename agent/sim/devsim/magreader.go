package devsim

import (
	"fmt"
	"maps"
	"slices"

	"github.com/posagent/posagent/drivers/magstripe"
)

// Profile is a test card as its stripe reads. The numbers are test numbers.
type Profile struct {
	PAN         string
	Name        string // track 1 name, e.g. "ZHANG/SAN"
	Expiry      string // YYMM
	ServiceCode string // "101" magstripe only, "220" chip card …
	// Bad lists tracks the reader fails to read (sent as E).
	Bad []int
	// Raw, when set, replaces the tracks entirely (damaged stripes).
	Raw []string
}

// Tracks returns the profile's tracks 1 and 2 with sentinels (and a track 3
// for magstripe-only cards), E for the bad ones.
func (p Profile) Tracks() []string {
	if p.Raw != nil {
		return p.Raw
	}
	t := []string{
		"%B" + p.PAN + "^" + p.Name + "^" + p.Expiry + p.ServiceCode + "0000000000000?",
		";" + p.PAN + "=" + p.Expiry + p.ServiceCode + "0000000000?",
		"+99" + p.PAN + "=1561560000000000000003000000000000000000000000=000000000000=0000000000000?",
	}
	for _, b := range p.Bad {
		if b >= 1 && b <= 3 {
			t[b-1] = "E"
		}
	}
	return t
}

// Profiles are the built-in test cards by name.
var Profiles = map[string]Profile{
	"good":    {PAN: "6217900000000000120", Name: "ZHANG/SAN", Expiry: "3012", ServiceCode: "101"},
	"chip":    {PAN: "6217900000000000120", Name: "ZHANG/SAN", Expiry: "3012", ServiceCode: "220"},
	"expired": {PAN: "6217900000000000120", Name: "ZHANG/SAN", Expiry: "2401", ServiceCode: "101"},
	"track2":  {PAN: "6217900000000000120", Name: "ZHANG/SAN", Expiry: "3012", ServiceCode: "101", Bad: []int{2}},
	"damaged": {Raw: []string{"%B62179000^ZH#NG?", ";62179000000000001=30?", "E"}},
}

// ProfileNames lists the built-in profiles, sorted.
func ProfileNames() []string { return slices.Sorted(maps.Keys(Profiles)) }

// MagReader emulates a serial magstripe reader.
type MagReader struct {
	line    *line
	framing magstripe.Framing
}

// NewMagReader publishes an emulated reader with the given framing at link.
func NewMagReader(link string, f magstripe.Framing) (*MagReader, error) {
	l, err := newLine(link)
	if err != nil {
		return nil, err
	}
	return &MagReader{line: l, framing: f}, nil
}

// Path is where the driver opens the reader.
func (m *MagReader) Path() string { return m.line.link }

// Swipe sends one swipe of p, framed as the reader would.
func (m *MagReader) Swipe(p Profile) error {
	return m.line.write(m.framing.Encode('0', p.Tracks()...))
}

// SwipeNamed swipes a built-in profile.
func (m *MagReader) SwipeNamed(name string) error {
	p, ok := Profiles[name]
	if !ok {
		return fmt.Errorf("devsim: no profile %q (have %v)", name, ProfileNames())
	}
	return m.Swipe(p)
}

// Send puts raw bytes on the line: noise, half a frame.
func (m *MagReader) Send(b []byte) error { return m.line.write(b) }

// Unplug makes the reader vanish as an unplugged USB adapter does.
func (m *MagReader) Unplug() error { return m.line.unplug() }

// Plug brings the reader back at the same path.
func (m *MagReader) Plug() error { return m.line.plug() }

// Close unplugs the reader and removes its path.
func (m *MagReader) Close() error { return m.line.close() }
