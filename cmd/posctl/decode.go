package main

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/posagent/posagent/agent/acquirer"
	"github.com/posagent/posagent/agent/card/emv"
	"github.com/posagent/posagent/drivers/magstripe"
)

const decodeUsage = `usage: posctl decode track [--reveal] [--lrc] TRACK
       posctl decode tlv [--reveal] HEX
       posctl decode iso8583 [--spec unionpay] [--reveal] HEX`

// decode runs `posctl decode KIND ...`.
func decode(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || (args[0] != "track" && args[0] != "tlv" && args[0] != "iso8583") {
		fmt.Fprintln(stderr, decodeUsage)
		return 2
	}
	switch args[0] {
	case "tlv":
		return decodeTLV(args[1:], stdout, stderr)
	case "iso8583":
		return decodeISO8583(args[1:], stdout, stderr)
	}
	fs := flag.NewFlagSet("posctl decode track", flag.ContinueOnError)
	fs.SetOutput(stderr)
	reveal := fs.Bool("reveal", false, "show the full card number (never paste it anywhere)")
	lrc := fs.Bool("lrc", false, "the byte after the end sentinel is the LRC")
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(stderr, decodeUsage)
		return 2
	}
	in := magstripe.Inspect(fs.Arg(0), magstripe.ParseOptions{LRC: *lrc, Now: time.Now()})
	out := struct {
		magstripe.Inspection
		PANFull string `json:"pan_full,omitempty"`
	}{Inspection: in}
	if *reveal {
		out.PANFull = in.PAN.Reveal()
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(out); err != nil {
		fmt.Fprintln(stderr, "posctl:", err)
		return 1
	}
	if !in.Valid {
		fmt.Fprintf(stderr, "posctl: track fails %v\n", in.Failed)
		return 1
	}
	return 0
}

// decodeTLV prints EMV BER-TLV (field 55, a card's records) as a JSON tree with
// tag names, and for the TVR, TSI, CVM results and terminal capabilities and
// type what the value says (emv.Explain: every bit set, by name); card
// numbers, tracks, their discretionary data and names come out masked
// (emv.Sensitive) unless --reveal.
func decodeTLV(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("posctl decode tlv", flag.ContinueOnError)
	fs.SetOutput(stderr)
	reveal := fs.Bool("reveal", false, "show card numbers, tracks and names in clear (never paste them anywhere)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(stderr, decodeUsage)
		return 2
	}
	b, err := hex.DecodeString(strings.Join(strings.Fields(fs.Arg(0)), ""))
	if err != nil {
		fmt.Fprintln(stderr, "posctl: decode tlv: not hex:", err)
		return 1
	}
	describe := emv.DescribeJSON
	if *reveal {
		describe = emv.RevealJSON
	}
	out, err := describe(b)
	if err != nil {
		fmt.Fprintln(stderr, "posctl: decode tlv:", err)
		return 1
	}
	if _, err := stdout.Write(append(out, '\n')); err != nil {
		fmt.Fprintln(stderr, "posctl:", err)
		return 1
	}
	return 0
}

// decodeISO8583 prints a UnionPay POS message as {"mti", "fields"} JSON. HEX
// is a whole frame (length, TPDU, header, message) or the message from the
// MTI on; spaces are ignored, so a hex dump pasted from a trace works. The
// PAN is masked and tracks, PIN block and keys are replaced unless --reveal.
func decodeISO8583(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("posctl decode iso8583", flag.ContinueOnError)
	fs.SetOutput(stderr)
	spec := fs.String("spec", "unionpay", "message spec; only unionpay (the UnionPay POS dialect) is built in")
	reveal := fs.Bool("reveal", false, "show card numbers, tracks and keys in clear (never paste them anywhere)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *spec != "unionpay" {
		fmt.Fprintf(stderr, "posctl: decode iso8583: unknown spec %q (only unionpay)\n", *spec)
		return 2
	}
	if fs.NArg() == 0 {
		fmt.Fprintln(stderr, decodeUsage)
		return 2
	}
	d, err := acquirer.DecodeHex(strings.Join(fs.Args(), ""), *reveal)
	if err != nil {
		// The acquirer's errors name the failing field, never its value.
		fmt.Fprintln(stderr, "posctl: decode iso8583:", err)
		return 1
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(d); err != nil {
		fmt.Fprintln(stderr, "posctl:", err)
		return 1
	}
	return 0
}
