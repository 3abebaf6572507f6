// Command posagent runs on a UnionPay POS terminal and takes it from unboxed to
// taking card payments: `run --config FILE` is the daemon, `demo` the whole
// install on simulated devices, `version` the build.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/posagent/posagent/agent"
	"github.com/posagent/posagent/agent/config"
	"github.com/posagent/posagent/agent/coredump"
)

const usage = `usage:
  posagent run --config FILE     run the install flow (the daemon)
                                 (--keys-file FILE, devices.keypad sim only: the
                                 installer's menu driven by a key script, on a test bench)
  posagent demo [flags]          the whole install on simulated devices
                                 (--keys FILE: driven from the installer's menu by a key script)
  posagent version               print the version
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// Exit codes: 0 live, 1 the install did not finish, 2 bad usage or config.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "version":
		fmt.Fprintln(stdout, "posagent", agent.Version)
		return 0
	case "run":
		// Before anything reads a key: a core of the daemon would hold the
		// TMK and the working keys.
		if err := coredump.Disable(); err != nil {
			fmt.Fprintln(stderr, "posagent: warning: core dumps stay on:", err)
		}
		fs := flag.NewFlagSet("run", flag.ContinueOnError)
		fs.SetOutput(stderr)
		cfgPath := fs.String("config", "", "config file (YAML)")
		keys := fs.String("keys", "", "simulated keypad script, when devices.keypad is sim")
		keysFile := fs.String("keys-file", "", "key-script FILE driving the installer's menu, when devices.keypad is sim")
		pause := fs.String("pause-at", "", "freeze at a simulator pause point (crash tests)")
		if err := fs.Parse(args[1:]); err != nil {
			return 2
		}
		if *cfgPath == "" || fs.NArg() > 0 {
			fmt.Fprint(stderr, usage)
			return 2
		}
		cfg, err := config.Load(*cfgPath)
		if err == nil {
			err = cfg.ValidateForRun()
		}
		if err == nil && *keysFile != "" && cfg.Devices.Keypad != config.SimDevice {
			err = fmt.Errorf("--keys-file drives the simulated keypad only; devices.keypad is %q", cfg.Devices.Keypad)
		}
		if err != nil {
			fmt.Fprintln(stderr, "posagent:", err)
			return 2
		}
		_, err = agent.Run(ctx, cfg, agent.Options{Stdout: stdout, Stderr: stderr, Keys: *keys, KeysFile: *keysFile, PauseAt: *pause})
		return exitCode(stderr, err)
	case "demo":
		return runDemo(ctx, args[1:], stdout, stderr)
	}
	fmt.Fprint(stderr, usage)
	return 2
}

func exitCode(stderr io.Writer, err error) int {
	if err == nil {
		return 0
	}
	fmt.Fprintln(stderr, "posagent:", err)
	var cerr *config.Error
	if errors.As(err, &cerr) {
		return 2
	}
	return 1
}
