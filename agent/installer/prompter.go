package installer

import (
	"context"
	"strings"

	"github.com/posagent/posagent/agent/installer/ui"
	"github.com/posagent/posagent/provisioning"
	"github.com/posagent/posagent/provisioning/pan"
)

// prompter is the provisioning.Prompter the flow runs with. It lays the flow's
// screens out on the display and reads keys with the idle timeout; it ends the
// flow (through stop) rather than answering when the installer walks away,
// presses CANCEL where the flow offers no cancel, or skips a failed step.
//
// Two of the flow's questions get the installer's own screens, recognised by
// their option IDs, which are the flow's API: the failure question (retry /
// abort) gains "skip with a reason" and a hint of what to do; the card
// question (confirm / cancel) gains the issuing bank. Any other question is
// drawn as the flow asked it.
type prompter struct {
	in   *Installer
	stop context.CancelCauseFunc
}

var _ provisioning.Prompter = (*prompter)(nil)

// Show draws s; it never waits.
func (p *prompter) Show(ctx context.Context, s provisioning.Screen) error {
	return p.in.draw(ctx, s.Title, maskLines(s.Lines), nil)
}

// Ask draws s with its options and returns the ID of the option picked.
func (p *prompter) Ask(ctx context.Context, s provisioning.Screen, options ...provisioning.Option) (string, error) {
	if hasOptions(options, "retry", "abort") {
		return p.attention(ctx, s, options)
	}
	if hasOptions(options, "clear", "abort") {
		return p.operator(ctx, s)
	}
	keys := make([]ui.Key, len(options))
	var labels []string
	for i, o := range options {
		k, err := ui.ParseKey(o.Key)
		if err != nil {
			return "", err
		}
		keys[i] = k
		labels = append(labels, keyLabel(k)+" "+o.Label)
	}
	footer := strings.Join(labels, " ")
	if hasOptions(options, "confirm", "cancel") && len(s.Lines) >= 3 && keys[0] == ui.KeyEnter && keys[1] == ui.KeyCancel {
		s, footer = p.cardScreen(s), "OK确认 X取消"
	}
	if err := p.in.draw(ctx, s.Title, maskLines(s.Lines), []string{footer}); err != nil {
		return "", err
	}
	for {
		k, err := p.key(ctx)
		if err != nil {
			return "", err
		}
		for i, want := range keys {
			if k == want {
				return options[i].ID, nil
			}
		}
		if k == ui.KeyCancel {
			// Cancel always works: where the flow has no cancel of its own,
			// it stops the flow, which resumes later from its checkpoint.
			p.stop(errCancelled)
			return "", errCancelled
		}
	}
}

// key reads a key; when that fails (idle, keypad) the flow is stopped with the
// reason as its context's cause, so it returns instead of recording a step
// failure for what is not one.
func (p *prompter) key(ctx context.Context) (ui.Key, error) {
	k, err := p.in.key(ctx, true)
	if err != nil {
		if ctx.Err() == nil {
			p.stop(err)
		}
		return "", err
	}
	return k, nil
}

// skipReasons are the reasons a step may be left for later, keyed 1-4.
var skipReasons = []struct{ zh, en string }{
	{"商户不在", "merchant away"},
	{"设备故障", "device fault"},
	{"网络故障", "network down"},
	{"其他", "other"},
}

// attention is the failed-step screen: retry, skip with a reason, or abort.
// It lays out the flow's failure itself: code first, then what to do, then
// the sentence, because on a small display the last lines are what gets
// cut, and the sentence is the least actionable. The cause never shows.
func (p *prompter) attention(ctx context.Context, s provisioning.Screen, options []provisioning.Option) (string, error) {
	var step, code string
	body := maskLines(s.Lines)
	if fl := s.Failure; fl != nil {
		step, code = string(fl.Step), fl.Code
		body = []string{code}
		if fl.Action != "" {
			body = append(body, "> "+fl.Action)
		}
		body = append(body, maskLines([]string{fl.Message})...)
	}
	p.in.signal(ctx, Indicator.Failure)
	for {
		if err := p.in.draw(ctx, "失败 FAILED", body, []string{"OK重试 1跳过 X中止"}); err != nil {
			return "", err
		}
		k, err := p.key(ctx)
		if err != nil {
			return "", err
		}
		switch k {
		case ui.KeyEnter:
			return "retry", nil
		case ui.KeyCancel:
			return "abort", nil
		case "1":
			reason, err := p.skipReason(ctx)
			if err != nil {
				return "", err
			}
			if reason == "" {
				continue // back to the failure screen
			}
			sk := Skip{Step: step, Code: code, Reason: reason}
			p.in.log.Info("installer: step skipped", "step", step, "code", code, "reason", reason)
			if p.in.o.OnSkip != nil {
				p.in.o.OnSkip(ctx, sk)
			}
			err = &skipped{sk}
			p.stop(err)
			return "", err
		}
	}
}

// operator is the screen of a failure only an operator may clear: the
// failure as attention lays it out, F2 for the supervisor's password (which
// answers "clear"), CANCEL to abort. There is no retry and no skip: the
// flow would stop at the same place.
func (p *prompter) operator(ctx context.Context, s provisioning.Screen) (string, error) {
	body := maskLines(s.Lines)
	if fl := s.Failure; fl != nil {
		body = []string{fl.Code}
		if fl.Action != "" {
			body = append(body, "> "+fl.Action)
		}
		rest := []string{fl.Message}
		if n := len(fl.Lines()); len(s.Lines) > n {
			rest = append(rest, s.Lines[n:]...) // what is still unsettled
		}
		body = append(body, maskLines(rest)...)
	}
	p.in.signal(ctx, Indicator.Failure)
	notice := ""
	for {
		lines := body
		if notice != "" {
			lines = append([]string{notice}, body...)
			notice = ""
		}
		if err := p.in.draw(ctx, "主管处理 SUPERVISOR", lines, []string{"F2主管清除 X中止"}); err != nil {
			return "", err
		}
		k, err := p.key(ctx)
		if err != nil {
			return "", err
		}
		switch k {
		case ui.KeyCancel:
			return "abort", nil
		case ui.KeyF2:
			ok, msg, err := p.supervisorPassword(ctx)
			if err != nil {
				return "", err
			}
			if ok {
				p.in.log.Warn("installer: supervisor cleared a failure", "code", codeOf(s))
				return "clear", nil
			}
			notice = msg
		}
	}
}

func codeOf(s provisioning.Screen) string {
	if s.Failure != nil {
		return s.Failure.Code
	}
	return ""
}

// supervisorPassword asks for the supervisor's password. A wrong one counts
// against the same lock-out as the installer's, saved before it is told.
func (p *prompter) supervisorPassword(ctx context.Context) (bool, string, error) {
	in := p.in
	if in.supervisor == nil {
		return false, "未配置主管密码 No supervisor password: central must clear it", nil
	}
	if in.isLocked() {
		return false, "已锁定 Locked", nil
	}
	typed := make([]byte, 0, in.cfg.MaxPasswordLen)
	defer clear(typed[:cap(typed)])
	for {
		if err := in.draw(ctx, "主管密码 SUPERVISOR PW", []string{"输入主管密码 Password", strings.Repeat("*", len(typed)) + "_"},
			[]string{"OK确认 C删除 X返回"}); err != nil {
			return false, "", err
		}
		k, err := p.key(ctx)
		if err != nil {
			return false, "", err
		}
		switch {
		case k == ui.KeyCancel:
			return false, "", nil
		case k == ui.KeyClear:
			if len(typed) > 0 {
				typed = typed[:len(typed)-1]
			}
		case isDigit(k):
			if len(typed) < in.cfg.MaxPasswordLen {
				typed = append(typed, k[0])
			}
		case k == ui.KeyEnter && len(typed) > 0:
			if in.supervisor.matches(string(typed)) {
				return true, "", nil
			}
			in.lock.Failures++
			if in.lock.Failures >= in.cfg.MaxTries {
				in.lock = lockState{LockedUntil: in.o.Clock.Now().Add(in.cfg.Lockout)}
			}
			if err := saveLock(in.o.Locks, in.lock); err != nil {
				return false, "", err
			}
			in.signal(ctx, Indicator.Failure)
			in.log.Warn("installer: wrong supervisor password")
			return false, "密码错误 Wrong password", nil
		}
	}
}

// skipReason asks why; "" means the installer went back.
func (p *prompter) skipReason(ctx context.Context) (string, error) {
	var body []string
	for i, r := range skipReasons {
		body = append(body, string(rune('1'+i))+" "+r.zh+" "+r.en)
	}
	if err := p.in.draw(ctx, "跳过原因 SKIP REASON", body, []string{"X 返回 Back"}); err != nil {
		return "", err
	}
	for {
		k, err := p.key(ctx)
		if err != nil {
			return "", err
		}
		if k == ui.KeyCancel {
			return "", nil
		}
		if isDigit(k) {
			if i := int(k[0] - '1'); i >= 0 && i < len(skipReasons) {
				return skipReasons[i].en, nil
			}
		}
	}
}

// cardScreen relabels the flow's card question (masked PAN, name, type and
// label) and adds the bank, looked up by the BIN the masked PAN still shows.
func (p *prompter) cardScreen(s provisioning.Screen) provisioning.Screen {
	masked := s.Lines[0]
	bank := p.in.bank(masked)
	return provisioning.Screen{Title: "确认结算卡 CONFIRM CARD", Lines: []string{
		"卡号 " + masked, "户名 " + s.Lines[1], "银行 " + bank, s.Lines[2],
	}}
}

// bank finds the longest prefix of the masked card number in Options.Banks.
func (in *Installer) bank(masked string) string {
	best, name := 0, "未知 unknown"
	for bin, n := range in.o.Banks {
		if len(bin) > best && strings.HasPrefix(masked, bin) {
			best, name = len(bin), n
		}
	}
	return name
}

func hasOptions(options []provisioning.Option, ids ...string) bool {
	if len(options) != len(ids) {
		return false
	}
	for i, o := range options {
		if o.ID != ids[i] {
			return false
		}
	}
	return true
}

// keyLabel is how a key is named on a small screen: the words printed on a
// Chinese POS keypad's keys are longer than the room there is.
func keyLabel(k ui.Key) string {
	switch k {
	case ui.KeyEnter:
		return "OK"
	case ui.KeyCancel:
		return "X"
	case ui.KeyClear:
		return "C"
	}
	return string(k)
}

// maskLines masks, in lines from the flow, any run of 16 to 19 digits as a
// PAN. The flow sends masked numbers only; this is the second line of
// defence. It leaves 15-digit MIDs and shorter numbers alone, since UnionPay
// card numbers are 16 to 19 digits long.
func maskLines(lines []string) []string {
	out := make([]string, len(lines))
	for i, l := range lines {
		out[i] = maskRuns(l)
	}
	return out
}

func maskRuns(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		j := i
		for j < len(s) && s[j] >= '0' && s[j] <= '9' {
			j++
		}
		switch {
		case j == i:
			b.WriteByte(s[i])
			i++
			continue
		case j-i >= 16 && j-i <= 19:
			b.WriteString(pan.Mask(s[i:j]))
		case j-i > 19:
			b.WriteString(strings.Repeat("*", j-i))
		default:
			b.WriteString(s[i:j])
		}
		i = j
	}
	return b.String()
}
