// Command devsim publishes an emulated magstripe reader and ESC/POS receipt
// printer behind pseudo-terminals, for tests, demos and drivers on a bench
// without hardware.
//
//	devsim -dir /tmp/bench [-framing magtek|lines]
//
// It creates DIR/ttyMSR (the reader), DIR/ttyPRN (the printer) and DIR/slips/
// (each printed slip as UTF-8 text), prints "ready" once both are open, then
// reads commands from standard input, one per line (see "help"), until end of
// input or SIGINT/SIGTERM.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"github.com/posagent/posagent/agent/devsim"
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
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *dir == "" {
		return fmt.Errorf("-dir is required")
	}
	b, err := devsim.NewBench(*dir, *framing)
	if err != nil {
		return err
	}
	defer b.Close()
	var mu sync.Mutex // out is written by the printer's loop and by this one
	say := func(format string, a ...any) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(out, format, a...)
	}
	b.Printer.OnSlip(func(n int, text string) {
		say("slip %d printed:\n%s", n, text)
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
