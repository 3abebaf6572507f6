// Package posagent_test is the README's own test: every command the README
// shows either runs as the README says it does, or is on a short list of
// commands this test does not run, each with its reason.
//
// An example is a line of a fenced code block with a promise after "# →":
//
//	go run ./cmd/posagent demo --card foreign   # → E_NOT_UNIONPAY → final state: needs-attention → exit 1
//
// The phrases must appear in the command's output (stdout and stderr
// together) in that order, and the last item is its exit status. A line
// ending in a backslash continues on the next one. TestREADMEExamples builds
// the commands once (without cgo, as `make demo` does), runs every example as
// written — `go run ./cmd/X` as the built X, `make demo` as the posagent demo
// its Makefile recipe runs — and checks each promise. Examples that name the
// same state dir (--state-dir) or broker (tcp://127.0.0.1:PORT) run in
// README order, on a fresh directory or a mosquitto started for them; the
// other examples run in parallel.
//
// TestREADMECommandsWalkedOrExempt scans the whole README, prose and code
// blocks, for invocations of this repository's programs (`go run ./cmd/…`,
// posagent, posctl, hostsim, devsim, cardsim) and of make, and fails for one
// that is neither an example, nor a synopsis (placeholders such as FILE or
// [--reveal]) of a command an example runs, nor on the notWalked list, or
// that names a Makefile target the Makefile lacks. TestREADMEFlagsExist checks
// the flags of the commands no example runs against their -h.
package posagent_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/posagent/posagent/agent/sim/inproc"
	"github.com/posagent/posagent/agent/sim/slipimage"
	"github.com/posagent/posagent/agent/testkit/bench"
)

// notWalked are the commands the README shows that this test does not run,
// matched by their leading words. Each must still appear in the README (a
// stale entry fails the test).
var notWalked = []struct{ command, why string }{
	{"make test", "runs this test"},
	{"make lint", "make test runs it first"},
	{"make cross", "make test runs it"},
	{"make test-arm", "make test runs it"},
	{"make test-cluster", "CI runs it after make test; a 3-node RabbitMQ cluster, 20 s to come up"},
	{"make fuzz", "make test runs a short pass; the long one takes hours"},
	{"make crashtest", "make test runs a 5-install campaign; needs pcscd"},
	{"make build", "a cgo build into the repository's bin/; make test builds the same packages"},
	{"make bench", "needs the firmware builds, pcscd and minutes"},
	{"make bench-go", "benchmarks, minutes"},
	{"make bench-fleet", "a fleet on mosquitto and a 3-node RabbitMQ cluster, then the restarts, minutes to an hour"},
	{"make bench-fleet-inproc", "a thousand terminals against mosquitto, minutes"},
	{"make bench-fleet-restart", "whole-cluster restarts of a fleet on fresh 3-node RabbitMQ clusters, minutes to half an hour"},
	{"make install", "lays out a root file system in DESTDIR"},
	{"posagent run", "the daemon on a config with real devices; cmd/posagent's tests run it"},
	{"posctl card read", "needs pcscd and a chip card (cmd/posctl's tests use the PC/SC bench)"},
	{"posctl keys", "the TMK comes on stdin; cmd/posctl's key tests"},
	{"posctl hash-password", "the password comes on stdin; cmd/posctl's tests"},
	{"posctl account-check", "the card number comes on stdin and the TMK from a file; cmd/posctl's tests"},
	{"posctl ticket", "central's signing key files; cmd/posctl's ticket tests"},
	{"posctl command", "central's signing key files and a TLS broker; cmd/posctl's and cmd/posagent's command tests"},
	{"hostsim", "a server that runs until Ctrl-C; cmd/hostsim's tests start it"},
	{"devsim", "emulators behind ptys until Ctrl-C; cmd/devsim's tests start them"},
	{"cardsim", "needs pcscd with vpcd; cmd/cardsim's tests insert cards"},
}

// example is one README line with a promise.
type example struct {
	line    int      // of the README, 1-based
	text    string   // the command as written, continuations joined
	args    []string // its words, quotes removed
	phrases []string // what the output shows, in order
	exit    int
}

// invocation is a command the README shows anywhere: an example, a synopsis
// or a mention.
type invocation struct {
	line  int
	words []string // program first (`go run ./cmd/X` is X)
}

func (iv invocation) String() string { return strings.Join(iv.words, " ") }

// readme is README.md taken apart.
type readme struct {
	examples    []example
	invocations []invocation
	twoCommands []string // the command lines of the block under "## Two commands"
}

func TestREADMECommandsWalkedOrExempt(t *testing.T) {
	r := parseREADME(t)
	walked := map[string]bool{}
	walkedCommands := map[string]bool{}
	for _, ex := range r.examples {
		walked[strings.Join(ex.args, " ")] = true
		walkedCommands[commandOf(programWords(ex.args))] = true
	}
	targets := makeTargets(t)
	used := make([]bool, len(notWalked))
	for _, iv := range r.invocations {
		if iv.words[0] == "make" && len(iv.words) > 1 && !targets[iv.words[1]] {
			t.Errorf("README.md:%d: `%s`: the Makefile has no target %s", iv.line, iv, iv.words[1])
		}
		if walked[iv.String()] {
			continue
		}
		exempt := false
		for i, nw := range notWalked {
			if hasWordPrefix(iv.words, strings.Fields(nw.command)) {
				used[i], exempt = true, true
			}
		}
		if exempt || (isSynopsis(iv.words) && walkedCommands[commandOf(iv.words)]) {
			continue
		}
		t.Errorf("README.md:%d: `%s` is neither an example with a promise (# → …) nor a synopsis of one, nor on notWalked", iv.line, iv)
	}
	for i, nw := range notWalked {
		if !used[i] {
			t.Errorf("notWalked: the README shows no %q any more; drop it", nw.command)
		}
	}
	if got := strings.Join(r.twoCommands, "; "); got != "make demo; make test" {
		t.Errorf("the README's set-up commands are %q, want exactly make demo and make test", got)
	}
}

// TestREADMEFlagsExist: the flags of every command the README shows but no
// example runs (synopses, exempt commands) are flags the command has, so a
// synopsis cannot drift from the program either. The examples prove theirs
// by running.
func TestREADMEFlagsExist(t *testing.T) {
	r := parseREADME(t)
	walked := map[string]bool{}
	for _, ex := range r.examples {
		walked[strings.Join(ex.args, " ")] = true
	}
	flagsOf := map[string][]string{} // command → the flags the README gives it
	var commands, names []string
	for _, iv := range r.invocations {
		if iv.words[0] == "make" || walked[iv.String()] {
			continue
		}
		for _, w := range iv.words {
			if m := flagRe.FindStringSubmatch(w); m != nil {
				c := commandOf(iv.words)
				if _, ok := flagsOf[c]; !ok {
					commands = append(commands, c)
					names = append(names, iv.words[0])
				}
				flagsOf[c] = append(flagsOf[c], m[1])
			}
		}
	}
	if len(commands) == 0 {
		return
	}
	bin := buildPrograms(t, names)
	for _, c := range commands {
		words := strings.Fields(c)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		help, _ := exec.CommandContext(ctx, filepath.Join(bin, words[0]), append(words[1:], "-h")...).CombinedOutput()
		cancel()
		for _, f := range flagsOf[c] {
			if !regexp.MustCompile(`(?m)^\s+-` + regexp.QuoteMeta(f) + `(\s|$)`).Match(help) {
				t.Errorf("README: `%s` has no flag -%s (its -h says:\n%s)", c, f, help)
			}
		}
	}
}

// flagRe finds a flag's name in a word of a synopsis: --json, [--reader, -dir.
var flagRe = regexp.MustCompile(`^\[?--?([a-z][a-z0-9-]*)`)

func TestREADMEExamples(t *testing.T) {
	r := parseREADME(t)
	if len(r.examples) == 0 {
		t.Fatal("README.md has no examples (lines with # →)")
	}
	var names []string
	for _, ex := range r.examples {
		if ex.args[0] == "make" {
			names = append(names, "posagent") // make demo runs the posagent demo
		} else {
			names = append(names, ex.args[0])
		}
	}
	bin := buildPrograms(t, names)
	demoArgs := makeDemoArgs(t)
	pictures := false
	if _, err := slipimage.New(slipimage.Options{}); err == nil {
		pictures = true
	}

	// Examples sharing a state dir or a broker run in order, in one group.
	var order []string
	groups := map[string][]example{}
	for _, ex := range r.examples {
		key := strings.Join(resources(ex.args), " ")
		if key == "" {
			key = fmt.Sprintf("line %d", ex.line)
		}
		if _, ok := groups[key]; !ok {
			order = append(order, key)
		}
		groups[key] = append(groups[key], ex)
	}
	for _, key := range order {
		exs := groups[key]
		t.Run(subtestName(exs[0]), func(t *testing.T) {
			t.Parallel()
			replace := map[string]string{}
			for _, res := range resources(exs[0].args) {
				kind, value, _ := strings.Cut(res, "=")
				switch kind {
				case "state-dir":
					replace[value] = filepath.Join(t.TempDir(), "state")
				case "broker":
					replace[value] = bench.StartMosquitto(t).URL
				}
			}
			for _, ex := range exs {
				args := ex.args
				slips := ""
				if strings.Join(args, " ") == "make demo" {
					slips = filepath.Join(t.TempDir(), "bin")
					args = []string{"posagent"}
					for _, a := range demoArgs {
						args = append(args, strings.ReplaceAll(a, "$(BIN)", slips))
					}
				}
				var run []string
				for _, a := range args {
					for from, to := range replace {
						a = strings.ReplaceAll(a, from, to)
					}
					run = append(run, a)
				}
				out, code := runExample(t, filepath.Join(bin, run[0]), run[1:])
				checkPromise(t, ex, out, code)
				// The sale's STAN follows the downloads' messages: any STAN.
				if slips != "" && pictures && !merchantPicture.MatchString(out) {
					t.Errorf("README.md:%d: the font is installed, but make demo drew no sale-NNNNNN-merchant.png", ex.line)
				}
			}
		})
	}
}

// merchantPicture is the merchant copy's picture of the test sale's slip.
var merchantPicture = regexp.MustCompile(`sale-[0-9]{6}-merchant\.png`)

// checkPromise fails t unless out shows ex's phrases in order and the
// command exited as promised.
func checkPromise(t *testing.T, ex example, out string, code int) {
	t.Helper()
	rest := out
	for i, p := range ex.phrases {
		at := strings.Index(rest, p)
		if at < 0 {
			after := ""
			if i > 0 {
				after = fmt.Sprintf(" after %q", ex.phrases[i-1])
			}
			t.Errorf("README.md:%d: %s\noutput lacks %q%s; it ended:\n%s", ex.line, ex.text, p, after, tail(out, 25))
			break
		}
		rest = rest[at+len(p):]
	}
	if code != ex.exit {
		t.Errorf("README.md:%d: %s\nexit %d, README promises %d; output ended:\n%s", ex.line, ex.text, code, ex.exit, tail(out, 25))
	}
	if !strings.Contains(ex.text, "--reveal") {
		for name, p := range inproc.Profiles {
			if strings.Contains(out, p.PAN) {
				t.Errorf("README.md:%d: %s prints the full PAN of the %s card", ex.line, ex.text, name)
			}
		}
	}
}

// runExample runs one command and returns its output and exit status.
func runExample(t *testing.T, program string, args []string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, program, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return out.String(), 0
	case errors.As(err, &ee) && ee.Exited():
		return out.String(), ee.ExitCode()
	}
	t.Fatalf("%s %s: %v\n%s", program, strings.Join(args, " "), err, tail(out.String(), 25))
	return "", 0
}

// buildPrograms builds the named programs (cmd/NAME) once, without cgo, and
// returns the directory they are in.
func buildPrograms(t *testing.T, names []string) string {
	t.Helper()
	dir := t.TempDir()
	seen := map[string]bool{}
	pkgs := []string{}
	for _, p := range names {
		if !seen[p] {
			seen[p] = true
			pkgs = append(pkgs, "./cmd/"+p)
		}
	}
	cmd := exec.Command("go", append([]string{"build", "-o", dir + string(filepath.Separator)}, pkgs...)...)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %v: %v\n%s", pkgs, err, out)
	}
	return dir
}

// makeDemoArgs reads the demo target's recipe: the arguments it gives
// posagent. The recipe must build without cgo and install nothing.
func makeDemoArgs(t *testing.T) []string {
	t.Helper()
	recipe := makeRecipe(t, "demo")
	for _, bad := range []string{"deps.sh", "apt-get", "sudo"} {
		if strings.Contains(recipe, bad) {
			t.Errorf("make demo runs %s: it must install nothing", bad)
		}
	}
	if !strings.Contains(recipe, "CGO_ENABLED=0") {
		t.Error("make demo does not build with CGO_ENABLED=0")
	}
	for _, line := range strings.Split(recipe, "\n") {
		if _, after, ok := strings.Cut(line, "./cmd/posagent "); ok {
			return strings.Fields(after)
		}
	}
	t.Fatalf("the demo recipe runs no ./cmd/posagent:\n%s", recipe)
	return nil
}

// makeRecipe returns the recipe lines of a Makefile target.
func makeRecipe(t *testing.T, target string) string {
	t.Helper()
	b, err := os.ReadFile("Makefile")
	if err != nil {
		t.Fatal(err)
	}
	var recipe []string
	in := false
	for _, line := range strings.Split(string(b), "\n") {
		switch {
		case strings.HasPrefix(line, target+":"):
			in = true
		case in && strings.HasPrefix(line, "\t"):
			recipe = append(recipe, strings.TrimSpace(line))
		case in:
			return strings.Join(recipe, "\n")
		}
	}
	return strings.Join(recipe, "\n")
}

// makeTargets are the Makefile's targets.
func makeTargets(t *testing.T) map[string]bool {
	t.Helper()
	b, err := os.ReadFile("Makefile")
	if err != nil {
		t.Fatal(err)
	}
	targets := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^([a-z][a-z0-9-]*):`).FindAllStringSubmatch(string(b), -1) {
		targets[m[1]] = true
	}
	return targets
}

// programs are the commands an invocation may start with: this
// repository's (cmd/*) and make.
func programs(t *testing.T) map[string]bool {
	t.Helper()
	dirs, err := os.ReadDir("cmd")
	if err != nil {
		t.Fatal(err)
	}
	p := map[string]bool{"make": true}
	for _, d := range dirs {
		if d.IsDir() {
			p[d.Name()] = true
		}
	}
	return p
}

var (
	fence    = regexp.MustCompile("^\\s*```")
	codeSpan = regexp.MustCompile("`([^`]+)`")
	exitRe   = regexp.MustCompile(`^exit (\d+)$`)
)

func parseREADME(t *testing.T) readme {
	t.Helper()
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	progs := programs(t)
	var r readme
	lines := strings.Split(string(b), "\n")
	var prose strings.Builder // the text outside code blocks, fenced lines blanked
	inFence, twoCommandsBlock, afterTwoCommands := false, false, false
	for i := 0; i < len(lines); i++ {
		line := lines[i]
		if fence.MatchString(line) {
			inFence = !inFence
			twoCommandsBlock = inFence && afterTwoCommands
			afterTwoCommands = false
			prose.WriteString("\n")
			continue
		}
		if !inFence {
			if strings.HasPrefix(line, "## ") {
				afterTwoCommands = line == "## Two commands"
			}
			prose.WriteString(line + "\n")
			continue
		}
		prose.WriteString("\n")
		first := i + 1
		// A trailing backslash continues the command on the next line.
		for strings.HasSuffix(line, `\`) && i+1 < len(lines) {
			i++
			line = strings.TrimSuffix(line, `\`) + " " + strings.TrimSpace(lines[i])
			prose.WriteString("\n")
		}
		code, comment := cutComment(line)
		words := programWords(strings.Fields(code))
		if len(words) == 0 || !progs[words[0]] {
			continue
		}
		if twoCommandsBlock {
			r.twoCommands = append(r.twoCommands, strings.Join(words, " "))
		}
		promise, ok := strings.CutPrefix(strings.TrimSpace(comment), "→")
		if !ok {
			r.invocations = append(r.invocations, invocation{line: first, words: words})
			continue
		}
		ex, err := parseExample(first, strings.TrimSpace(code), promise)
		if err != nil {
			t.Fatalf("README.md:%d: %v", first, err)
		}
		r.examples = append(r.examples, ex)
	}
	text := prose.String()
	for _, m := range codeSpan.FindAllStringSubmatchIndex(text, -1) {
		words := programWords(strings.Fields(text[m[2]:m[3]]))
		if len(words) > 0 && progs[words[0]] {
			r.invocations = append(r.invocations, invocation{line: 1 + strings.Count(text[:m[0]], "\n"), words: words})
		}
	}
	return r
}

// parseExample reads a command and its promise ("phrase → … → exit N").
func parseExample(line int, code, promise string) (example, error) {
	args, err := shellWords(code)
	if err != nil {
		return example{}, err
	}
	ex := example{line: line, text: code, args: programWords(args)}
	items := strings.Split(promise, "→")
	for i := range items {
		items[i] = strings.TrimSpace(items[i])
	}
	m := exitRe.FindStringSubmatch(items[len(items)-1])
	if m == nil {
		return example{}, fmt.Errorf("promise %q does not end with the exit status (→ exit N)", promise)
	}
	ex.exit, _ = strconv.Atoi(m[1])
	for _, p := range items[:len(items)-1] {
		if p == "" {
			return example{}, fmt.Errorf("promise %q has an empty phrase", promise)
		}
		ex.phrases = append(ex.phrases, p)
	}
	return ex, nil
}

// cutComment splits a shell line at its comment: a # that starts a word
// outside quotes.
func cutComment(line string) (code, comment string) {
	quote := rune(0)
	for i, c := range line {
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '\'' || c == '"':
			quote = c
		case c == '#' && (i == 0 || unicode.IsSpace(rune(line[i-1]))):
			return line[:i], line[i+1:]
		}
	}
	return line, ""
}

// shellWords splits a command into words as a shell would, for the little
// shell an example may use: plain words, single and double quotes. Anything
// else (pipes, redirections, variables, globs) is an error, so an example
// runs the same pasted into a shell and here.
func shellWords(s string) ([]string, error) {
	var words []string
	var w strings.Builder
	inWord := false
	quote := rune(0)
	for _, c := range s {
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
				continue
			}
			if quote == '"' && strings.ContainsRune("$`\\", c) {
				return nil, fmt.Errorf("%q: only plain text inside double quotes", s)
			}
			w.WriteRune(c)
		case c == '\'' || c == '"':
			quote, inWord = c, true
		case unicode.IsSpace(c):
			if inWord {
				words = append(words, w.String())
				w.Reset()
				inWord = false
			}
		case strings.ContainsRune("|&;<>()$`\\*?[]{}~#", c):
			return nil, fmt.Errorf("%q: %q needs quotes (examples use plain words and quotes only)", s, c)
		default:
			w.WriteRune(c)
			inWord = true
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("%q: unterminated quote", s)
	}
	if inWord {
		words = append(words, w.String())
	}
	return words, nil
}

// programWords turns `go run ./cmd/X args` into `X args`.
func programWords(words []string) []string {
	if len(words) >= 3 && words[0] == "go" && words[1] == "run" && strings.HasPrefix(words[2], "./cmd/") {
		return append([]string{strings.TrimPrefix(words[2], "./cmd/")}, words[3:]...)
	}
	return words
}

var subcommand = regexp.MustCompile(`^[a-z][a-z0-9-]*$`)

// commandOf is the program and its subcommands: `posctl decode track`,
// `make bench-fleet`, `posagent demo`.
func commandOf(words []string) string {
	n := 1
	for n < len(words) && subcommand.MatchString(words[n]) {
		n++
	}
	return strings.Join(words[:n], " ")
}

var placeholder = regexp.MustCompile(`[\[\]|…<>]|^[A-Z][A-Z0-9_]*$`)

// isSynopsis says whether an invocation only names a command or shows its
// form (FILE, [--reveal], …) rather than a command one could paste.
func isSynopsis(words []string) bool {
	rest := words[len(strings.Fields(commandOf(words))):]
	if len(rest) == 0 {
		return true
	}
	for _, w := range rest {
		if placeholder.MatchString(w) {
			return true
		}
	}
	return false
}

func hasWordPrefix(words, prefix []string) bool {
	if len(words) < len(prefix) {
		return false
	}
	for i := range prefix {
		if words[i] != prefix[i] {
			return false
		}
	}
	return true
}

// resources are what examples share: "state-dir=DIR" for --state-dir DIR,
// "broker=URL" for a loopback MQTT URL.
func resources(args []string) []string {
	var res []string
	for i, a := range args {
		if i > 0 && args[i-1] == "--state-dir" {
			res = append(res, "state-dir="+a)
		}
		if regexp.MustCompile(`^tcp://127\.0\.0\.1:\d+$`).MatchString(a) {
			res = append(res, "broker="+a)
		}
	}
	return res
}

func subtestName(ex example) string {
	name := fmt.Sprintf("line%d %s", ex.line, strings.Join(ex.args, " "))
	if len(name) > 80 {
		name = name[:80]
	}
	return name
}

// tail is the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
