// Command cardsim is a virtual UnionPay chip card for real pcscd: it loads a
// profile (testdata/cards/*.yaml) and plugs the card into a
// vsmartcard-vpcd slot over loopback TCP, so any PC/SC client — posagent,
// posctl, pcsc_scan — sees a card in "Virtual PCD 00 0N".
//
//	cardsim -profile testdata/cards/debit.yaml [-slot 0|1] [-addr 127.0.0.1:35963]
//
// The card stays inserted until SIGINT/SIGTERM (removal) or until a "remove"
// fault in the profile pulls it. Exit status: 0 removed by signal, 1 error.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/posagent/posagent/agent/sim/cardsim"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "cardsim:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("cardsim", flag.ContinueOnError)
	profile := fs.String("profile", "", "card profile (YAML)")
	slot := fs.Int("slot", 0, "vpcd slot: 0 (port 35963) or 1 (port 35964)")
	addr := fs.String("addr", "", "vpcd address, overrides -slot (loopback only)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *profile == "" {
		return errors.New("-profile is required")
	}
	if *slot != 0 && *slot != 1 {
		return errors.New("-slot must be 0 or 1")
	}
	p, err := cardsim.LoadProfile(*profile)
	if err != nil {
		return err
	}
	card, err := cardsim.New(p)
	if err != nil {
		return err
	}
	a := *addr
	if a == "" {
		a = cardsim.VPCDAddr(*slot)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	err = cardsim.Plug(ctx, a, card, func() { log.Info("card inserted", "profile", p.Name, "vpcd", a) })
	log.Info("card removed", "profile", p.Name, "commands", card.Commands())
	return err
}
