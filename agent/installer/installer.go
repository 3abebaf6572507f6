package installer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/posagent/posagent/agent/installer/ui"
	"github.com/posagent/posagent/provisioning"
)

// Defaults used when a Config field is zero.
const (
	DefaultMaxTries    = 3
	DefaultLockout     = 15 * time.Minute
	DefaultIdleTimeout = 60 * time.Second
	DefaultRows        = 8
	DefaultCols        = 24
	DefaultFunctionKey = ui.KeyF1
	// DefaultMaxPasswordLen bounds what the password field accepts, so a
	// stuck digit key cannot grow it without end.
	DefaultMaxPasswordLen = 12
)

// Config is the installer's part of the agent's configuration.
type Config struct {
	// PasswordHash is HashPassword's output for the installer password. It
	// is required: a terminal without one cannot be put in install mode.
	PasswordHash string
	// MaxTries wrong passwords in a row lock install mode for Lockout.
	MaxTries int
	Lockout  time.Duration
	// IdleTimeout is how long a prompt waits for a key before giving up:
	// mid-entry or inside the flow it returns to the menu (the flow's
	// checkpoint is kept), at the menu it leaves install mode.
	IdleTimeout time.Duration
	// Rows and Cols are the display's size in text rows and display
	// columns (a Chinese character takes two).
	Rows, Cols int
	// FunctionKey, pressed on the idle screen, asks for the password.
	FunctionKey ui.Key
	// MaxPasswordLen is the most digits the password field takes.
	MaxPasswordLen int
	// SupervisorHash is HashPassword's output for the supervisor password,
	// which clears what only an operator may clear (a reversal given up, a
	// void the host cannot match, an identity change). Empty: only central's
	// signed command can.
	SupervisorHash string
}

func (c Config) withDefaults() Config {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	defDur := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&c.MaxTries, DefaultMaxTries)
	defDur(&c.Lockout, DefaultLockout)
	defDur(&c.IdleTimeout, DefaultIdleTimeout)
	def(&c.Rows, DefaultRows)
	def(&c.Cols, DefaultCols)
	def(&c.MaxPasswordLen, DefaultMaxPasswordLen)
	if c.FunctionKey == "" {
		c.FunctionKey = DefaultFunctionKey
	}
	return c
}

// FlowFunc runs (or resumes) the install for the terminal id, asking the
// installer through p. It returns nil once the terminal is live and
// provisioning.ErrAborted when the installer aborted; when its ctx is
// cancelled it must return promptly, leaving its checkpoint to resume from.
// provisioning.Flow.Run, with Terminal built from id and UI set to p, is one.
type FlowFunc func(ctx context.Context, id Identity, p provisioning.Prompter) error

// Indicator is the keypad's buzzer or LED (drivers/keypad's Buzzer and LED
// have these methods). Its errors are logged, never fatal: a dead buzzer
// must not stop an install.
type Indicator interface {
	Click(ctx context.Context) error
	Success(ctx context.Context) error
	Failure(ctx context.Context) error
}

// Skip is the installer's decision to leave a failed step for later, with a
// reason for monitoring.
type Skip struct {
	Step   string // the flow's step, e.g. "test-sale"
	Code   string // the failure code, e.g. "E_PRINTER"
	Reason string // the reason picked, in English, e.g. "merchant away"
}

// Options are what New needs. Display, Keys, Clock, Locks and Flow are
// required.
type Options struct {
	Config  Config
	Display ui.Display
	Keys    ui.Keypad
	Clock   Clock
	// Locks keeps the wrong-password count and the lock-out.
	Locks Store
	// IDs keeps the MID and TID the installer confirmed; nil keeps them in
	// memory only (the demo).
	IDs Store
	// Identity is the configured MID/TID, the starting point until the
	// installer confirms other numbers.
	Identity Identity
	Flow     FlowFunc
	// Banks maps card number prefixes (BINs) to the issuing bank's name for
	// the card confirmation screen; the longest matching prefix wins.
	Banks map[string]string
	// Indicator, if set, clicks on keys and signals success and failure.
	Indicator Indicator
	// OnSkip, if set, is told of every skip, e.g. to report it.
	OnSkip func(ctx context.Context, s Skip)
	// OnIdentity, if set, is told of every MID/TID the installer confirms
	// (after it was saved); an error it returns ends Run with that error —
	// the agent starts again around numbers other than the ones it runs
	// with.
	OnIdentity func(ctx context.Context, id Identity) error
	Log        *slog.Logger
}

// Installer is the menu state machine. Build it with New and call Run.
type Installer struct {
	o          Options
	cfg        Config
	hash       passwordHash
	supervisor *passwordHash // nil: no supervisor password configured
	log        *slog.Logger

	lock      lockState
	id        Identity
	confirmed bool // id came from IDs or was confirmed in this run

	// Session state, carried from one state to the next.
	notice  string   // one message for the next screen, then cleared
	edit    Identity // numbers being entered
	afterID state    // where confirm-id goes once saved
}

// ErrIdle is the cause of a prompt that timed out waiting for a key.
var ErrIdle = errors.New("installer: idle timeout")

// errCancelled is the cause of a flow stopped by CANCEL on a prompt that
// offers no cancel option of its own.
var errCancelled = errors.New("installer: cancelled by the installer")

// KeyError wraps a keypad failure (a driver error, or ui.ErrNoMoreKeys at the
// end of a key script). It ends Run: without keys there is no installer.
type KeyError struct{ Err error }

func (e *KeyError) Error() string { return "installer: keypad: " + e.Err.Error() }

// Unwrap returns the keypad's error.
func (e *KeyError) Unwrap() error { return e.Err }

// New checks o and loads the persisted lock and identity. A lock record that
// cannot be read locks install mode for Config.Lockout (fail closed) and is
// replaced; an unreadable identity record is an error.
func New(o Options) (*Installer, error) {
	switch {
	case o.Display == nil, o.Keys == nil, o.Clock == nil, o.Locks == nil, o.Flow == nil:
		return nil, errors.New("installer: Display, Keys, Clock, Locks and Flow are required")
	}
	h, err := parsePasswordHash(o.Config.PasswordHash)
	if err != nil {
		return nil, err
	}
	in := &Installer{o: o, cfg: o.Config.withDefaults(), hash: h, log: o.Log, id: o.Identity}
	if o.Config.SupervisorHash != "" {
		sh, err := parsePasswordHash(o.Config.SupervisorHash)
		if err != nil {
			return nil, fmt.Errorf("installer: supervisor password: %w", err)
		}
		in.supervisor = &sh
	}
	if in.log == nil {
		in.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	in.lock, err = loadLock(o.Locks)
	if errors.Is(err, errCorruptLock) {
		// Failing open would let anyone reset the tries by corrupting one
		// file; failing closed costs an installer one lock-out period.
		in.log.Error("installer lock record unreadable: locking install mode", "err", err)
		in.lock = lockState{LockedUntil: o.Clock.Now().Add(in.cfg.Lockout)}
		err = saveLock(o.Locks, in.lock)
	}
	if err != nil {
		return nil, err
	}
	if o.IDs != nil {
		id, ok, err := loadIdentity(o.IDs)
		if err != nil {
			return nil, err
		}
		if ok {
			in.id, in.confirmed = id, true
		}
	}
	return in, nil
}

// Identity returns the MID and TID the flow runs (or will run) with.
func (in *Installer) Identity() Identity { return in.id }

// state names one screen of the menu. They are strings so logs read well;
// nothing persists them.
type state string

const (
	stHome      state = "home"
	stPassword  state = "password"
	stLocked    state = "locked"
	stMenu      state = "menu"
	stMID       state = "mid"
	stTID       state = "tid"
	stConfirmID state = "confirm-id"
	stFlow      state = "flow"
	stDone      state = "done"
)

// Run drives the menu until the terminal is live (nil), ctx ends (its error),
// the keypad fails (a *KeyError, wrapping ui.ErrNoMoreKeys when a key script
// runs out) or a store fails. Each state draws its screen, reads keys and
// names the next state; the flow's checkpoint is the flow's business, so
// leaving the flow at any point and entering it again resumes it.
func (in *Installer) Run(ctx context.Context) error {
	st := stHome
	for st != stDone {
		if err := ctx.Err(); err != nil {
			return err
		}
		next, err := in.handler(st)(ctx)
		if err != nil {
			return err
		}
		in.log.Debug("installer", "from", st, "to", next)
		st = next
	}
	return nil
}

func (in *Installer) handler(s state) func(context.Context) (state, error) {
	switch s {
	case stHome:
		return in.home
	case stPassword:
		return in.password
	case stLocked:
		return in.locked
	case stMenu:
		return in.menu
	case stMID:
		return func(ctx context.Context) (state, error) { return in.number(ctx, numMID) }
	case stTID:
		return func(ctx context.Context) (state, error) { return in.number(ctx, numTID) }
	case stConfirmID:
		return in.confirmID
	case stFlow:
		return in.runFlow
	}
	panic("installer: no handler for state " + string(s))
}

// draw lays a screen out on the configured display and shows it.
func (in *Installer) draw(ctx context.Context, title string, body, footer []string) error {
	rows := ui.Layout(in.cfg.Rows, in.cfg.Cols, title, body, footer)
	if err := in.o.Display.Draw(ctx, rows[0], rows[1:]); err != nil {
		return fmt.Errorf("installer: draw: %w", err)
	}
	return nil
}

// key reads one key. With idle, a key that does not come within
// Config.IdleTimeout gives ErrIdle. Keypad errors come back as *KeyError.
func (in *Installer) key(ctx context.Context, idle bool) (ui.Key, error) {
	kctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	if idle {
		stop := in.o.Clock.AfterFunc(in.cfg.IdleTimeout, func() { cancel(ErrIdle) })
		defer stop()
	}
	k, err := in.o.Keys.Key(kctx)
	if err != nil {
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		if errors.Is(context.Cause(kctx), ErrIdle) {
			return "", ErrIdle
		}
		return "", &KeyError{Err: err}
	}
	in.signal(ctx, Indicator.Click)
	return k, nil
}

func (in *Installer) signal(ctx context.Context, f func(Indicator, context.Context) error) {
	if in.o.Indicator == nil {
		return
	}
	if err := f(in.o.Indicator, ctx); err != nil {
		in.log.Warn("installer indicator", "err", err)
	}
}

// takeNotice returns the pending message and clears it.
func (in *Installer) takeNotice() string {
	n := in.notice
	in.notice = ""
	return n
}

func (in *Installer) home(ctx context.Context) (state, error) {
	if err := in.draw(ctx, "posagent", []string{"终端 TID " + in.id.TID, "待机 Ready", in.takeNotice()},
		[]string{string(in.cfg.FunctionKey) + " 安装 Install"}); err != nil {
		return "", err
	}
	for {
		// No idle timeout here: this is where idling leads.
		k, err := in.key(ctx, false)
		if err != nil {
			return "", err
		}
		if k == in.cfg.FunctionKey {
			return stPassword, nil
		}
	}
}

// isLocked reports whether install mode is locked now. A lock that ends
// further away than one lock-out period means the clock went back (an RTC
// that lost its battery reads 1970): the lock then runs one period from now,
// instead of for decades, and is saved so.
func (in *Installer) isLocked() bool {
	now := in.o.Clock.Now()
	if in.lock.LockedUntil.Sub(now) > in.cfg.Lockout {
		in.lock.LockedUntil = now.Add(in.cfg.Lockout)
		if err := saveLock(in.o.Locks, in.lock); err != nil {
			// Still locked in memory; the next start re-anchors again.
			in.log.Error("installer: save lock", "err", err)
		}
	}
	return now.Before(in.lock.LockedUntil)
}

func (in *Installer) password(ctx context.Context) (state, error) {
	if in.isLocked() {
		return stLocked, nil
	}
	// The typed digits live in this slice only, and it is zeroed on the way
	// out: they are never logged, drawn (only one '*' each) or kept.
	typed := make([]byte, 0, in.cfg.MaxPasswordLen)
	defer clear(typed[:cap(typed)])
	notice := in.takeNotice()
	for {
		// Two body rows, the notice (if any) in place of the prompt, so a
		// four-row display still shows both what went wrong and the input.
		prompt := "输入密码 Password"
		if notice != "" {
			prompt = notice
		}
		if err := in.draw(ctx, "安装密码 PASSWORD",
			[]string{prompt, strings.Repeat("*", len(typed)) + "_"},
			[]string{"OK确认 C删除 X退出"}); err != nil {
			return "", err
		}
		notice = ""
		k, err := in.key(ctx, true)
		switch {
		case errors.Is(err, ErrIdle):
			return stHome, nil
		case err != nil:
			return "", err
		}
		switch {
		case k == ui.KeyCancel:
			return stHome, nil
		case k == ui.KeyClear:
			if len(typed) > 0 {
				typed = typed[:len(typed)-1]
			}
		case isDigit(k):
			if len(typed) < in.cfg.MaxPasswordLen {
				typed = append(typed, k[0])
			}
		case k == ui.KeyEnter:
			if len(typed) == 0 {
				notice = "请先输入 Type it first"
				continue
			}
			if len(typed) < MinPasswordLen {
				// No password is that short (HashPassword refuses one), so
				// this is a slip, not a guess: not counted as a wrong try.
				notice = fmt.Sprintf("至少%d位 %d digits min", MinPasswordLen, MinPasswordLen)
				clear(typed)
				typed = typed[:0]
				continue
			}
			return in.checkPassword(ctx, typed)
		}
	}
}

// checkPassword counts the try before it reports, and saves the count before
// anything is shown: pulling the plug after a wrong try must not undo it.
func (in *Installer) checkPassword(ctx context.Context, typed []byte) (state, error) {
	if in.hash.matches(string(typed)) {
		if in.lock.Failures != 0 || !in.lock.LockedUntil.IsZero() {
			in.lock = lockState{}
			if err := saveLock(in.o.Locks, in.lock); err != nil {
				return "", err
			}
		}
		in.log.Info("installer: install mode entered")
		return stMenu, nil
	}
	in.lock.Failures++
	in.signal(ctx, Indicator.Failure)
	if in.lock.Failures >= in.cfg.MaxTries {
		in.lock = lockState{LockedUntil: in.o.Clock.Now().Add(in.cfg.Lockout)}
		if err := saveLock(in.o.Locks, in.lock); err != nil {
			return "", err
		}
		in.log.Warn("installer: wrong password, install mode locked", "tries", in.cfg.MaxTries, "until", in.lock.LockedUntil)
		return stLocked, nil
	}
	if err := saveLock(in.o.Locks, in.lock); err != nil {
		return "", err
	}
	left := in.cfg.MaxTries - in.lock.Failures
	in.log.Warn("installer: wrong password", "tries_left", left)
	in.notice = fmt.Sprintf("密码错误 剩%d次 %d left", left, left)
	return stPassword, nil
}

func (in *Installer) locked(ctx context.Context) (state, error) {
	if !in.isLocked() {
		return stPassword, nil
	}
	left := in.lock.LockedUntil.Sub(in.o.Clock.Now())
	mins := int((left + time.Minute - 1) / time.Minute)
	if err := in.draw(ctx, "已锁定 LOCKED",
		[]string{fmt.Sprintf("%d分钟后再试", mins), fmt.Sprintf("Try again in %d min", mins), "密码错误次数过多", "Too many wrong passwords"},
		[]string{"X 返回 Back"}); err != nil {
		return "", err
	}
	_, err := in.key(ctx, true)
	if err != nil && !errors.Is(err, ErrIdle) {
		return "", err
	}
	return stHome, nil
}

func (in *Installer) menu(ctx context.Context) (state, error) {
	if err := in.draw(ctx, "安装菜单 MENU",
		[]string{"1 安装/继续 Install", "2 商户号终端号 MID/TID", in.takeNotice()},
		[]string{"X 退出 Exit"}); err != nil {
		return "", err
	}
	for {
		k, err := in.key(ctx, true)
		switch {
		case errors.Is(err, ErrIdle):
			// Idle at the menu leaves install mode: an unattended terminal
			// must not stay unlocked.
			in.notice = "超时已退出 Logged out"
			return stHome, nil
		case err != nil:
			return "", err
		}
		switch k {
		case ui.KeyCancel:
			return stHome, nil
		case "1":
			if in.confirmed {
				return stFlow, nil
			}
			in.edit, in.afterID = in.id, stFlow
			return stMID, nil
		case "2":
			in.edit, in.afterID = in.id, stMenu
			return stMID, nil
		}
	}
}

// numField describes the MID or TID entry.
type numField struct {
	title, prompt string
	n             int
	get           func(*Identity) *string
	next          state
}

var (
	numMID = numField{"商户号 MID", "15位数字 15 digits", MIDLen, func(id *Identity) *string { return &id.MID }, stTID}
	numTID = numField{"终端号 TID", "8位数字 8 digits", TIDLen, func(id *Identity) *string { return &id.TID }, stConfirmID}
)

// number edits one of the numbers. The current value is shown; OK keeps it
// (confirming it), a digit starts a new one, CLEAR deletes the last digit.
// Only digits are taken and OK needs exactly the right count.
func (in *Installer) number(ctx context.Context, f numField) (state, error) {
	value := *f.get(&in.edit)
	fresh := true // the first digit typed replaces the value shown
	notice := ""
	for {
		if err := in.draw(ctx, f.title, []string{f.prompt, value + "_", notice},
			[]string{"OK确认 C删除 X返回"}); err != nil {
			return "", err
		}
		notice = ""
		k, err := in.key(ctx, true)
		switch {
		case errors.Is(err, ErrIdle):
			in.notice = "超时 Idle: not saved"
			return stMenu, nil
		case err != nil:
			return "", err
		}
		switch {
		case k == ui.KeyCancel:
			in.notice = "未保存 Not saved"
			return stMenu, nil
		case k == ui.KeyClear:
			fresh = false
			if value != "" {
				value = value[:len(value)-1]
			}
		case isDigit(k):
			if fresh {
				value, fresh = "", false
			}
			if len(value) < f.n {
				value += string(k)
			} else {
				notice = fmt.Sprintf("最多%d位 %d digits max", f.n, f.n)
			}
		case k == ui.KeyEnter:
			if !digits(value, f.n) {
				notice = fmt.Sprintf("需%d位 Need %d, have %d", f.n, f.n, len(value))
				continue
			}
			*f.get(&in.edit) = value
			return f.next, nil
		}
	}
}

func (in *Installer) confirmID(ctx context.Context) (state, error) {
	if err := in.draw(ctx, "确认 CONFIRM",
		[]string{"商户号 MID", in.edit.MID, "终端号 TID", in.edit.TID},
		[]string{"OK 保存 Save X 返回"}); err != nil {
		return "", err
	}
	for {
		k, err := in.key(ctx, true)
		switch {
		case errors.Is(err, ErrIdle):
			in.notice = "超时 Idle: not saved"
			return stMenu, nil
		case err != nil:
			return "", err
		}
		switch k {
		case ui.KeyCancel:
			in.notice = "未保存 Not saved"
			return stMenu, nil
		case ui.KeyEnter:
			if in.o.IDs != nil {
				if err := saveIdentity(in.o.IDs, in.edit); err != nil {
					return "", err
				}
			}
			in.id, in.confirmed = in.edit, true
			in.log.Info("installer: identity confirmed", "mid", in.id.MID, "tid", in.id.TID)
			if in.o.OnIdentity != nil {
				if err := in.o.OnIdentity(ctx, in.id); err != nil {
					return "", err
				}
			}
			if in.afterID == stMenu {
				in.notice = "已保存 Saved"
			}
			return in.afterID, nil
		}
	}
}

// skipped is the cause of a flow left for later by the installer.
type skipped struct{ Skip }

func (s *skipped) Error() string { return "installer: skipped " + s.Code + ": " + s.Reason }

// runFlow runs the flow under a context the installer's prompter can end:
// on idle, on CANCEL, on a skip, or on a keypad failure. The flow sees only
// a cancelled context and returns leaving its checkpoint as it was, so the
// next "1" at the menu resumes from there.
func (in *Installer) runFlow(ctx context.Context) (state, error) {
	fctx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	p := &prompter{in: in, stop: stop}
	err := in.o.Flow(fctx, in.id, p)
	cause := context.Cause(fctx)
	var ke *KeyError
	var sk *skipped
	switch {
	case ctx.Err() != nil:
		return "", ctx.Err()
	case err == nil && cause == nil:
		in.signal(ctx, Indicator.Success)
		in.log.Info("installer: install finished")
		return stDone, nil
	case errors.As(cause, &ke):
		return "", ke
	case errors.As(err, &ke):
		return "", ke
	case errors.Is(cause, ErrIdle):
		in.notice = "超时,进度已保存 Idle"
	case errors.Is(cause, errCancelled):
		in.notice = "已取消 Cancelled, kept"
	case errors.As(cause, &sk):
		in.notice = "已跳过 Skipped: " + sk.Reason
	case errors.Is(err, provisioning.ErrAborted):
		in.notice = "已中止 Aborted"
	default:
		// The flow's errors name no card data, but they are long: the
		// screen says where to look, the log says what happened.
		in.log.Error("installer: install flow failed", "err", err)
		in.notice = "出错,见日志 See log"
		in.signal(ctx, Indicator.Failure)
	}
	return stMenu, nil
}

func isDigit(k ui.Key) bool { return len(k) == 1 && k[0] >= '0' && k[0] <= '9' }
