//go:build !firmware

package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/posagent/posagent/agent"
	"github.com/posagent/posagent/agent/demo"
)

// runDemo is `posagent demo`: the whole install on the simulated devices and
// host (agent/demo), in every build but the firmware.
func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	mqtt := fs.String("mqtt", "", "external MQTT broker URL (default: an embedded broker on loopback)")
	stateDir := fs.String("state-dir", "", "keep the checkpoint here (default: a temporary directory)")
	cards := fs.String("card", "debit", "virtual card profiles inserted in turn, comma separated")
	keysFile := fs.String("keys", "", "key-script FILE driving the installer's menu (password 2468); default: no menu, one ENTER per --card (retry after a refused card, confirm the accepted one)")
	pause := fs.String("pause-at", "", "freeze at a simulator pause point (crash tests)")
	slips := fs.String("slips", "", "keep the slips here, as text and PNG pictures (default: in the state dir)")
	verbose := fs.Bool("v", false, "debug logs on stderr")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelDebug
	}
	_, err := demo.Run(ctx, demo.Options{
		Options: agent.Options{Stdout: stdout, Stderr: stderr, KeysFile: *keysFile, PauseAt: *pause, LogLevel: level,
			SlipDir: *slips, SlipPictures: true},
		MQTT:     *mqtt,
		StateDir: *stateDir,
		Cards:    strings.Split(*cards, ","),
	})
	return exitCode(stderr, err)
}
