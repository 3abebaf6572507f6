package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/posagent/posagent/agent/acquirer"
	"github.com/posagent/posagent/provisioning/pan"
)

const accountUsage = `usage: posctl account-check --tid TID --tmk-file FILE < FILE-WITH-THE-PAN`

// accountCheck runs `posctl account-check`: central's (or the acquirer's)
// tool for the merchant record's account_check, the keyed check value of
// the settlement card for one terminal (acquirer.AccountCheck). The card
// number is read from stdin and the TMK from a file, never from the command
// line (ps, shell history); neither is ever printed.
func accountCheck(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("posctl account-check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	tid := fs.String("tid", "", "the terminal's TID, 8 digits (required): the check value is for this terminal only")
	tmkFile := fs.String("tmk-file", "", "file holding the terminal's TMK as hex, first line (required)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *tid == "" || *tmkFile == "" || fs.NArg() > 0 {
		fmt.Fprintln(stderr, accountUsage)
		return 2
	}
	raw, err := os.ReadFile(*tmkFile)
	if err != nil {
		fmt.Fprintln(stderr, "posctl: account-check:", err)
		return 1
	}
	first, _, _ := strings.Cut(string(raw), "\n")
	clear(raw)
	tmk, err := acquirer.ParseKey(first)
	if err != nil {
		fmt.Fprintln(stderr, "posctl: account-check: TMK file:", err)
		return 1
	}
	defer tmk.Wipe()
	line, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		fmt.Fprintln(stderr, "posctl: account-check: reading the card number from stdin:", err)
		return 1
	}
	p, err := pan.Parse(strings.TrimSpace(line))
	if err != nil || p.IsZero() {
		fmt.Fprintln(stderr, "posctl: account-check: stdin does not hold a card number (12 to 19 digits)")
		return 1
	}
	if !p.LuhnValid() {
		// A typo here would register an account no card can ever match.
		fmt.Fprintf(stderr, "posctl: account-check: card number %s fails its check digit\n", p.Masked())
		return 1
	}
	check, err := acquirer.AccountCheck(tmk, *tid, p)
	if err != nil {
		fmt.Fprintln(stderr, "posctl: account-check:", err)
		return 1
	}
	fmt.Fprintln(stdout, check)
	return 0
}
