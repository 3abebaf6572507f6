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

	"github.com/posagent/posagent/agent/emv"
	"github.com/posagent/posagent/drivers/magstripe"
)

const decodeUsage = `usage: posctl decode track [--reveal] [--lrc] TRACK
       posctl decode tlv HEX`

// decode runs `posctl decode KIND ...`. The ISO 8583 decoder waits until the
// host protocol builds for armv7 (issue 5).
func decode(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || (args[0] != "track" && args[0] != "tlv") {
		fmt.Fprintln(stderr, decodeUsage)
		return 2
	}
	if args[0] == "tlv" {
		return decodeTLV(args[1:], stdout, stderr)
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
// tag names; card numbers, tracks and names come out masked.
func decodeTLV(args []string, stdout, stderr io.Writer) int {
	if len(args) != 1 {
		fmt.Fprintln(stderr, decodeUsage)
		return 2
	}
	b, err := hex.DecodeString(strings.Join(strings.Fields(args[0]), ""))
	if err != nil {
		fmt.Fprintln(stderr, "posctl: decode tlv: not hex:", err)
		return 1
	}
	out, err := emv.DescribeJSON(b)
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
