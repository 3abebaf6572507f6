package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/posagent/posagent/drivers/magstripe"
)

const decodeUsage = "usage: posctl decode track [--reveal] [--lrc] TRACK"

// decode runs `posctl decode KIND ...`. Only tracks for now: the ISO 8583
// decoder waits until the host protocol builds for armv7 (issue 5).
func decode(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "track" {
		fmt.Fprintln(stderr, decodeUsage)
		return 2
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
