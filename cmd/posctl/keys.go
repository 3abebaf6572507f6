package main

import (
	"bufio"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/posagent/posagent/agent"
	"github.com/posagent/posagent/agent/acquirer"
)

const keysUsage = `usage: posctl keys inject --state-dir DIR --kcv HEX [--replace] < TMK-HEX
       posctl keys show --state-dir DIR`

// keys runs `posctl keys ...`: loading the terminal master key the acquirer
// issued into the agent's key store, the key-injection step of an install.
// The TMK is read from stdin, never from the command line (ps, shell
// history), and is only ever shown as its check value.
func keys(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 || (args[0] != "inject" && args[0] != "show") {
		fmt.Fprintln(stderr, keysUsage)
		return 2
	}
	fs := flag.NewFlagSet("posctl keys "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("state-dir", "", "the agent's state_dir (required)")
	kcv := fs.String("kcv", "", "inject: the key check value the acquirer printed with the TMK (first 3+ bytes, hex; required); refused on mismatch")
	replace := fs.Bool("replace", false, "inject: replace a TMK already stored (drops the working keys: the next sign-on fetches new ones)")
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *dir == "" || fs.NArg() > 0 {
		fmt.Fprintln(stderr, keysUsage)
		return 2
	}
	if args[0] == "inject" && *kcv == "" {
		// A TMK mistyped by one digit would be stored and fail every
		// sign-on; its check value catches that before anything is stored.
		fmt.Fprintln(stderr, "posctl: keys: --kcv is required: the check value the acquirer gave with the TMK")
		return 2
	}
	ks := &acquirer.FileKeyStore{Path: filepath.Join(*dir, agent.KeyFile)}
	stored, err := ks.LoadKeys()
	if err != nil && !errors.Is(err, acquirer.ErrNoKeys) {
		fmt.Fprintln(stderr, "posctl: keys:", err)
		return 1
	}
	if args[0] == "show" {
		if errors.Is(err, acquirer.ErrNoKeys) || len(stored.TMK) == 0 {
			fmt.Fprintln(stdout, "no TMK injected")
			return 1
		}
		fmt.Fprintln(stdout, stored) // check values only (acquirer.Keys.String)
		return 0
	}
	if len(stored.TMK) > 0 && !*replace {
		fmt.Fprintf(stderr, "posctl: keys: a TMK is already stored (%v); --replace to overwrite it\n", stored.TMK)
		return 1
	}
	line, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		fmt.Fprintln(stderr, "posctl: keys: reading the TMK from stdin:", err)
		return 1
	}
	tmk, err := acquirer.ParseKey(strings.TrimSpace(line))
	if err != nil {
		fmt.Fprintln(stderr, "posctl: keys: TMK on stdin:", err)
		return 1
	}
	cv, err := acquirer.CheckValue(tmk)
	if err != nil {
		fmt.Fprintln(stderr, "posctl: keys:", err)
		return 1
	}
	want, err := hex.DecodeString(*kcv)
	if err != nil || len(want) < 3 || len(want) > len(cv) {
		fmt.Fprintln(stderr, "posctl: keys: --kcv must be 6 to 8 hex digits")
		return 2
	}
	if !strings.EqualFold(hex.EncodeToString(cv[:len(want)]), *kcv) {
		// Most likely a typo in the TMK: refuse rather than store a key
		// every sign-on would fail with.
		fmt.Fprintf(stderr, "posctl: keys: check value of the TMK typed is %X, not %s: nothing stored\n", cv[:len(want)], strings.ToUpper(*kcv))
		return 1
	}
	if err := os.MkdirAll(*dir, 0o700); err != nil {
		fmt.Fprintln(stderr, "posctl: keys:", err)
		return 1
	}
	err = ks.SaveKeys(acquirer.Keys{TMK: tmk})
	tmk.Wipe()
	stored.Wipe() // the keys replaced, and the working keys dropped with them
	if err != nil {
		fmt.Fprintln(stderr, "posctl: keys:", err)
		return 1
	}
	fmt.Fprintf(stdout, "TMK stored in %s, check value %X\n", ks.Path, cv[:3])
	return 0
}
