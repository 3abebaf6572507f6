// Command posctl is the field and support tool for posagent terminals.
//
//	posctl watch --mqtt URL [--tid TID | --tid-prefix P] [--json | --table] [--once] [--metrics ADDR] [--user U --password-file F]
//	posctl watch --amqp URL [--amqp URL …] [--queue-prefix NAME] [--shards K] [--json | --table] [--metrics ADDR] [--user U --password-file F]
//	posctl decode track [--reveal] [--lrc] TRACK
//	posctl decode tlv [--reveal] HEX
//	posctl decode iso8583 [--spec unionpay] [--reveal] HEX
//	posctl card read [--reader NAME] [--json] [--timeout D] [--capks FILE] [--contactless [--offline]]
//	posctl keys inject --state-dir DIR --kcv HEX [--replace] < TMK-HEX
//	posctl account-check --tid TID --tmk-file FILE < PAN
//	posctl ticket --key PRIVFILE --kid KID --tid TID --mid MID ... [--publish URL]
//	posctl command --key PRIVFILE --kid KID --tid TID [--publish URL [--wait D]] NAME [ARGS-JSON]
//
// watch shows what central monitoring sees (agent/central/monitor): presence, the
// retained status and every event of one terminal or the whole fleet; with
// --metrics ADDR (host:port) it also serves the fleet's Prometheus metrics at
// http://ADDR/metrics (not in the firmware build). More
// subcommands (decode, card, ticket) plug into the switch in run.
//
// Exit status: 0 done (including Ctrl-C), 1 runtime error, 2 bad usage.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/posagent/posagent/agent/central/monitor"
)

const usage = `usage: posctl <command> [flags]

commands:
  watch   follow what central monitoring sees, live over MQTT or from RabbitMQ's queues
          posctl watch --mqtt URL [--tid TID | --tid-prefix P] [--json | --table] [--once] [--metrics ADDR] [--user U --password-file F]
          posctl watch --amqp URL [--amqp URL ...] [--queue-prefix NAME] [--shards K] [--json | --table] [--metrics ADDR] [--user U --password-file F]
  decode  decode what a device sent, card numbers masked
          posctl decode track [--reveal] [--lrc] TRACK
          posctl decode tlv [--reveal] HEX
          posctl decode iso8583 [--spec unionpay] [--reveal] HEX
  card    read the chip card in a PC/SC reader (masked summary)
          posctl card read [--reader NAME] [--json] [--timeout 60s] [--capks FILE] [--contactless [--offline]]
  keys    inject the acquirer's terminal master key (read from stdin)
          posctl keys inject --state-dir DIR --kcv HEX [--replace] < TMK-HEX
          posctl keys show --state-dir DIR
  account-check  the merchant record's account_check of a settlement card, for one terminal
          posctl account-check --tid TID --tmk-file FILE < FILE-WITH-THE-PAN
  hash-password  the installer password's hash for installer.password_hash
          posctl hash-password < FILE-WITH-THE-DIGITS
  ticket  sign an install ticket (or make the key pair) and print or publish it
          posctl ticket --key PRIVFILE --tid TID --mid MID ... [--publish URL]
          posctl ticket keygen --out PREFIX
  command sign one of central's commands for a terminal and print or publish it
          posctl command --key PRIVFILE --kid KID --tid TID [--publish URL [--wait 30s]] NAME [ARGS-JSON]

run "posctl <command> -h" for the flags of a command.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run is the whole command, minus os.Exit, so tests call it with buffers.
// args excludes the program name.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	// SIGINT/SIGTERM cancel the context: a watch ends cleanly with exit 0.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	switch args[0] {
	case "watch":
		return watch(ctx, args[1:], stdout, stderr)
	case "decode":
		return decode(args[1:], stdout, stderr)
	case "ticket":
		return ticketCmd(ctx, args[1:], stdout, stderr)
	case "command":
		return commandCmd(ctx, args[1:], stdout, stderr)
	case "card":
		return card(ctx, args[1:], stdout, stderr)
	case "keys":
		return keys(args[1:], os.Stdin, stdout, stderr)
	case "account-check":
		return accountCheck(args[1:], os.Stdin, stdout, stderr)
	case "hash-password":
		return hashPassword(args[1:], os.Stdin, stdout, stderr)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "posctl: unknown command %q\n%s", args[0], usage)
		return 2
	}
}

// watch runs `posctl watch`.
func watch(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("posctl watch", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		o           monitor.Options
		passFile    string
		metricsAddr string
		q           queueFlags
	)
	q.register(fs)
	fs.StringVar(&o.TIDPrefix, "tid-prefix", "", "keep only terminals whose TID starts with this (live MQTT: the broker still sends this monitor every terminal)")
	fs.StringVar(&o.URL, "mqtt", "", "broker URL, e.g. tcp://127.0.0.1:1883 or ssl://broker:8883 (required)")
	fs.StringVar(&o.TID, "tid", "", "watch one terminal (default: all)")
	fs.BoolVar(&o.JSON, "json", false, "one JSON object per message: {topic, retained, payload}")
	fs.BoolVar(&o.Once, "once", false, "print the retained snapshot and exit")
	fs.BoolVar(&o.Table, "table", false, "the fleet table (TID, MID, step, state, online, age, last error), redrawn as it changes")
	fs.StringVar(&metricsAddr, "metrics", "", "serve the fleet's Prometheus metrics at http://ADDR/metrics (ADDR host:port, e.g. 127.0.0.1:9464)")
	fs.StringVar(&o.Username, "user", "", "broker user name")
	// A file, not a flag value: command lines show up in ps and shell history.
	fs.StringVar(&passFile, "password-file", "", "file holding the broker password (first line)")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: posctl watch --mqtt URL [--tid TID | --tid-prefix P] [--json | --table] [--once] [--metrics ADDR] [--user U --password-file F]")
		fmt.Fprintln(fs.Output(), "       posctl watch --amqp URL [--amqp URL ...] [--queue-prefix NAME] [--shards K] [--json | --table] [--metrics ADDR] [--user U --password-file F]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2 // flag already printed the problem and the usage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "posctl watch: unexpected argument %q\n", fs.Arg(0))
		fs.Usage()
		return 2
	}
	if msg := q.conflicts(o); msg != "" {
		fmt.Fprintln(stderr, "posctl watch: "+msg)
		fs.Usage()
		return 2
	}
	if o.URL == "" && len(q.urls) == 0 {
		fmt.Fprintln(stderr, "posctl watch: --mqtt is required (or --amqp for queue mode)")
		fs.Usage()
		return 2
	}
	if metricsAddr != "" && o.Once {
		fmt.Fprintln(stderr, "posctl watch: --metrics needs a live watch, not --once")
		fs.Usage()
		return 2
	}
	if passFile != "" {
		b, err := os.ReadFile(passFile)
		if err != nil {
			fmt.Fprintf(stderr, "posctl: password file: %v\n", err)
			return 1
		}
		o.Password, _, _ = strings.Cut(string(b), "\n")
		o.Password = strings.TrimSuffix(o.Password, "\r")
	}
	o.Out = stdout
	if metricsAddr != "" {
		stop, err := serveMetrics(metricsAddr, &o, stderr)
		if err != nil {
			fmt.Fprintf(stderr, "posctl: %v\n", err)
			return 1
		}
		defer stop()
	}
	if len(q.urls) > 0 {
		return q.watch(ctx, o, stderr)
	}
	if err := monitor.Watch(ctx, o); err != nil {
		fmt.Fprintf(stderr, "posctl: %v\n", err)
		return 1
	}
	return 0
}
