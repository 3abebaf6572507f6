// Command devsim publishes an emulated magstripe reader and ESC/POS receipt
// printer behind pseudo-terminals, for tests, demos and drivers on a bench
// without hardware.
//
//	devsim -dir /tmp/bench [-framing magtek|lines] [-slips DIR] [-font FILE] [-png=false]
//
// It creates DIR/ttyMSR (the reader), DIR/ttyPRN (the printer) and DIR/slips/
// (or -slips), where each printed slip is written as UTF-8 text (slip-NNN.txt)
// and as a PNG picture of the paper (slip-NNN.png). It prints "ready" once both
// devices are open, then reads commands from standard input, one per line (see
// "help"), until end of input or SIGINT/SIGTERM.
//
// Pictures need a CJK font: -font names one, else the Debian font paths listed
// in agent/sim/slipimage are searched (apt-get install fonts-wqy-microhei). When
// none is found devsim says so and writes text only; a -font that cannot be
// used is an error, since it was asked for.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"github.com/posagent/posagent/agent/sim/devsim"
	"github.com/posagent/posagent/agent/sim/slipimage"
)

func main() {
	if err := run(os.Args[1:], os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "devsim:", err)
		os.Exit(1)
	}
}

func run(args []string, in io.Reader, out io.Writer) error {
	fs := flag.NewFlagSet("devsim", flag.ContinueOnError)
	dir := fs.String("dir", "", "directory for ttyMSR, ttyPRN and slips/ (required)")
	framing := fs.String("framing", "magtek", "magstripe reader framing: magtek or lines")
	slips := fs.String("slips", "", "directory for printed slips (default DIR/slips)")
	fontPath := fs.String("font", "", "CJK font (.ttc/.ttf) for slip pictures (default: search the Debian font paths)")
	pictures := fs.Bool("png", true, "also write each slip as a PNG picture")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *dir == "" {
		return fmt.Errorf("-dir is required")
	}
	var mu sync.Mutex // out is written by the printer's loop and by this one
	say := func(format string, a ...any) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(out, format, a...)
	}
	opts := devsim.BenchOptions{Framing: *framing, Slips: *slips}
	if *pictures {
		r, err := slipimage.New(slipimage.Options{FontPath: *fontPath})
		switch {
		case err == nil:
			opts.Pictures = r
			say("slip pictures with %s\n", r.FontPath())
		case *fontPath == "" && errors.Is(err, slipimage.ErrNoFont):
			// Text slips still work: run without pictures rather than not at all.
			say("no slip pictures: %v\n", err)
		default:
			return err
		}
	}
	b, err := devsim.OpenBench(*dir, opts)
	if err != nil {
		return err
	}
	defer b.Close()
	b.Printer.OnSlip(func(s devsim.PrintedSlip) {
		say("slip %d printed:\n%s", s.N, s.Text)
		if s.Picture != "" {
			say("slip %d picture %s\n", s.N, s.Picture)
		}
	})
	say("reader %s\nprinter %s\nready\n", b.Reader.Path(), b.Printer.Path())

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(in)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			case <-ctx.Done():
				return
			}
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return nil
		case line, ok := <-lines:
			if !ok || line == "quit" {
				return nil
			}
			msg, err := b.Exec(line)
			if err != nil {
				say("error: %v\n", err)
				continue
			}
			if msg != "" {
				say("%s\n", msg)
			}
		}
	}
}
