package installer

import (
	"context"
	"fmt"
	"strings"

	"github.com/posagent/posagent/agent/installer/ui"
	"github.com/posagent/posagent/provisioning"
)

// ErrPINCancelled is OnlinePIN's answer when the cardholder pressed CANCEL:
// the sale is abandoned, which is not a bypass (provisioning.ErrPINBypassed),
// since a bypass lets the card's CVM list go on to the next method.
var ErrPINCancelled = fmt.Errorf("installer: %w", provisioning.ErrPINCancelled)

// PINPad is a provisioning.PINPad on the installer's keypad and screen, for
// the demo and for terminals whose keypad is the only one: in the field a
// secure PIN pad takes its place. It reads keys as the prompter does, so
// it must be called from the goroutine that runs the flow (the chip
// kernel's cardholder verification is), never beside a prompt.
func (in *Installer) PINPad() provisioning.PINPad { return &pinPad{in: in} }

type pinPad struct{ in *Installer }

var _ provisioning.PINPad = (*pinPad)(nil)

// The PIN screen's texts.
const (
	pinTitle    = "请输入密码 ENTER PIN"
	pinFooter   = "OK确认 C删除 X取消"
	pinTooShort = "至少4位 Too short"
)

// OnlinePIN shows the amount and the masked card and takes the PIN: one
// '*' per digit, CLEAR deletes the last one, ENTER with 4 to 12 digits
// returns the format-0 block for r.PAN, ENTER with none is
// provisioning.ErrPINBypassed, CANCEL is ErrPINCancelled. ENTER with 1 to 3
// stays on the screen, saying so, and keeps them: clearing them would make
// a second ENTER a bypass the cardholder did not mean. Digits beyond 12
// are not taken.
//
// Waiting ends as the prompter's does: ErrIdle after Config.IdleTimeout
// without a key, ctx's error, or a *KeyError. The digits live in one
// buffer, zeroed on the way out; nothing here logs.
func (p *pinPad) OnlinePIN(ctx context.Context, r provisioning.PINRequest) (provisioning.PINBlock, error) {
	in := p.in
	typed := make([]byte, 0, provisioning.MaxPINLen)
	defer clear(typed[:cap(typed)])
	notice := ""
	for {
		// The entry line comes second, the notice on it: a four-row
		// display (title, two body rows, footer) still shows the amount
		// and what was typed, and loses only the card.
		entry := strings.Repeat("*", len(typed)) + "_"
		if notice != "" {
			entry += " " + notice
		}
		if err := in.draw(ctx, pinTitle,
			[]string{"金额 " + provisioning.FormatRMB(r.Amount), entry, "卡号 " + r.PAN.Masked()},
			[]string{pinFooter}); err != nil {
			return nil, err
		}
		notice = ""
		k, err := in.key(ctx, true)
		if err != nil {
			return nil, err
		}
		switch {
		case k == ui.KeyCancel:
			return nil, ErrPINCancelled
		case k == ui.KeyClear:
			if len(typed) > 0 {
				typed[len(typed)-1] = 0
				typed = typed[:len(typed)-1]
			}
		case isDigit(k):
			if len(typed) < provisioning.MaxPINLen {
				typed = append(typed, k[0])
			}
		case k == ui.KeyEnter && len(typed) == 0:
			return nil, provisioning.ErrPINBypassed
		case k == ui.KeyEnter && len(typed) < provisioning.MinPINLen:
			notice = pinTooShort
		case k == ui.KeyEnter:
			b, err := provisioning.FormatPINBlockDigits(typed, r.PAN)
			if err != nil {
				return nil, fmt.Errorf("installer: PIN pad: %w", err)
			}
			return b, nil
		}
	}
}
