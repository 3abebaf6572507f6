// Command hostsim is an acquirer host simulator for the UnionPay POS dialect
// (see package agent/sim/hostsim): a peer for the terminal's tests, bench and demo.
//
//	hostsim --listen 127.0.0.1:0 --ledger ledger.jsonl --tmk HEX [--mid MID,...]
//	        [--mac unionpay-ecb|x9.19] [--mac-full-key] [--batch 000001]
//	        [--cards DIR] [--arqc-decline-rc 05] [--tls-cert PEM --tls-key PEM]
//	        [--fault kind=action[:delay][*times]]...
//
// With --cards (e.g. testdata/cards) the simulator plays issuer for the
// cardsim profiles in DIR: a chip sale's ARQC must verify under the key of
// the profile with its PAN (else --arqc-decline-rc), and a chip card with no
// profile is declined 14. Without it field 55 is not checked.
//
// It prints "listening on ADDR" once it accepts, so a script can start it on
// port 0 and read the port. The TMK may come from $HOSTSIM_TMK instead of the
// command line, where other users could read it.
package main

import (
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/posagent/posagent/agent/acquirer"
	"github.com/posagent/posagent/agent/sim/hostsim"
	"github.com/posagent/posagent/agent/sim/ledger"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

type faults []string

// String joins the faults (flag.Value).
func (f *faults) String() string { return strings.Join(*f, ",") }

// Set adds one --fault (flag.Value).
func (f *faults) Set(s string) error { *f = append(*f, s); return nil }

// run is main without the process: it returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("hostsim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:0", "TCP address to listen on (loopback only in tests)")
	ledgerPath := fs.String("ledger", "", "ledger file (JSON lines, fsynced per entry); required")
	tmkHex := fs.String("tmk", "", "terminal master key, hex (or $HOSTSIM_TMK)")
	mids := fs.String("mid", "", "known merchant ids, comma separated; empty accepts every MID")
	mac := fs.String("mac", string(acquirer.MACUnionPayECB), "MAC algorithm: unionpay-ecb or x9.19")
	fullKey := fs.Bool("mac-full-key", false, "MAC with the whole double-length MAK (3DES)")
	batch := fs.String("batch", "000001", "batch number handed out at sign-on")
	cardsDir := fs.String("cards", "", "directory of cardsim profiles (*.yaml) whose keys verify chip sales' ARQC; empty skips the check")
	arqcRC := fs.String("arqc-decline-rc", "05", "response code for a chip sale whose ARQC does not verify")
	tlsCert := fs.String("tls-cert", "", "serve TLS with this certificate (PEM); needs --tls-key")
	tlsKey := fs.String("tls-key", "", "the certificate's private key (PEM)")
	var fl faults
	fs.Var(&fl, "fault", "inject a fault: kind=action[:delay][*times]; kinds sign-on echo sale void reversal; actions delay no-answer close-mid garbage wrong-mac duplicate (repeatable)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	if *tmkHex == "" {
		*tmkHex = os.Getenv("HOSTSIM_TMK")
	}
	tmk, err := acquirer.ParseKey(*tmkHex)
	if err != nil {
		fmt.Fprintln(stderr, "hostsim: --tmk:", err)
		return 2
	}
	if *ledgerPath == "" {
		fmt.Fprintln(stderr, "hostsim: --ledger is required")
		return 2
	}
	cfg := hostsim.Config{TMK: tmk, MAC: acquirer.MACAlgorithm(*mac), MACFullKey: *fullKey, Batch: *batch, Log: log,
		ARQCDeclineRC: *arqcRC}
	if len(*arqcRC) != 2 {
		fmt.Fprintln(stderr, "hostsim: --arqc-decline-rc: want a 2-character response code")
		return 2
	}
	if *cardsDir != "" {
		cards, err := hostsim.LoadCards(*cardsDir)
		if err != nil {
			fmt.Fprintln(stderr, "hostsim: --cards:", err)
			return 2
		}
		cfg.Cards = cards
	}
	if *mids != "" {
		cfg.MIDs = strings.Split(*mids, ",")
	}
	if (*tlsCert == "") != (*tlsKey == "") {
		fmt.Fprintln(stderr, "hostsim: --tls-cert and --tls-key go together")
		return 2
	}
	if *tlsCert != "" {
		cert, err := tls.LoadX509KeyPair(*tlsCert, *tlsKey)
		if err != nil {
			fmt.Fprintln(stderr, "hostsim: --tls-cert:", err)
			return 2
		}
		cfg.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	type inj struct {
		kind string
		f    hostsim.Fault
	}
	var injs []inj
	for _, s := range fl {
		k, f, err := hostsim.ParseFault(s)
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 2
		}
		injs = append(injs, inj{k, f})
	}
	if _, err := acquirer.ComputeMAC(cfg.MAC, make(acquirer.Key, 8), nil); err != nil {
		fmt.Fprintln(stderr, "hostsim: --mac:", err)
		return 2
	}
	l, err := ledger.Open(*ledgerPath)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	defer l.Close()
	cfg.Ledger = l
	srv, err := hostsim.New(cfg)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	for _, i := range injs {
		srv.Inject(i.kind, i.f)
	}
	addr, err := srv.Listen(*listen)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	fmt.Fprintln(stdout, "listening on", addr)
	log.Info("hostsim up", "addr", addr.String(), "tmk", tmk, "ledger", *ledgerPath, "cards", len(cfg.Cards))
	<-ctx.Done()
	srv.Close()
	return 0
}
