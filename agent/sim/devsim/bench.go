package devsim

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/posagent/posagent/agent/sim/slipimage"
	"github.com/posagent/posagent/drivers/magstripe"
)

// Bench is a magstripe reader and a printer published side by side in one
// directory (ttyMSR, ttyPRN, slips/), driven by text commands: what cmd/devsim
// reads from its standard input and test scripts send it.
type Bench struct {
	Reader  *MagReader
	Printer *Printer
}

// BenchOptions tune OpenBench; the zero value is NewBench's defaults.
type BenchOptions struct {
	// Framing is the reader's framing: "magtek" (the default) or "lines".
	Framing string
	// Slips is where printed slips go; "" means DIR/slips.
	Slips string
	// Pictures, when set, also draws each slip as a PNG next to its text.
	Pictures *slipimage.Renderer
}

// NewBench publishes both devices in dir; framing is "magtek" or "lines".
func NewBench(dir, framing string) (*Bench, error) {
	return OpenBench(dir, BenchOptions{Framing: framing})
}

// OpenBench publishes both devices in dir (ttyMSR, ttyPRN) as opts says.
func OpenBench(dir string, opts BenchOptions) (*Bench, error) {
	f, err := magstripe.FramingByName(opts.Framing)
	if err != nil {
		return nil, fmt.Errorf("devsim: %w", err)
	}
	slips := opts.Slips
	if slips == "" {
		slips = filepath.Join(dir, "slips")
	}
	if err := os.MkdirAll(slips, 0o700); err != nil {
		return nil, err
	}
	r, err := NewMagReader(filepath.Join(dir, "ttyMSR"), f)
	if err != nil {
		return nil, err
	}
	p, err := NewPrinter(filepath.Join(dir, "ttyPRN"), slips)
	if err != nil {
		r.Close()
		return nil, err
	}
	p.SetPictures(opts.Pictures)
	return &Bench{Reader: r, Printer: p}, nil
}

// Close closes both devices.
func (b *Bench) Close() error { return errors.Join(b.Reader.Close(), b.Printer.Close()) }

// Help lists the commands Exec understands.
const Help = `swipe PROFILE        swipe a test card (` + "good, chip, expired, track2, damaged" + `)
garbage [TEXT]       put noise (default: binary junk and half a frame) on the reader's line
unplug | plug        the reader vanishes / comes back at the same path
paper out|in         the printer runs out of paper / paper loaded
paper after N        the paper runs out after N more printed lines
cover open|shut      the printer's cover
slips                how many slips were printed
help`

// Exec runs one command line and returns what to tell the user.
func (b *Bench) Exec(line string) (string, error) {
	f := strings.Fields(line)
	if len(f) == 0 {
		return "", nil
	}
	arg := func(i int) string {
		if i < len(f) {
			return f[i]
		}
		return ""
	}
	switch f[0] {
	case "swipe":
		if err := b.Reader.SwipeNamed(arg(1)); err != nil {
			return "", err
		}
		return "swiped " + arg(1), nil
	case "garbage":
		junk := []byte("\x00\xff\x1b junk \x02\x1b;621790")
		if len(f) > 1 {
			junk = []byte(strings.Join(f[1:], " "))
		}
		return "sent noise", b.Reader.Send(junk)
	case "unplug":
		return "reader unplugged", b.Reader.Unplug()
	case "plug":
		return "reader plugged in", b.Reader.Plug()
	case "paper":
		switch arg(1) {
		case "out":
			b.Printer.SetPaperOut(true)
			return "paper out", nil
		case "in":
			b.Printer.SetPaperOut(false)
			return "paper loaded", nil
		case "after":
			n, err := strconv.Atoi(arg(2))
			if err != nil || n <= 0 {
				return "", fmt.Errorf("devsim: paper after: want a line count, got %q", arg(2))
			}
			b.Printer.PaperOutAfter(n)
			return fmt.Sprintf("paper runs out after %d lines", n), nil
		}
	case "cover":
		switch arg(1) {
		case "open", "shut":
			b.Printer.SetCoverOpen(arg(1) == "open")
			return "cover " + arg(1), nil
		}
	case "slips":
		return fmt.Sprintf("%d slips", len(b.Printer.Slips())), nil
	case "help":
		return Help, nil
	}
	return "", fmt.Errorf("devsim: unknown command %q (try help)", line)
}
