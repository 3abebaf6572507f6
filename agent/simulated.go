//go:build !firmware

package agent

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/posagent/posagent/agent/acquirer"
	"github.com/posagent/posagent/agent/sim/inproc"
	"github.com/posagent/posagent/agent/sim/slipimage"
	"github.com/posagent/posagent/provisioning"
)

// The simulators are in every build but the firmware: the demo and the
// tests run the whole install on them.
func init() { newSimulator = newInproc }

// inprocSim is the simulator of agent/sim/inproc: every simulated device in
// this process, sharing one pause point.
type inprocSim struct {
	o      Options
	pauses *inproc.Pauses
}

func newInproc(o Options) simulator {
	return &inprocSim{o: o, pauses: &inproc.Pauses{At: o.PauseAt, Out: o.Stderr}}
}

func (s *inprocSim) Point(ctx context.Context, name string) { s.pauses.Point(ctx, name) }

func (s *inprocSim) Card(profiles []string) (provisioning.CardSource, error) {
	card, err := inproc.NewCard(profiles...)
	if err != nil {
		return nil, err
	}
	card.Pauses = s.pauses
	return card, nil
}

func (s *inprocSim) Host(ledger string) (provisioning.Host, acquirer.KeyStore, io.Closer, error) {
	host, err := inproc.OpenHost(ledger, provisioning.SystemClock{})
	if err != nil {
		return nil, nil, nil, err
	}
	host.Pauses = s.pauses
	return host, inproc.KeyStore(), host, nil
}

func (s *inprocSim) Printer(dir string, width int) (provisioning.Printer, func() int) {
	p := &inproc.Printer{Out: s.o.Stdout, Dir: dir, Width: width, Pauses: s.pauses}
	if s.o.SlipPictures {
		pics, err := slipPictures(width, s.o.SlipFontPaths)
		if err != nil {
			// Not fatal: the slips are still printed, as text.
			fmt.Fprintf(s.o.Stdout, "slip| %v\n", err)
		}
		p.Pictures = pics
	}
	return p, p.Printed
}

// slipPictures draws the simulated printer's slips as PNG pictures, so the
// demo leaves a slip one can look at. Without a CJK font (Debian's
// fonts-wqy-microhei) the demo goes on with text slips only, and the error
// says so in one line for the screen.
func slipPictures(width int, fonts []string) (inproc.Pictures, error) {
	r, err := slipimage.New(slipimage.Options{Dots: width * slipimage.CellWidth, SearchPaths: fonts})
	if errors.Is(err, slipimage.ErrNoFont) {
		// `make demo` installs nothing; the project's script does, on request.
		return nil, fmt.Errorf("slips as text only: no CJK font for the pictures (scripts/deps.sh demo installs %s)", slipimage.FontPackage)
	}
	if err != nil {
		return nil, fmt.Errorf("slips as text only: %w", err)
	}
	return r, nil
}
