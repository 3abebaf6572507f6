package installer_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/posagent/posagent/agent/installer"
	"github.com/posagent/posagent/agent/installer/installertest"
	"github.com/posagent/posagent/agent/installer/ui"
	"github.com/posagent/posagent/agent/sim/inproc"
	"github.com/posagent/posagent/agent/sim/ledger"
	"github.com/posagent/posagent/agent/testkit/golden"
	"github.com/posagent/posagent/provisioning"
	"github.com/posagent/posagent/provisioning/provisioningtest"
)

// The test installer's settings. The password hash is made once with few
// iterations: PBKDF2's cost is not what these tests are about.
const (
	testPassword = "2468"
	idle         = 30 * time.Second
	lockout      = 5 * time.Minute
)

var (
	supervisorHash = func() string {
		h, err := installer.HashPassword("97531", []byte("fixed-test-salt2"), 1000)
		if err != nil {
			panic(err)
		}
		return h
	}()
	testHash = func() string {
		h, err := installer.HashPassword(testPassword, []byte("fixed-test-salt!"), 1000)
		if err != nil {
			panic(err)
		}
		return h
	}()
	t0 = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	// banks are the issuers of the sim cards' BINs.
	banks = map[string]string{"622202": "工商银行 ICBC", "625094": "光大银行 CEB", "62": "银联 UnionPay"}
)

// transcript collects what the screen showed and which keys were pressed, in
// order. Digits typed outside the screens that ask for public numbers are
// written as '*' (see shown): the transcript is a log too, and the password
// never goes into a log.
type transcript struct {
	b     strings.Builder
	title string
}

func (tr *transcript) note(format string, args ...any) {
	fmt.Fprintf(&tr.b, format+"\n", args...)
}

// digitScreens are where a digit typed is a public number or a choice; on any
// other screen (the password screen above all, but also a lock or idle screen
// a password may be typed into by mistake) the transcript writes it as '*'.
var digitScreens = []string{"MENU", "MID", "TID", "FAILED", "SKIP", "CARD"}

// shown is how key k goes into the transcript.
func (tr *transcript) shown(k ui.Key) string {
	if len(k) != 1 || k[0] < '0' || k[0] > '9' {
		return string(k)
	}
	for _, s := range digitScreens {
		if strings.Contains(tr.title, s) {
			return string(k)
		}
	}
	return "*"
}

// screen is the display: a ui.Grid of the configured size writing into the
// transcript, remembering the title for the key masking.
type screen struct {
	tr   *transcript
	grid *ui.Grid
}

func (s *screen) Draw(ctx context.Context, title string, lines []string) error {
	s.tr.title = title
	return s.grid.Draw(ctx, title, lines)
}

// step is one entry of a test key script: a key, a wait on the virtual
// clock, or an action on the simulated devices.
type step struct {
	key  ui.Key
	wait time.Duration
	do   string
}

// keys is a keypad that plays steps and writes them to the transcript. Its
// actions run inside Key, that is in the flow's goroutine between two
// prompts, so changing a device there races with nothing.
type keys struct {
	tr      *transcript
	clock   *installer.VirtualClock
	steps   []step
	actions map[string]func()
}

// parse reads "F1 2468 OK wait 30s @host-up": runs of digits are one key
// each, "wait D" passes time, "@name" runs an action.
func parse(t *testing.T, script string) []step {
	t.Helper()
	var out []step
	f := strings.Fields(script)
	for i := 0; i < len(f); i++ {
		switch w := f[i]; {
		case w == "wait":
			i++
			d, err := time.ParseDuration(f[i])
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, step{wait: d})
		case strings.HasPrefix(w, "@"):
			out = append(out, step{do: w[1:]})
		case strings.Trim(w, "0123456789") == "":
			for _, c := range w {
				out = append(out, step{key: ui.Key(string(c))})
			}
		default:
			k, err := ui.ParseKey(w)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, step{key: k})
		}
	}
	return out
}

func (k *keys) Key(ctx context.Context) (ui.Key, error) {
	for {
		if err := ctx.Err(); err != nil {
			return "", err
		}
		if len(k.steps) == 0 {
			return "", ui.ErrNoMoreKeys
		}
		s := k.steps[0]
		k.steps = k.steps[1:]
		switch {
		case s.do != "":
			k.tr.note("(%s)", s.do)
			k.actions[s.do]()
		case s.wait > 0:
			k.tr.note("(wait %s)", s.wait)
			if err := k.clock.Sleep(ctx, s.wait); err != nil {
				return "", err
			}
		default:
			k.tr.note("> %s", k.tr.shown(s.key))
			return s.key, nil
		}
	}
}

// bench is one terminal under test: the installer over the sim rig.
type bench struct {
	t     *testing.T
	dir   string // the sim host's ledger is here
	tr    *transcript
	clock *installer.VirtualClock
	rig   *installertest.Rig
	locks *provisioningtest.Store
	ids   *provisioningtest.Store
	skips []installer.Skip
	rows  int
	cols  int
	// flow replaces the rig's flow when set; ind is the indicator.
	flow installer.FlowFunc
	ind  installer.Indicator
	// supervisor is the supervisor password's hash; "" is none.
	supervisor string
}

func newBench(t *testing.T, cards ...string) *bench {
	t.Helper()
	clock := installer.NewVirtualClock(t0)
	dir := t.TempDir()
	rig, err := installertest.New(dir, clock, cards...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rig.Close() })
	return &bench{t: t, dir: dir, tr: &transcript{}, clock: clock, rig: rig,
		locks: &provisioningtest.Store{}, ids: &provisioningtest.Store{}, rows: 8, cols: 24}
}

// actions are what a script's @name does to the simulated terminal.
func (b *bench) actions() map[string]func() {
	return map[string]func(){
		"host-down": func() { b.rig.Host.Down = true },
		"host-up":   func() { b.rig.Host.Down = false },
		"paper-out": func() { b.rig.Printer.SetPaperOut(true) },
		"paper-in":  func() { b.rig.Printer.SetPaperOut(false) },
	}
}

// installer builds an installer (a fresh one is a restart: only the stores
// and the clock carry over) reading kp.
func (b *bench) installer(kp ui.Keypad) *installer.Installer {
	b.t.Helper()
	in, err := installer.New(b.options(kp))
	if err != nil {
		b.t.Fatal(err)
	}
	return in
}

// options are the installer's options on this bench.
func (b *bench) options(kp ui.Keypad) installer.Options {
	flow := b.flow
	if flow == nil {
		flow = b.rig.Flow
	}
	return installer.Options{
		Config: installer.Config{PasswordHash: testHash, MaxTries: 3, Lockout: lockout, IdleTimeout: idle,
			Rows: b.rows, Cols: b.cols, SupervisorHash: b.supervisor},
		Display:   &screen{tr: b.tr, grid: &ui.Grid{W: &b.tr.b, Rows: b.rows, Cols: b.cols}},
		Keys:      kp,
		Clock:     b.clock,
		Locks:     b.locks,
		IDs:       b.ids,
		Identity:  b.rig.Identity(),
		Flow:      flow,
		Banks:     banks,
		Indicator: b.ind,
		OnSkip:    func(_ context.Context, s installer.Skip) { b.skips = append(b.skips, s) },
	}
}

// run plays script and returns Run's error.
func (b *bench) run(script string) error {
	b.t.Helper()
	kp := &keys{tr: b.tr, clock: b.clock, steps: parse(b.t, script), actions: b.actions()}
	err := b.installer(kp).Run(context.Background())
	if len(kp.steps) != 0 {
		b.t.Errorf("%d script steps left unused", len(kp.steps))
	}
	b.tr.note("= %s", result(err))
	return err
}

func result(err error) string {
	if err == nil {
		return "installed"
	}
	return err.Error()
}

// ops counts the messages the sim host booked, by kind.
func (b *bench) ops() map[string]int {
	b.t.Helper()
	led, err := ledger.Read(filepath.Join(b.dir, "simhost-ledger.jsonl"))
	if err != nil {
		b.t.Fatal(err)
	}
	return inproc.Summarize(led).Messages
}

func (b *bench) checkpoint() provisioning.Checkpoint {
	b.t.Helper()
	cp, err := b.rig.Checkpoint()
	if err != nil {
		b.t.Fatal(err)
	}
	return cp
}

func (b *bench) golden(name string) {
	b.t.Helper()
	got := b.tr.b.String()
	path := filepath.Join("testdata", name+".golden")
	golden.Check(b.t, path, got)
	// Whatever the golden says, no full card number reaches the screen.
	for _, p := range inproc.Profiles {
		if strings.Contains(got, p.PAN) {
			b.t.Errorf("%s shows the full card number of a sim card", path)
		}
	}
	// Nor does a Go error chain: the cause is for the log and central.
	for _, sc := range screens(got) {
		if goChain.MatchString(sc) {
			b.t.Errorf("%s has a screen showing an error chain: %q", path, sc)
		}
	}
}

// goChain is what a Go error chain looks like: a lowercase package or
// operation name, a colon, a space, lowercase text ("ui: ask: read key").
var goChain = regexp.MustCompile(`\b[a-z][a-z0-9_.]*: [a-z]`)

// screens are the transcript's screens, each as its text rows joined by
// spaces (a chain the grid wrapped across rows is whole again).
func screens(transcript string) []string {
	var out []string
	var cur []string
	in := false
	for _, line := range strings.Split(transcript, "\n") {
		switch {
		case strings.HasPrefix(line, "+-") && in:
			out = append(out, strings.Join(cur, " "))
			cur, in = nil, false
		case strings.HasPrefix(line, "+-"):
			in = true
		case in:
			cur = append(cur, strings.TrimSpace(strings.Trim(line, "|")))
		}
	}
	return out
}

// login is F1, the password, OK; confirm is "keep the configured MID and TID".
const (
	login   = "F1 " + testPassword + " OK"
	confirm = "OK OK OK"
)

func TestHappyPath(t *testing.T) {
	b := newBench(t)
	err := b.run(login + " 1 " + confirm + " OK")
	if err != nil {
		t.Fatalf("Run = %v", err)
	}
	if cp := b.checkpoint(); cp.Step != provisioning.StepLive || cp.Card == nil {
		t.Fatalf("checkpoint at %s", cp.Step)
	}
	if got, _ := b.ids.Load(); !strings.Contains(string(got), b.rig.Identity().MID) {
		t.Errorf("identity not saved: %s", got)
	}
	b.golden("happy")
}

func TestBindingRejections(t *testing.T) {
	tests := []struct {
		profile, code string
		then          string // after the failure screen
		want          error  // from Run
		step          provisioning.Step
	}{
		// Retry with the right card: the install finishes.
		{"bad-luhn", "E_BAD_LUHN", "OK OK", nil, provisioning.StepLive},
		{"expired", "E_EXPIRED", "OK OK", nil, provisioning.StepLive},
		{"name-mismatch", "E_NAME_MISMATCH", "OK OK", nil, provisioning.StepLive},
		// The flow calls the brief's E_OTHER_ACCOUNT E_ACCOUNT_MISMATCH.
		{"other-account", "E_ACCOUNT_MISMATCH", "OK OK", nil, provisioning.StepLive},
		// Abort: back at the menu, the failure kept for the next attempt.
		{"foreign", "E_NOT_UNIONPAY", "CANCEL CANCEL", ui.ErrNoMoreKeys, provisioning.StepNeedsAttention},
		// Skip with a reason, then resume and retry from the menu.
		{"credit", "E_CARD_TYPE", "1 1 1 OK OK", nil, provisioning.StepLive},
	}
	for _, tt := range tests {
		t.Run(tt.code, func(t *testing.T) {
			b := newBench(t, tt.profile, "debit")
			err := b.run(login + " 1 " + confirm + " " + tt.then)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Run = %v, want %v", err, tt.want)
			}
			cp := b.checkpoint()
			if cp.Step != tt.step {
				t.Fatalf("checkpoint at %s, want %s", cp.Step, tt.step)
			}
			if tt.step == provisioning.StepNeedsAttention && cp.Failure.Code != tt.code {
				t.Errorf("failure %s, want %s", cp.Failure.Code, tt.code)
			}
			if !strings.Contains(b.tr.b.String(), tt.code) {
				t.Errorf("the screen never named %s", tt.code)
			}
			b.golden("reject-" + tt.profile)
		})
	}
}

func TestSkipIsReported(t *testing.T) {
	b := newBench(t, "credit", "debit")
	if err := b.run(login + " 1 " + confirm + " 1 CANCEL 1 2 CANCEL"); !errors.Is(err, ui.ErrNoMoreKeys) {
		t.Fatalf("Run = %v", err)
	}
	want := []installer.Skip{{Step: "bind-card", Code: "E_CARD_TYPE", Reason: "device fault"}}
	if fmt.Sprint(b.skips) != fmt.Sprint(want) {
		t.Fatalf("skips %v, want %v", b.skips, want)
	}
	// A skip leaves the flow where it stopped.
	if cp := b.checkpoint(); cp.Step != provisioning.StepNeedsAttention || cp.Failure.Code != "E_CARD_TYPE" {
		t.Fatalf("checkpoint %s %v", cp.Step, cp.Failure)
	}
}

func TestHostDown(t *testing.T) {
	b := newBench(t)
	// Retry while the host is still down fails again; once it is back the
	// install goes on from the network step.
	err := b.run("@host-down " + login + " 1 " + confirm + " OK @host-up OK OK")
	if err != nil {
		t.Fatalf("Run = %v", err)
	}
	if cp := b.checkpoint(); cp.Step != provisioning.StepLive {
		t.Fatalf("checkpoint at %s", cp.Step)
	}
	// Two sign-ons: the install's and the one for business.
	if got := b.ops(); got[ledger.KindSignOn] != 2 || got[ledger.KindSale] != 1 {
		t.Errorf("host ledger %v", got)
	}
	if n := strings.Count(b.tr.b.String(), "E_NETWORK"); n != 2 {
		t.Errorf("E_NETWORK shown %d times, want 2 (first try and the retry while down)", n)
	}
	b.golden("host-down")
}

func TestPrinterOutOfPaper(t *testing.T) {
	b := newBench(t)
	// The paper runs out just before the test sale's slip.
	err := b.run(login + " 1 " + confirm + " @paper-out OK @paper-in OK")
	if err != nil {
		t.Fatalf("Run = %v", err)
	}
	cp := b.checkpoint()
	if cp.Step != provisioning.StepLive || cp.Slip == nil || cp.Slip.Attempts != 2 {
		t.Fatalf("checkpoint %s slip %+v, want live after a second print", cp.Step, cp.Slip)
	}
	if b.rig.Printer.Printed() == 0 {
		t.Error("nothing printed after the paper came back")
	}
	b.golden("paper-out")
}

func TestWrongPasswordLockout(t *testing.T) {
	b := newBench(t)
	b.rows, b.cols = 5, 20 // a small display, to show what fits
	// Three wrong passwords lock; F1 while locked shows the time left; a
	// correct password is refused while locked.
	err := b.run("F1 1111 OK 2222 OK 1357 OK CANCEL F1 " + testPassword + " OK")
	if !errors.Is(err, ui.ErrNoMoreKeys) {
		t.Fatalf("Run = %v", err)
	}
	if strings.Contains(b.tr.b.String(), "MENU") {
		t.Fatal("the menu opened while locked")
	}
	// A restart (a new installer on the same stores) is still locked.
	b.tr.note("--- restart ---")
	b.clock.Advance(time.Minute)
	if err := b.run("F1 CANCEL"); !errors.Is(err, ui.ErrNoMoreKeys) {
		t.Fatalf("Run = %v", err)
	}
	if !strings.Contains(b.tr.b.String(), "Try again in 4 min") {
		t.Error("the lock did not survive the restart")
	}
	// Once the lock-out has passed, the right password opens the menu.
	b.tr.note("--- after the lock-out ---")
	if err := b.run("wait 4m F1 " + testPassword + " OK CANCEL"); !errors.Is(err, ui.ErrNoMoreKeys) {
		t.Fatalf("Run = %v", err)
	}
	if !strings.Contains(b.tr.b.String(), "MENU") {
		t.Error("the menu did not open after the lock-out")
	}
	for _, secret := range []string{testPassword, "1111", "2222", "1357"} {
		if strings.Contains(b.tr.b.String(), secret) {
			t.Errorf("the transcript shows a typed password %q", secret)
		}
	}
	b.golden("lockout")
}

// TestShortPasswordNotTried: fewer digits than any password has are
// refused with a notice and not counted: three of them do not lock, and the
// right password then opens the menu.
func TestShortPasswordNotTried(t *testing.T) {
	b := newBench(t)
	if err := b.run("F1 1 OK 12 OK 123 OK " + testPassword + " OK CANCEL"); !errors.Is(err, ui.ErrNoMoreKeys) {
		t.Fatalf("Run = %v", err)
	}
	out := b.tr.b.String()
	if !strings.Contains(out, "4 digits min") || strings.Contains(out, "left") || strings.Contains(out, "LOCKED") {
		t.Errorf("short entries were tried:\n%s", out)
	}
	if !strings.Contains(out, "MENU") {
		t.Errorf("the menu did not open:\n%s", out)
	}
}

// TestIdleTimeoutResume drives the install from a key script file in the
// `posagent demo --keys` format: the installer walks away at the card
// confirmation; the idle timeout returns to the menu and the next "1"
// resumes at bind-card, not from the start.
func TestIdleTimeoutResume(t *testing.T) {
	b := newBench(t)
	if err := b.runFile("testdata/idle-resume.keys"); err != nil {
		t.Fatalf("Run = %v", err)
	}
	if b.rig.Runs != 2 {
		t.Errorf("flow entered %d times, want 2", b.rig.Runs)
	}
	out := b.tr.b.String()
	parts := strings.Split(out, "(idle 30s)")
	if len(parts) != 3 {
		t.Fatalf("%d idle timeouts, want 2 (MID entry, card confirmation)", len(parts)-1)
	}
	if !strings.Contains(parts[2], "进度已保存") {
		t.Error("the menu after the idle timeout in the flow did not say the progress was kept")
	}
	second := parts[2]
	// The install's sign-on says 终端签到; the one for business, after the
	// void, says 营业签到.
	if strings.Contains(second, "SELF TEST") || strings.Contains(second, "终端签到") {
		t.Error("the resumed flow started over instead of continuing at bind-card")
	}
	if cp := b.checkpoint(); cp.Step != provisioning.StepLive {
		t.Fatalf("checkpoint at %s", cp.Step)
	}
	// The host saw one sign-on (and the one for business), one sale and one
	// void: the resume repeated nothing that had been done.
	if got := b.ops(); got[ledger.KindSignOn] != 2 || got[ledger.KindSale] != 1 || got[ledger.KindVoid] != 1 || got[ledger.KindReversal] != 0 {
		t.Errorf("host ledger %v", got)
	}
	b.golden("idle-resume")
}

// runFile runs the installer on a key script file, parsed and timed as
// `posagent demo --keys FILE` does it: ui.ParseScript, with the virtual clock
// passing the waits.
func (b *bench) runFile(name string) error {
	b.t.Helper()
	src, err := os.ReadFile(name)
	if err != nil {
		b.t.Fatal(err)
	}
	script, err := ui.ParseScript(string(src))
	if err != nil {
		b.t.Fatal(err)
	}
	script.SetSleeper(b.clock)
	err = b.installer(logged{script, b.tr}).Run(context.Background())
	b.tr.note("= %s", result(err))
	return err
}

// TestKeyFiles runs the sample key scripts shipped for the demo, so they keep
// working as the menus change.
func TestKeyFiles(t *testing.T) {
	t.Run("happy.keys", func(t *testing.T) {
		b := newBench(t)
		if err := b.runFile("testdata/happy.keys"); err != nil {
			t.Fatalf("Run = %v", err)
		}
		if cp := b.checkpoint(); cp.Step != provisioning.StepLive {
			t.Fatalf("checkpoint at %s", cp.Step)
		}
	})
	t.Run("lockout.keys", func(t *testing.T) {
		b := newBench(t)
		b.flow = func(context.Context, installer.Identity, provisioning.Prompter) error {
			t.Error("the flow ran")
			return nil
		}
		if err := b.runFile("testdata/lockout.keys"); !errors.Is(err, ui.ErrNoMoreKeys) {
			t.Fatalf("Run = %v", err)
		}
		out := b.tr.b.String()
		locked, menu := strings.Index(out, "LOCKED"), strings.Index(out, "MENU")
		if locked < 0 || menu < locked || strings.Count(out, "LOCKED") != 2 {
			t.Fatalf("want locked twice, then the menu after the wait:\n%s", out)
		}
	})
}

// logged writes a ui.Script's keys to the transcript.
type logged struct {
	s  *ui.Script
	tr *transcript
}

func (l logged) Key(ctx context.Context) (ui.Key, error) {
	k, err := l.s.Key(ctx)
	switch {
	case errors.Is(err, installer.ErrIdle), err != nil && errors.Is(context.Cause(ctx), installer.ErrIdle):
		l.tr.note("(idle %s)", idle)
	case err == nil:
		l.tr.note("> %s", l.tr.shown(k))
	}
	return k, err
}

// Every failure code the flow can stop with, on the installer's failure
// screen: the code, what to do and the sentence in Chinese and English, and
// never the cause behind it.
func TestEveryFailureScreen(t *testing.T) {
	cause := errors.New("acquirer: sale: read tcp 127.0.0.1:40000: i/o timeout")
	verbs := regexp.MustCompile(`%[-+# 0-9.]*[a-z]`)
	for _, code := range provisioning.Codes() {
		t.Run(code, func(t *testing.T) {
			x, _ := provisioning.Explain(code)
			var err error = &provisioning.Rejection{Code: code, Message: "卡片被拒 Card refused"}
			if x.Message != (provisioning.Text{}) {
				// Arguments of the kinds the flow passes: numbers for %d,
				// a bilingual name or a masked card for %s.
				var args []any
				for _, v := range verbs.FindAllString(x.Message.EN, -1) {
					if strings.HasSuffix(v, "d") {
						args = append(args, 3)
					} else {
						args = append(args, provisioning.Text{ZH: "测试交易", EN: "test sale"})
					}
				}
				err = &provisioning.StepError{Code: code, Args: args, Err: cause}
			}
			fl := provisioning.FailureFor(provisioning.StepTestSale, err)
			b := newBench(t)
			b.flow = func(ctx context.Context, _ installer.Identity, p provisioning.Prompter) error {
				_, err := p.Ask(ctx, provisioning.Screen{Title: "需要处理 ATTENTION", Lines: fl.Lines(), Failure: fl},
					provisioning.Option{ID: "retry", Key: "ENTER", Label: "重试 Retry"},
					provisioning.Option{ID: "abort", Key: "CANCEL", Label: "中止 Abort"})
				return err
			}
			b.rows, b.cols = 16, 24
			_ = b.run(login + " 1 " + confirm + " CANCEL")
			var failed string
			for _, sc := range screens(b.tr.b.String()) {
				if strings.Contains(sc, "FAILED") {
					failed = sc
				}
			}
			if failed == "" {
				t.Fatalf("no failure screen:\n%s", b.tr.b.String())
			}
			squashed := strings.ReplaceAll(failed, " ", "")
			for _, want := range []string{code, fl.Action, fl.Message} {
				if !strings.Contains(squashed, strings.ReplaceAll(want, " ", "")) {
					t.Errorf("failure screen lacks %q:\n%s", want, b.tr.b.String())
				}
			}
			if goChain.MatchString(failed) || strings.Contains(failed, "127.0.0.1") || strings.Contains(failed, "%!") {
				t.Errorf("failure screen shows the cause or a broken sentence: %q", failed)
			}
		})
	}
}

// A failure only an operator may clear: F2 asks for the supervisor's
// password, and only the right one answers "clear"; without a supervisor
// password configured the keypad cannot clear at all.
func TestOperatorClear(t *testing.T) {
	fl := provisioning.FailureFor(provisioning.StepTestSale, &provisioning.StepError{Code: "E_REVERSAL_LIMIT",
		Args: []any{provisioning.Text{ZH: "测试交易", EN: "test sale"}, 3, "000001", "622202*********0128", "RMB 0.01", 3}})
	for _, tc := range []struct {
		name, supervisor, keys, want string
	}{
		{"right password", supervisorHash, "F2 97531 OK", "clear"},
		{"wrong then right", supervisorHash, "F2 11111 OK F2 97531 OK", "clear"},
		{"installer's password is not the supervisor's", supervisorHash, "F2 " + testPassword + " OK CANCEL", "abort"},
		{"no supervisor password", "", "F2 CANCEL", "abort"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newBench(t)
			b.supervisor = tc.supervisor
			var got string
			b.flow = func(ctx context.Context, _ installer.Identity, p provisioning.Prompter) error {
				lines := append(fl.Lines(), "未决 Unresolved: sale 000003 622202*********0128 RMB 0.01")
				id, err := p.Ask(ctx, provisioning.Screen{Title: "需要处理 ATTENTION", Lines: lines, Failure: fl},
					provisioning.Option{ID: "clear", Key: "F2", Label: "主管清除 Supervisor clear"},
					provisioning.Option{ID: "abort", Key: "CANCEL", Label: "中止 Abort"})
				got = id
				return err
			}
			_ = b.run(login + " 1 " + confirm + " " + tc.keys)
			if got != tc.want {
				t.Fatalf("answer %q, want %q\n%s", got, tc.want, b.tr.b.String())
			}
			tr := b.tr.b.String()
			if strings.Contains(tr, "97531") {
				t.Fatal("the supervisor's password reached the transcript")
			}
			if !strings.Contains(tr, "E_REVERSAL_LIMIT") || !strings.Contains(tr, "F2主管清除") || strings.Contains(tr, "OK重试") {
				t.Fatalf("the operator screen offers retry or lacks the code:\n%s", tr)
			}
			if tc.supervisor == "" && !strings.Contains(tr, "central") {
				t.Errorf("no word that central must clear it:\n%s", tr)
			}
		})
	}
}
