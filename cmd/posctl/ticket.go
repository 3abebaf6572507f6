package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/posagent/posagent/agent/central/mqtt"
	"github.com/posagent/posagent/agent/central/ticket"
	"github.com/posagent/posagent/agent/central/trust"
	"github.com/posagent/posagent/provisioning"
)

const ticketUsage = `usage: posctl ticket keygen --out PREFIX
       posctl ticket --key PRIVFILE --kid KID --tid TID --mid MID --name NAME --legal-person NAME
                     --account-check HEX [--account-name NAME]
                     [--card-type debit|credit] [--amount FEN] [--valid DURATION]
                     [--publish URL[,URL...] [--user U --password-file F] [--ca F --tls-cert F --tls-key F]]`

// ticketCmd runs `posctl ticket`: it signs an install ticket (agent/central/ticket)
// with one of central's Ed25519 keys, named by its kid, and prints it, or
// publishes it retained on the terminal's ticket topic, on every broker
// --publish names (a RabbitMQ cluster keeps a retained message on the node
// that took it, and a terminal finds it only on its own). `posctl ticket
// keygen` makes a key pair (for tickets and commands alike).
func ticketCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "keygen" {
		return ticketKeygen(args[1:], stdout, stderr)
	}
	fs := flag.NewFlagSet("posctl ticket", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		keyFile  string
		t        ticket.Ticket
		cardType string
		valid    time.Duration
		broker   brokerFlags
	)
	fs.StringVar(&keyFile, "key", "", "central's Ed25519 private key, PEM PKCS #8 (required)")
	fs.StringVar(&t.KID, "kid", "", "the key's id, as the terminals' central.keys list it (required)")
	fs.StringVar(&t.TID, "tid", "", "terminal ID, field 41 (required)")
	fs.StringVar(&t.MID, "mid", "", "merchant ID, field 42 (required)")
	fs.StringVar(&t.MerchantName, "name", "", "merchant name (required)")
	fs.StringVar(&t.LegalPerson, "legal-person", "", "merchant's legal person (required)")
	fs.StringVar(&t.AccountName, "account-name", "", "name on the settlement account, when not the legal person")
	// The keyed check value, never the account number: this command line is
	// in shell history.
	fs.StringVar(&t.AccountCheck, "account-check", "", "the settlement account's check value, 64 lowercase hex (required)")
	fs.StringVar(&cardType, "card-type", "debit", "settlement card type: debit or credit")
	fs.Int64Var(&t.TestAmount, "amount", 1, "test sale amount in fen")
	fs.DurationVar(&valid, "valid", 72*time.Hour, "validity from now")
	broker.register(fs, "publish the ticket retained on pos/v1/{tid}/ticket instead of printing it")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), ticketUsage)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "posctl ticket: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	for _, f := range []struct{ name, v string }{
		{"key", keyFile}, {"kid", t.KID}, {"tid", t.TID}, {"mid", t.MID}, {"name", t.MerchantName},
		{"legal-person", t.LegalPerson}, {"account-check", t.AccountCheck},
	} {
		if f.v == "" {
			fmt.Fprintf(stderr, "posctl ticket: --%s is required\n", f.name)
			fs.Usage()
			return 2
		}
	}
	if valid <= 0 {
		fmt.Fprintln(stderr, "posctl ticket: --valid must be positive")
		return 2
	}
	t.CardType = provisioning.CardType(cardType)
	priv, stamp, err := signer(keyFile, valid)
	if err != nil {
		fmt.Fprintf(stderr, "posctl: %v\n", err)
		return 1
	}
	t.Nonce, t.IssuedAt, t.ExpiresAt = stamp.nonce, stamp.issued, stamp.expires
	payload, err := ticket.Sign(t, priv)
	if err != nil {
		fmt.Fprintf(stderr, "posctl: %v\n", err)
		return 2 // the flags made a ticket the agent would refuse
	}
	return broker.deliver(stdout, stderr, mqtt.TicketTopic(t.TID), true, payload, func(o mqtt.SendOptions) (int, error) {
		urls := broker.urls()
		if err := sendToEach(ctx, o, urls); err != nil {
			if len(urls) > 1 {
				// The nodes that took it keep it: running the same command
				// again is safe (a retained ticket replaces the one before
				// it, and a terminal takes the same ticket again as the same).
				return 1, fmt.Errorf("the ticket is not on every node: %w", err)
			}
			return 1, err
		}
		where := ""
		if len(urls) > 1 {
			where = fmt.Sprintf(" on %d nodes", len(urls))
		}
		fmt.Fprintf(stdout, "published to %s (retained)%s, expires %s\n", o.Topic, where, trust.Stamp(t.ExpiresAt))
		return 0, nil
	})
}

// ticketKeygen writes PREFIX.key (private, 0600) and PREFIX.pub (public, for
// the agents' configuration). It refuses to overwrite a key.
func ticketKeygen(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("posctl ticket keygen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("out", "", "path prefix: writes PREFIX.key and PREFIX.pub (required)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *out == "" || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "usage: posctl ticket keygen --out PREFIX")
		return 2
	}
	priv, pub, err := trust.GenerateKey()
	if err != nil {
		fmt.Fprintf(stderr, "posctl: %v\n", err)
		return 1
	}
	// O_EXCL: overwriting central's signing key would orphan every agent
	// configured with its public half.
	f, err := os.OpenFile(*out+".key", os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		fmt.Fprintf(stderr, "posctl: %v\n", err)
		return 1
	}
	if _, err := f.Write(priv); err != nil {
		f.Close()
		fmt.Fprintf(stderr, "posctl: %v\n", err)
		return 1
	}
	if err := f.Close(); err != nil {
		fmt.Fprintf(stderr, "posctl: %v\n", err)
		return 1
	}
	if err := os.WriteFile(*out+".pub", pub, 0o644); err != nil {
		fmt.Fprintf(stderr, "posctl: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "wrote %s.key (keep secret) and %s.pub (for the agents' central.keys, with a kid)\n", *out, *out)
	return 0
}
