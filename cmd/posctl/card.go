package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/posagent/posagent/agent/card/emv"
	"github.com/posagent/posagent/agent/card/oda"
	"github.com/posagent/posagent/drivers/cardreader"
	"github.com/posagent/posagent/drivers/cardreader/pcsc"
)

const cardUsage = `usage: posctl card read [--reader NAME] [--json] [--timeout 60s] [--capks FILE] [--contactless [--offline]]`

// cardSummary is what `posctl card read` prints: enough to tell an installer
// which card is in the reader and whether it can be bound, nothing a
// cardholder would mind on a support ticket.
type cardSummary struct {
	Reader  string `json:"reader"`
	PAN     string `json:"pan"` // first 6 + last 4
	Seq     string `json:"pan_seq,omitempty"`
	Expiry  string `json:"expiry"`
	Name    string `json:"name"`
	Label   string `json:"label,omitempty"`
	AID     string `json:"aid"`
	Type    string `json:"type"`
	UnionPy bool   `json:"unionpay"`
	Track2  bool   `json:"track2_equivalent"` // whether the card has one (never its content)
	// ODA is how offline data authentication ended ("DDA passed", "not
	// performed" …); ODANote says why a failure may be posctl's, not the
	// card's.
	ODA     string `json:"oda"`
	ODANote string `json:"oda_note,omitempty"`
	// TVR and TSI (hex) after the read's cryptogram, each with its set
	// bits named (emv.Explain), so a support ticket needs no bit table.
	TVR     string `json:"tvr"`
	TVRBits string `json:"tvr_bits"`
	TSI     string `json:"tsi"`
	TSIBits string `json:"tsi_bits"`
	APDUs   int    `json:"apdus"`
}

// noCAPKsNote explains an ODA failure of a read without CA keys: posctl
// has no acquirer key download, so without --capks every certificate
// chain fails here, whatever the card.
const noCAPKsNote = "posctl holds no CA public keys (the acquirer download is the agent's; --capks FILE gives some): the card's certificates cannot be checked here"

// card runs `posctl card read`: wait for a chip card on pcscd, run the
// PBOC read (without asking for a cryptogram worth anything: a zero-amount
// inquiry) and print the summary, with what the kernel's phases found:
// the ODA outcome and the TVR and TSI with their bits named.
func card(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "read" {
		fmt.Fprintln(stderr, cardUsage)
		return 2
	}
	fs := flag.NewFlagSet("posctl card read", flag.ContinueOnError)
	fs.SetOutput(stderr)
	reader := fs.String("reader", "", "PC/SC reader name (default: the one a card is in, or is inserted into)")
	asJSON := fs.Bool("json", false, "print JSON (default: key: value lines)")
	timeout := fs.Duration("timeout", time.Minute, "how long to wait for a card")
	contactless := fs.Bool("contactless", false, "select through PPSE (2PAY.SYS.DDF01), for contactless readers")
	offline := fs.Bool("offline", false, "contactless: let the card approve offline (the TTQ requires no online cryptogram), so its fDDA is checked")
	capkFile := fs.String("capks", "", "YAML file of CA public keys (the layout of agent/sim/testca/capk.yaml) to authenticate the card with")
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 || *timeout <= 0 || (*offline && !*contactless) {
		fmt.Fprintln(stderr, cardUsage)
		return 2
	}
	term := emv.DefaultTerminal()
	term.Contactless = *contactless
	if *offline {
		// Byte 2 bit 8, "online cryptogram required", is a per-transaction
		// bit: cleared, an offline-capable card answers a TC with its fDDA.
		// Nothing is paid: posctl sends nothing to any host.
		term.TTQ = append([]byte(nil), term.TTQ...)
		term.TTQ[1] &^= 0x80
	}
	if *capkFile != "" {
		b, err := os.ReadFile(*capkFile)
		if err == nil {
			term.CAPKs, err = oda.ParseCAPKs(b)
		}
		if err != nil {
			fmt.Fprintln(stderr, "posctl: card:", err)
			return 2
		}
	}
	svc := pcsc.New()
	defer svc.Close()
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()

	fmt.Fprintln(stderr, "posctl: waiting for a card…")
	name, err := emv.PickReader(ctx, svc, *reader)
	if err != nil {
		fmt.Fprintln(stderr, "posctl: card:", explain(err))
		return 1
	}
	c, err := svc.Connect(ctx, name)
	if err != nil {
		fmt.Fprintln(stderr, "posctl: card:", explain(err))
		return 1
	}
	defer c.Close()
	res, err := emv.Read(ctx, c, term, emv.Transaction{Type: 0x31})
	if err != nil {
		// emv errors carry masked data only.
		fmt.Fprintln(stderr, "posctl: card:", explain(err))
		return 1
	}
	defer res.Track2.Wipe()
	s := cardSummary{
		Reader: name, PAN: res.PAN.Masked(), Seq: res.Seq, Expiry: res.Expiry, Name: res.Name,
		Label: res.Label, AID: res.AID, Type: string(res.Type), UnionPy: strings.HasPrefix(strings.ToUpper(res.AID), emv.RIDUnionPay),
		Track2: !res.Track2.IsZero(), APDUs: res.Transmissions,
		ODA: res.ODA, TVR: res.TVR, TSI: res.TSI,
		TVRBits: emv.Explain(0x95, unhex(res.TVR)), TSIBits: emv.Explain(0x9B, unhex(res.TSI)),
	}
	if len(term.CAPKs) == 0 && strings.Contains(res.ODA, "failed") {
		s.ODANote = noCAPKsNote
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(s); err != nil {
			fmt.Fprintln(stderr, "posctl:", err)
			return 1
		}
		return 0
	}
	fmt.Fprintf(stdout, "reader:  %s\npan:     %s\nexpiry:  %s\nname:    %s\nlabel:   %s\naid:     %s\ntype:    %s\nunionpay: %v\n",
		s.Reader, s.PAN, s.Expiry, s.Name, s.Label, s.AID, s.Type, s.UnionPy)
	fmt.Fprintf(stdout, "oda:     %s\n", s.ODA)
	if s.ODANote != "" {
		fmt.Fprintf(stdout, "         (%s)\n", s.ODANote)
	}
	fmt.Fprintf(stdout, "tvr:     %s (%s)\ntsi:     %s (%s)\napdus:   %d\n", s.TVR, s.TVRBits, s.TSI, s.TSIBits, s.APDUs)
	return 0
}

// unhex decodes the kernel's hex (always valid; nil otherwise, which
// Explain turns into "").
func unhex(h string) []byte {
	b, err := hex.DecodeString(h)
	if err != nil {
		return nil
	}
	return b
}

// explain adds what an installer does about the common failures.
func explain(err error) string {
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return "no card before the timeout"
	case errors.Is(err, cardreader.ErrServiceUnavailable):
		return err.Error() + " (is pcscd running?)"
	}
	return err.Error()
}
