package main

import (
	"context"
	"crypto/ed25519"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/posagent/posagent/agent/central/mqtt"
	"github.com/posagent/posagent/agent/central/ticket"
	"github.com/posagent/posagent/agent/central/trust"
)

// What posctl ticket and posctl command share: the key they sign with and
// the stamp of what they sign, and how a signed payload leaves (printed, or
// published with the broker flags).

// stamp is what makes a signed payload unique and bounds its life.
type stamp struct {
	nonce           string
	issued, expires time.Time
}

// signer reads central's private key (PEM) and stamps a payload valid for
// valid from now: what posctl ticket and posctl command both sign with.
func signer(keyFile string, valid time.Duration) (ed25519.PrivateKey, stamp, error) {
	pemKey, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, stamp{}, fmt.Errorf("key: %w", err)
	}
	priv, err := trust.ParsePrivateKey(pemKey)
	if err != nil {
		return nil, stamp{}, err
	}
	nonce, err := ticket.NewNonce()
	if err != nil {
		return nil, stamp{}, err
	}
	now := time.Now()
	return priv, stamp{nonce: nonce, issued: now, expires: now.Add(valid)}, nil
}

// brokerFlags are the publishing flags posctl ticket and posctl command
// share.
type brokerFlags struct {
	url, user, passFile, ca, cert, key string
}

func (b *brokerFlags) register(fs *flag.FlagSet, publishHelp string) {
	fs.StringVar(&b.url, "publish", "", "broker URL, or a cluster's node URLs separated by commas: "+publishHelp)
	fs.StringVar(&b.user, "user", "", "broker user name")
	fs.StringVar(&b.passFile, "password-file", "", "file holding the broker password (first line)")
	fs.StringVar(&b.ca, "ca", "", "PEM CA bundle for a TLS broker URL")
	fs.StringVar(&b.cert, "tls-cert", "", "client certificate (PEM) for a TLS broker")
	fs.StringVar(&b.key, "tls-key", "", "client certificate key (PEM)")
}

// urls are --publish's URLs, in order.
func (b *brokerFlags) urls() []string {
	var urls []string
	for _, u := range strings.Split(b.url, ",") {
		if u = strings.TrimSpace(u); u != "" {
			urls = append(urls, u)
		}
	}
	return urls
}

// options are the SendOptions of one publish, through the first URL; the
// password is read from its file, never from the command line.
func (b *brokerFlags) options(topic string, retained bool, payload []byte) (mqtt.SendOptions, error) {
	o := mqtt.SendOptions{URL: b.urls()[0], Username: b.user, CAFile: b.ca, CertFile: b.cert, KeyFile: b.key,
		Topic: topic, Retained: retained, Payload: payload}
	if b.passFile != "" {
		raw, err := os.ReadFile(b.passFile)
		if err != nil {
			return o, fmt.Errorf("password file: %w", err)
		}
		o.Password, _, _ = strings.Cut(string(raw), "\n")
		o.Password = strings.TrimSuffix(o.Password, "\r")
	}
	return o, nil
}

// deliver ends posctl ticket and posctl command once the payload is signed:
// without --publish it prints the payload; with it, it hands publish the
// options of a publish on topic (the password read from its file) and
// returns publish's exit status, or 1 with the error on stderr.
func (b *brokerFlags) deliver(stdout, stderr io.Writer, topic string, retained bool, payload []byte,
	publish func(mqtt.SendOptions) (int, error)) int {
	if len(b.urls()) == 0 {
		fmt.Fprintln(stdout, string(payload))
		return 0
	}
	o, err := b.options(topic, retained, payload)
	if err == nil {
		var code int
		if code, err = publish(o); err == nil {
			return code
		}
	}
	fmt.Fprintf(stderr, "posctl: %v\n", err)
	return 1
}

// sendTimeout bounds a publish that waits for nothing but its PUBACK.
const sendTimeout = 30 * time.Second

// send publishes once, within sendTimeout.
func send(ctx context.Context, o mqtt.SendOptions) error {
	ctx, cancel := context.WithTimeout(ctx, sendTimeout)
	defer cancel()
	return mqtt.Send(ctx, o)
}

// sendToFirst publishes once, through the first of urls that takes it (a
// command needs one node: the cluster routes it to the terminal's); the
// error names every URL that failed.
func sendToFirst(ctx context.Context, o mqtt.SendOptions, urls []string) error {
	var errs []error
	for _, u := range urls {
		o.URL = u
		err := send(ctx, o)
		if err == nil {
			return nil
		}
		errs = append(errs, err)
		if errors.Is(err, mqtt.ErrLoginRefused) {
			break // every node has the same users
		}
	}
	return errors.Join(errs...)
}

// sendToEach publishes through every one of urls (a retained message on
// RabbitMQ stays on the node that took it: each node needs its own copy);
// the error names each URL that failed.
func sendToEach(ctx context.Context, o mqtt.SendOptions, urls []string) error {
	var errs []error
	for _, u := range urls {
		o.URL = u
		if err := send(ctx, o); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
