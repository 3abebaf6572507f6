// Command hostsim is an acquirer host simulator for the UnionPay POS dialect
// (see package agent/sim/hostsim): a peer for the terminal's tests, bench and demo.
//
//	hostsim --listen 127.0.0.1:0 --ledger ledger.jsonl --tmk HEX [--mid MID,...]
//	        [--mac unionpay-ecb|x9.19] [--mac-full-key] [--batch 000001]
//	        [--cards DIR] [--arqc-decline-rc 05] [--tls-cert PEM --tls-key PEM]
//	        [--fault kind=action[:param][*times]]...
//	        [--codes unionpay|ic-end-351|centerm] [--key-layout standard|single-mak|tagged] [--des-tdk]
//	        [--demand kind[#n]=digits[,once]]... [--capk DIR|none] [--capk-page 5] [--aid-page 30]
//	        [--last-page-flag 3|1] [--app-version-tag 9F08|9F09] [--ic-tags posp|spec]
//	        [--capk-expiry ascii|bcd] [--netting gross|net] [--batch-advance settlement|sign-off]
//
// With --cards (e.g. testdata/cards) the simulator plays issuer for the
// cardsim profiles in DIR: a chip sale's ARQC must verify under the key of
// the profile with its PAN (else --arqc-decline-rc), and a chip card with no
// profile is declined 14. Without it field 55 is not checked.
//
// The install procedure: the IC public key download serves the TEST-ONLY
// keys of agent/sim/testca, --capk DIR others, --capk none none; the IC and
// terminal parameters are built in. --codes picks the acquirer's 60.3 code
// table, --key-layout how sign-on delivers the working keys (single-mak: a
// single-length MAK in the 16-byte slot), --demand the processing
// requirements the response header carries (e.g. "sign-on#1=45" asks for the
// IC keys then the IC parameters in the first sign-on's answer, "sale#1=3" to
// sign on again after the first sale). Fault kinds are the message kinds:
// sign-on echo sign-off sale void reversal capk-query capk-download capk-end
// ic-query ic-download ic-end params params-end status settle batch-upload
// batch-end; actions delay:D no-answer close-mid garbage wrong-mac duplicate
// wrong-rc[:RC] broken-62, and for chip sales with --cards bad-arpc (91
// corrupted), scripts (issuer scripts in 55) and bad-script-mac.
//
// It prints "listening on ADDR" once it accepts, so a script can start it on
// port 0 and read the port. The TMK may come from $HOSTSIM_TMK instead of the
// command line, where other users could read it.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/posagent/posagent/agent/acquirer"
	"github.com/posagent/posagent/agent/card/emv"
	"github.com/posagent/posagent/agent/sim/hostsim"
	"github.com/posagent/posagent/agent/sim/ledger"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

type list []string

// String joins the values (flag.Value).
func (f *list) String() string { return strings.Join(*f, ",") }

// Set adds one value of a repeatable flag (flag.Value).
func (f *list) Set(s string) error { *f = append(*f, s); return nil }

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
	var fl, dl list
	fs.Var(&fl, "fault", "inject a fault: kind=action[:param][*times]; kinds "+strings.Join(hostsim.Kinds, " ")+
		"; actions delay:D no-answer close-mid garbage wrong-mac duplicate wrong-rc[:RC] broken-62 wrong-cv bad-arpc scripts bad-script-mac (repeatable)")
	codes := fs.String("codes", hostsim.TableUnionPay.Name, "60.3 code table: "+strings.Join(hostsim.CodeTableNames(), ", "))
	layout := fs.String("key-layout", string(hostsim.LayoutStandard), "sign-on key layout: standard, single-mak (a single-length MAK in the 16-byte slot) or tagged")
	desTDK := fs.Bool("des-tdk", false, "single-DES (001) sign-on answers carry a TDK too")
	tmkDownload := fs.Bool("tmk-download", false, "answer the remote TMK download (the code table's TMK codes, 352/351): a fresh TMK per terminal under its RSA key")
	fs.Var(&dl, "demand", "processing requirement schedule: kind[#n]=digits[,once], kind a message kind, capk-change or ic-change (repeatable)")
	capkDir := fs.String("capk", "", "directory with capk.yaml: the CA public keys of the IC key download; empty serves the TEST-ONLY keys of agent/sim/testca, \"none\" a host with none")
	capkPage := fs.Int("capk-page", 5, "CA public keys per query answer")
	aidPage := fs.Int("aid-page", 30, "AIDs per query answer")
	lastPage := fs.String("last-page-flag", "3", "field 62 control byte of a query's last answer of several: 3 or 1")
	appVer := fs.String("app-version-tag", "9F08", "tag of the application version in the IC parameters: 9F08 or 9F09")
	icTags := fs.String("ic-tags", hostsim.ICTagsPOSP, "IC parameter tags: posp (16, as the public POSPs send) or spec (12)")
	expiry := fs.String("capk-expiry", hostsim.ExpiryASCII, "DF05 format: ascii (8 digits) or bcd (4 bytes)")
	netting := fs.String("netting", hostsim.NettingGross, "settlement counting of a voided sale: gross (a debit and its void a credit) or net (neither)")
	advance := fs.String("batch-advance", hostsim.AdvanceAtSettlement, "when the batch advances: settlement (at the batch upload's end) or sign-off")
	issuer := fs.String("issuer", hostsim.DefaultIssuer, "issuer institution code of field 44 in approved sales and voids (the slip's 发卡行)")
	acq := fs.String("acquirer", hostsim.DefaultAcquirer, "acquirer institution code of field 44 in approved sales and voids (the slip's 收单行)")
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
		ARQCDeclineRC: *arqcRC, TMKDownload: *tmkDownload}
	if len(*arqcRC) != 2 {
		fmt.Fprintln(stderr, "hostsim: --arqc-decline-rc: want a 2-character response code")
		return 2
	}
	table, ok := hostsim.CodeTables[*codes]
	if !ok {
		fmt.Fprintln(stderr, "hostsim: --codes: want one of", strings.Join(hostsim.CodeTableNames(), ", "))
		return 2
	}
	cfg.Codes, cfg.KeyLayout, cfg.DESWithTDK = table, hostsim.KeyLayout(*layout), *desTDK
	cfg.CAPKPage, cfg.AIDPage = *capkPage, *aidPage
	cfg.ICTags, cfg.ExpiryFormat, cfg.Netting, cfg.BatchAdvance = *icTags, *expiry, *netting, *advance
	cfg.Issuer, cfg.Acquirer = *issuer, *acq
	if len(*lastPage) != 1 {
		fmt.Fprintln(stderr, "hostsim: --last-page-flag: want 3 or 1")
		return 2
	}
	cfg.LastPageFlag = (*lastPage)[0]
	tag, err := strconv.ParseUint(*appVer, 16, 16)
	if err != nil {
		fmt.Fprintln(stderr, "hostsim: --app-version-tag: want 9F08 or 9F09")
		return 2
	}
	cfg.AppVersionTag = emv.Tag(tag)
	for _, d := range dl {
		dm, err := hostsim.ParseDemand(d)
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 2
		}
		cfg.Demands = append(cfg.Demands, dm)
	}
	switch *capkDir {
	case "":
	case "none":
		cfg.NoCAPKs = true
	default:
		keys, err := hostsim.LoadCAPKs(*capkDir)
		if err != nil {
			fmt.Fprintln(stderr, "hostsim: --capk:", err)
			return 2
		}
		cfg.CAPKs = keys
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
		if errors.Is(err, hostsim.ErrConfig) {
			return 2
		}
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
	log.Info("hostsim up", "addr", addr.String(), "tmk", tmk, "ledger", *ledgerPath, "cards", len(cfg.Cards),
		"codes", cfg.Codes.Name, "key_layout", cfg.KeyLayout, "capks", len(cfg.CAPKs), "demands", len(cfg.Demands))
	<-ctx.Done()
	srv.Close()
	return 0
}
