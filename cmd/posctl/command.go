package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/posagent/posagent/agent/central/command"
	"github.com/posagent/posagent/agent/central/mqtt"
	"github.com/posagent/posagent/agent/central/trust"
)

const commandUsage = `usage: posctl command --key PRIVFILE --kid KID --tid TID [--id ID] [--valid DURATION]
                      [--publish URL[,URL...] [--user U --password-file F] [--ca F --tls-cert F --tls-key F]
                       [--wait DURATION [--resend DURATION]]]
                      NAME [ARGS-JSON]
names: retry-step '{"step":"sign-on"}', rerun-test-sale, report-now,
       clear-unresolved '{"kind":"sale","stan":12,"batch":"000001"}'`

// commandCmd runs `posctl command`: it signs one of central's commands
// (agent/central/command) with central's Ed25519 key, named by its kid, for one
// terminal, and prints it or publishes it (not retained) on the terminal's
// command topic; with --wait it also prints the terminal's reply. The
// command is published through the first --publish URL that takes it; with
// --wait it is published again, the same signed bytes, every --resend until
// the reply arrives, through the next URL when one fails: a reply lost, or a
// terminal between two nodes of a cluster, costs a resend, and the terminal
// answers a resend with the reply it gave (command.Server), never running it
// twice.
//
// Exit status: 0 printed, published, or (with --wait) answered ok; 1 key,
// network or login errors, no reply in time, a reply that is a refusal, or
// E_CMD_REPLAYED to a resend (it ran, its result is not known: the terminal
// restarted since); 2 flags that make a command the terminal would refuse
// for its form.
func commandCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("posctl command", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		keyFile string
		e       command.Envelope
		valid   time.Duration
		wait    time.Duration
		resend  time.Duration
		broker  brokerFlags
	)
	fs.StringVar(&keyFile, "key", "", "central's Ed25519 private key, PEM PKCS #8 (required)")
	fs.StringVar(&e.KID, "kid", "", "the key's id, as the terminals' central.keys list it (required)")
	fs.StringVar(&e.TID, "tid", "", "the terminal (required)")
	fs.StringVar(&e.ID, "id", "", "command id, echoed in the reply (default: c-TIME-RANDOM)")
	fs.DurationVar(&valid, "valid", 5*time.Minute, "validity from now, at most 10m")
	fs.DurationVar(&wait, "wait", 0, "with --publish: wait this long for the terminal's reply and print it")
	fs.DurationVar(&resend, "resend", 5*time.Second, "with --wait: publish the same command again after this long without the reply (default 5s, or half of --wait if shorter)")
	broker.register(fs, "publish the command on pos/v1/{tid}/cmd instead of printing it")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), commandUsage)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() < 1 || fs.NArg() > 2 {
		fmt.Fprintln(stderr, "posctl command: want NAME and optional ARGS-JSON after the flags")
		fs.Usage()
		return 2
	}
	e.Name = fs.Arg(0)
	if fs.NArg() == 2 {
		e.Args = json.RawMessage(fs.Arg(1))
	}
	for _, f := range []struct{ name, v string }{{"key", keyFile}, {"kid", e.KID}, {"tid", e.TID}} {
		if f.v == "" {
			fmt.Fprintf(stderr, "posctl command: --%s is required\n", f.name)
			return 2
		}
	}
	if valid <= 0 || valid > command.MaxValidity {
		fmt.Fprintln(stderr, "posctl command: --valid must be more than 0 and at most 10m")
		return 2
	}
	if wait > 0 && broker.url == "" {
		fmt.Fprintln(stderr, "posctl command: --wait needs --publish")
		return 2
	}
	resendSet := false
	fs.Visit(func(f *flag.Flag) { resendSet = resendSet || f.Name == "resend" })
	if !resendSet && resend >= wait {
		resend = wait / 2
	}
	if wait > 0 && (resend <= 0 || resend >= wait) {
		fmt.Fprintln(stderr, "posctl command: --resend must be more than 0 and less than --wait")
		return 2
	}
	if wait > valid {
		// Resends after the expiry would be refused as expired, not answered.
		fmt.Fprintln(stderr, "posctl command: --wait must not be longer than --valid")
		return 2
	}
	priv, stamp, err := signer(keyFile, valid)
	if err != nil {
		fmt.Fprintf(stderr, "posctl: %v\n", err)
		return 1
	}
	e.Nonce, e.IssuedAt, e.ExpiresAt = stamp.nonce, stamp.issued, stamp.expires
	if e.ID == "" {
		var r [3]byte
		_, _ = rand.Read(r[:])
		e.ID = "c-" + e.IssuedAt.UTC().Format("20060102T150405") + "-" + hex.EncodeToString(r[:])
	}
	payload, err := command.Sign(e, priv)
	if err != nil {
		fmt.Fprintf(stderr, "posctl: %v\n", err)
		return 2 // the flags made a command the terminal would refuse
	}
	return broker.deliver(stdout, stderr, mqtt.CommandTopic(e.TID), false, payload, func(o mqtt.SendOptions) (int, error) {
		if wait <= 0 {
			if err := sendToFirst(ctx, o, broker.urls()); err != nil {
				return 1, err
			}
			fmt.Fprintf(stdout, "published %s to %s, expires %s\n", e.ID, o.Topic, trust.Stamp(e.ExpiresAt))
			return 0, nil
		}
		sctx, cancel := context.WithTimeout(ctx, wait)
		defer cancel()
		b, sent, err := mqtt.RequestResending(sctx, o, mqtt.Resend{URLs: broker.urls(), Every: resend}, mqtt.ReplyTopic(e.TID), func(b []byte) bool {
			var r command.Reply
			return json.Unmarshal(b, &r) == nil && r.ID == e.ID
		})
		if err != nil {
			return 1, err
		}
		fmt.Fprintln(stdout, string(b))
		var r command.Reply
		if json.Unmarshal(b, &r) != nil || !r.OK {
			if sent > 1 && r.Error != nil && r.Error.Code == command.CodeReplayed {
				// The terminal took one of the sends and no longer has its
				// reply (it restarted): the command ran once, with a result
				// this tool cannot know.
				fmt.Fprintf(stderr, "posctl: %s ran before, result unknown: check the terminal's status\n", e.ID)
			}
			return 1, nil
		}
		return 0, nil
	})
}
