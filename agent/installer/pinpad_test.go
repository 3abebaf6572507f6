package installer_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/posagent/posagent/agent/acquirer"
	"github.com/posagent/posagent/agent/installer"
	"github.com/posagent/posagent/agent/installer/ui"
	"github.com/posagent/posagent/provisioning"
	"github.com/posagent/posagent/provisioning/pan"
	"github.com/posagent/posagent/provisioning/provisioningtest"
)

// pinCard is the card the PIN pad tests ask for; its masked form and the
// amount are what the screen shows besides the stars.
var pinCard = pan.MustParse("6222021234567890128")

const pinAmount = 5000 // fen: "RMB 50.00"

// pinScreens records every screen as the display got it, laid out: the LCD's
// rows, title first. What is recorded is what a shoulder could read.
type pinScreens struct {
	shown []string
	// onDraw, if set, runs after each draw (a test cancels its ctx there).
	onDraw func()
}

func (s *pinScreens) Draw(_ context.Context, title string, lines []string) error {
	s.shown = append(s.shown, title+"\n"+strings.Join(lines, "\n"))
	if s.onDraw != nil {
		s.onDraw()
	}
	return nil
}

// pinBench is an installer on a recording screen, reading kp, on clock.
func pinBench(t *testing.T, clock *installer.VirtualClock, kp ui.Keypad) (*installer.Installer, *pinScreens) {
	t.Helper()
	scr := &pinScreens{}
	in, err := installer.New(installer.Options{
		Config:  installer.Config{PasswordHash: testHash, IdleTimeout: idle, Rows: 8, Cols: 24},
		Display: scr, Keys: kp, Clock: clock,
		Locks: &provisioningtest.Store{}, Flow: noFlow(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	return in, scr
}

// pinKeys is a key script in which a run of digits is one key per digit;
// its waits pass on clock, the installer's, so "wait 30s" is the idle
// timeout at once.
func pinKeys(t *testing.T, clock *installer.VirtualClock, script string) *ui.Script {
	t.Helper()
	var keys []string
	for _, f := range strings.Fields(script) {
		if strings.Trim(f, "0123456789") == "" {
			keys = append(keys, strings.Split(f, "")...)
		} else {
			keys = append(keys, f)
		}
	}
	s, err := ui.ParseScript(strings.Join(keys, " "))
	if err != nil {
		t.Fatal(err)
	}
	s.SetSleeper(clock)
	return s
}

// pinRun is what one PIN entry gave.
type pinRun struct {
	block provisioning.PINBlock
	err   error
	shown []string // the screens, in order
	left  []ui.Key // the keys not read
}

// enterPIN runs OnlinePIN for pinCard on the script.
func enterPIN(t *testing.T, script string) pinRun {
	t.Helper()
	clock := installer.NewVirtualClock(t0)
	kp := pinKeys(t, clock, script)
	in, scr := pinBench(t, clock, kp)
	b, err := in.PINPad().OnlinePIN(context.Background(), provisioning.PINRequest{PAN: pinCard, Amount: pinAmount})
	return pinRun{block: b, err: err, shown: scr.shown, left: kp.Keys()}
}

// isSubsequence reports whether the digits of want appear in s in order,
// other characters between them: a screen that echoed each digit in turn,
// or showed the last one typed, spells the PIN out this way.
func isSubsequence(want, s string) bool {
	i := 0
	for j := 0; j < len(s) && i < len(want); j++ {
		if s[j] == want[i] {
			i++
		}
	}
	return i == len(want)
}

// noPINShown fails unless no screen shows pin, whole or digit by digit.
// The amount and the masked card are taken out first: their digits are
// the screen's own, and a PIN that shares some with them must not pass or
// fail by that.
func noPINShown(t *testing.T, pin string, shown []string) {
	t.Helper()
	all := strings.Join(shown, "\n")
	all = strings.ReplaceAll(all, provisioning.FormatRMB(pinAmount), "")
	all = strings.ReplaceAll(all, pinCard.Masked(), "")
	if strings.Contains(all, pin) {
		t.Errorf("a screen shows the PIN")
	}
	if isSubsequence(pin, all) {
		t.Errorf("the screens show the PIN's digits in sequence")
	}
}

func TestPINPadBlock(t *testing.T) {
	for _, tc := range []struct{ name, keys, pin string }{
		{"four digits", "1234 OK", "1234"},
		{"six digits", "975319 OK", "975319"},
		{"CLEAR deletes the last digit", "1239 CLEAR 4 OK", "1234"},
		{"too short stays and keeps the digits", "123 OK 4 OK", "1234"},
		{"a thirteenth digit is not taken", "1234567890123 OK", "123456789012"},
		{"keys that are no digits are ignored", "F1 1 UP 2 DOWN 34 F2 OK", "1234"},
		{"the PIN shares digits with the card and the amount", "6222 5000 OK", "62225000"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := enterPIN(t, tc.keys)
			if r.err != nil {
				t.Fatalf("OnlinePIN: %v", r.err)
			}
			want, err := provisioning.FormatPINBlock(tc.pin, pinCard)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(r.block, want) {
				t.Errorf("block is not FormatPINBlock of the PIN typed for the card")
			}
			// The acquirer's side reads the PIN back out of it.
			got, err := acquirer.ParsePINBlock(r.block, pinCard.Reveal())
			if err != nil || got != tc.pin {
				t.Errorf("acquirer.ParsePINBlock: %d digits, %v; want the %d typed", len(got), err, len(tc.pin))
			}
			if len(r.left) > 0 {
				t.Errorf("keys left unread: %v", r.left)
			}
			noPINShown(t, tc.pin, r.shown)
			last := r.shown[len(r.shown)-1]
			for _, s := range []string{"请输入密码 ENTER PIN", provisioning.FormatRMB(pinAmount), pinCard.Masked(),
				"\n" + strings.Repeat("*", len(tc.pin)) + "_\n"} {
				if !strings.Contains(last, s) {
					t.Errorf("the last screen lacks %q:\n%s", s, last)
				}
			}
		})
	}
}

// The screens are a function of how many digits were typed, not of which:
// two PINs without a digit in common draw the same screens.
func TestPINPadScreensDoNotDependOnDigits(t *testing.T) {
	a, b := enterPIN(t, "123 CLEAR 45 OK"), enterPIN(t, "678 CLEAR 90 OK")
	if a.err != nil || b.err != nil {
		t.Fatal(a.err, b.err)
	}
	if x, y := strings.Join(a.shown, "\n--\n"), strings.Join(b.shown, "\n--\n"); x != y {
		t.Errorf("the screens differ with the digits:\n%s\n----\n%s", x, y)
	}
	if len(a.shown) != 7 { // the first screen, then one per key but OK
		t.Errorf("%d screens for 6 keys before OK, want 7", len(a.shown))
	}
}

func TestPINPadBypass(t *testing.T) {
	for _, keys := range []string{"OK", "5 CLEAR OK"} {
		r := enterPIN(t, keys)
		if !errors.Is(r.err, provisioning.ErrPINBypassed) || r.block != nil {
			t.Errorf("%s: %v, block %v; want ErrPINBypassed and no block", keys, r.err, r.block)
		}
	}
}

func TestPINPadCancel(t *testing.T) {
	r := enterPIN(t, "12 CANCEL")
	if !errors.Is(r.err, installer.ErrPINCancelled) || r.block != nil {
		t.Fatalf("%v, block %v; want ErrPINCancelled and no block", r.err, r.block)
	}
	if errors.Is(r.err, provisioning.ErrPINBypassed) {
		t.Error("CANCEL reads as a bypass")
	}
	noPINShown(t, "12", r.shown)
}

// One to three digits and ENTER neither bypass nor answer: the pad stays
// (here until the script runs out) saying the PIN is too short, with the
// digits still there.
func TestPINPadTooShort(t *testing.T) {
	for _, tc := range []struct {
		keys  string
		typed int
	}{{"1 OK", 1}, {"123 OK", 3}, {"123 OK OK", 3}} {
		r := enterPIN(t, tc.keys)
		var ke *installer.KeyError
		if !errors.As(r.err, &ke) || !errors.Is(r.err, ui.ErrNoMoreKeys) || r.block != nil {
			t.Errorf("%s: %v, block %v; want the pad still waiting when the keys ran out", tc.keys, r.err, r.block)
			continue
		}
		last := r.shown[len(r.shown)-1]
		if want := "\n" + strings.Repeat("*", tc.typed) + "_ 至少4位 Too short\n"; !strings.Contains(last, want) {
			t.Errorf("%s: the last screen lacks %q:\n%s", tc.keys, want, last)
		}
	}
}

func TestPINPadIdle(t *testing.T) {
	r := enterPIN(t, "12 wait 30s 34 OK")
	if !errors.Is(r.err, installer.ErrIdle) || r.block != nil {
		t.Fatalf("%v, block %v; want ErrIdle", r.err, r.block)
	}
}

// blockingKeys never delivers a key: Key waits for ctx.
type blockingKeys struct{}

func (blockingKeys) Key(ctx context.Context) (ui.Key, error) {
	<-ctx.Done()
	return "", ctx.Err()
}

func TestPINPadContextCancelled(t *testing.T) {
	in, scr := pinBench(t, installer.NewVirtualClock(t0), blockingKeys{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	scr.onDraw = cancel // the flow gives up while the pad waits
	b, err := in.PINPad().OnlinePIN(ctx, provisioning.PINRequest{PAN: pinCard, Amount: pinAmount})
	if !errors.Is(err, context.Canceled) || b != nil {
		t.Fatalf("%v, block %v; want ctx's error", err, b)
	}
}

// A card the block cannot be bound to is an error, and no block.
func TestPINPadNoCard(t *testing.T) {
	clock := installer.NewVirtualClock(t0)
	in, _ := pinBench(t, clock, pinKeys(t, clock, "1234 OK"))
	b, err := in.PINPad().OnlinePIN(context.Background(), provisioning.PINRequest{Amount: pinAmount})
	if !errors.Is(err, provisioning.ErrPINBlockPAN) || b != nil {
		t.Fatalf("%v, block %v; want ErrPINBlockPAN", err, b)
	}
	if strings.Contains(err.Error(), "1234") {
		t.Errorf("the error repeats the PIN: %v", err)
	}
}
