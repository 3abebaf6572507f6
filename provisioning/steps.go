package provisioning

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// earliestClock is a date the terminal's clock cannot be before: a terminal that
// lost its RTC would stamp slips and expiry checks with 1970.
var earliestClock = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

func (f *Flow) selftest(ctx context.Context, cp *Checkpoint) error {
	f.show(ctx, Screen{Title: "自检 SELF TEST", Lines: []string{"检查设备 Checking devices"}})
	if now := f.Clock.Now(); now.Before(earliestClock) {
		return stepErr("E_CLOCK", fmt.Errorf("clock reads %s", now.UTC().Format(time.RFC3339)))
	}
	devices := []struct {
		name Text
		dev  any
	}{{Text{"读卡器", "card reader"}, f.Card}, {Text{"打印机", "printer"}, f.Printer}, {Text{"主机链路", "host link"}, f.Host}}
	for _, d := range devices {
		if st, ok := d.dev.(SelfTester); ok {
			if err := st.SelfTest(ctx); err != nil {
				return stepErr("E_SELFTEST", err, d.name)
			}
		}
	}
	return nil
}

func (f *Flow) network(ctx context.Context, cp *Checkpoint) error {
	f.show(ctx, Screen{Title: "网络 NETWORK", Lines: []string{"连接收单主机 Reaching the host"}})
	if err := f.Host.Echo(ctx, f.Terminal); err != nil {
		return stepErr("E_NETWORK", err)
	}
	return nil
}

func (f *Flow) parameters(ctx context.Context, cp *Checkpoint) error {
	f.show(ctx, Screen{Title: "参数 PARAMETERS", Lines: []string{"下载终端参数 Loading parameters"}})
	m, err := f.Params.Parameters(ctx, f.Terminal)
	if err != nil {
		return stepErr("E_PARAMETERS", err)
	}
	if m.MID != f.Terminal.MID {
		return stepErr("E_MID_MISMATCH", nil, m.MID, f.Terminal.MID)
	}
	if m.CardType != Debit && m.CardType != Credit {
		return stepErr("E_PARAMETERS_DATA", fmt.Errorf("merchant record has card type %q", m.CardType))
	}
	cp.Merchant = &m
	return nil
}

func (f *Flow) nextSTAN(cp *Checkpoint) int {
	// 11 is six digits; 000000 is not a valid STAN.
	cp.STAN = cp.STAN%999999 + 1
	return cp.STAN
}

func (f *Flow) signOn(ctx context.Context, cp *Checkpoint) error {
	f.show(ctx, Screen{Title: "签到 SIGN-ON", Lines: []string{"终端签到 Signing on"}})
	stan := f.nextSTAN(cp)
	if err := f.save(cp); err != nil {
		return err
	}
	res, err := f.Host.SignOn(ctx, SignOnRequest{Terminal: f.Terminal, STAN: stan})
	if err != nil {
		return stepErr("E_SIGNON", err)
	}
	if res.RC != "00" {
		return stepErr("E_SIGNON_DECLINED", nil, res.RC)
	}
	if !res.KeysOK {
		return stepErr("E_KEY_CHECK", nil)
	}
	cp.SignOn = &SignOnRecord{Batch: res.Batch, KeysOK: true, HostTime: res.HostTime.UTC()}
	return nil
}

func (f *Flow) bindCard(ctx context.Context, cp *Checkpoint) error {
	if cp.Merchant == nil {
		return stepErr("E_STATE", nil, Text{"缺少商户参数", "no merchant record"})
	}
	f.show(ctx, Screen{Title: "绑定结算卡 BIND CARD", Lines: []string{"请插入商户结算卡", "Insert the settlement card"}})
	card, err := f.Card.ReadCard(ctx, PurposeBind)
	if err != nil {
		return stepErr("E_CARD_READ", err)
	}
	if err := f.Rules.Check(card, *cp.Merchant, f.Clock.Now()); err != nil {
		return err
	}
	choice, err := f.UI.Ask(ctx, Screen{Title: "确认结算卡 CONFIRM CARD", Lines: []string{
		card.PAN.Masked(), card.Name, string(CardTypeOf(card)) + " " + card.Label,
	}}, Option{ID: "confirm", Key: "ENTER", Label: "确认 Confirm"}, Option{ID: "cancel", Key: "CANCEL", Label: "取消 Cancel"})
	if err != nil {
		return &promptError{err}
	}
	if choice != "confirm" {
		return stepErr("E_NOT_CONFIRMED", nil)
	}
	cp.Card = &BoundCard{Masked: card.PAN.Masked(), Name: card.Name, Type: CardTypeOf(card),
		AID: card.AID, Label: card.Label, Expiry: card.Expiry}
	return nil
}

// reverseInFlight sends the reversal for a message whose answer was never
// recorded. It runs before anything else goes online, so a sale that reached
// the host before a crash can never stay charged next to its retry. After
// MaxReversals tries it gives up: the message is moved to Unreversed (masked,
// its sealed PAN purged) and the step fails with E_REVERSAL_LIMIT, so that
// monitoring and the installer learn the acquirer must cancel it by hand.
func (f *Flow) reverseInFlight(ctx context.Context, cp *Checkpoint) error {
	if cp.InFlight == nil {
		return nil
	}
	limit := f.MaxReversals
	if limit <= 0 {
		limit = 3
	}
	if cp.InFlight.Attempts >= limit {
		orig := *cp.InFlight
		cp.Unreversed = append(cp.Unreversed, ReversalNote{Kind: orig.Kind, STAN: orig.STAN, Batch: orig.Batch,
			Amount: orig.Amount, Masked: orig.Masked, Attempts: orig.Attempts})
		cp.InFlight = nil
		if err := f.save(cp); err != nil {
			return err
		}
		return stepErr("E_REVERSAL_LIMIT", nil, kindText(orig.Kind), orig.STAN, orig.Batch, orig.Masked,
			rmb(orig.Amount), orig.Attempts)
	}
	// Counted before the send: a crash inside it must use up a try as well,
	// or a host that hangs the terminal would be retried for ever.
	cp.InFlight.Attempts++
	if err := f.save(cp); err != nil {
		return err
	}
	orig := *cp.InFlight
	reason := orig.Reason
	if reason == "" {
		reason = "98"
	}
	req := ReversalRequest{Terminal: f.Terminal, Orig: orig, Reason: reason}
	if len(orig.SealedPAN) > 0 {
		if s := f.sealer(); s != nil {
			p, err := s.OpenPAN(orig.SealedPAN)
			if err == nil {
				req.PAN = p
			} else {
				// Matching is by terminal, batch and STAN: a reversal without
				// field 2 is better than one never sent.
				f.Log.Warn("sealed PAN does not open; reversing without field 2", "stan", orig.STAN, "err", err)
			}
		}
	}
	resp, err := f.Host.Reverse(ctx, req)
	if err != nil {
		return stepErr("E_REVERSAL", err, kindText(orig.Kind), orig.STAN, orig.Attempts, limit)
	}
	// A host answers 25 ("original not found") when the message never arrived:
	// nothing to undo, and as final as 00.
	if resp.RC != "00" && resp.RC != "25" {
		return stepErr("E_REVERSAL", fmt.Errorf("host answered the reversal with response code %s", resp.RC),
			kindText(orig.Kind), orig.STAN, orig.Attempts, limit)
	}
	cp.Reversed = append(cp.Reversed, ReversalNote{Kind: orig.Kind, STAN: orig.STAN})
	cp.InFlight = nil
	return f.save(cp)
}

// sealer is Flow.Sealer, or the host when it can seal.
func (f *Flow) sealer() PANSealer {
	if f.Sealer != nil {
		return f.Sealer
	}
	if s, ok := f.Host.(PANSealer); ok {
		return s
	}
	return nil
}

// inFlight is the reversal image of a message about to go out. The PAN is
// kept only sealed. A sealer that fails stops the step before anything is
// sent: nothing has reached the host yet, and a broken sealer should be seen
// by the installer rather than quietly produce reversals without field 2.
func (f *Flow) inFlight(kind string, stan int, batch string, amount int64, c Card, pin bool) (*InFlight, error) {
	inf := &InFlight{Kind: kind, STAN: stan, Batch: batch, Amount: amount, Masked: c.PAN.Masked(), Entry: c.Entry, PIN: pin}
	if s := f.sealer(); s != nil && !c.PAN.IsZero() {
		sealed, err := s.SealPAN(c.PAN)
		if err != nil {
			return nil, stepErr("E_SEAL", err)
		}
		inf.SealedPAN = sealed
	}
	return inf, nil
}

func (f *Flow) testSale(ctx context.Context, cp *Checkpoint) error {
	if cp.SignOn == nil || cp.Card == nil || cp.Merchant == nil {
		return stepErr("E_STATE", nil, Text{"须先签到并绑定结算卡", "sign-on and card binding must come first"})
	}
	if err := f.reverseInFlight(ctx, cp); err != nil {
		return err
	}
	if cp.Sale == nil {
		amount := cp.SaleAmount(f.Amount)
		f.show(ctx, Screen{Title: "测试交易 TEST SALE", Lines: []string{fmt.Sprintf("金额 RMB %d.%02d", amount/100, amount%100), "请插卡 Insert card"}})
		card, err := f.Card.ReadCard(ctx, PurposeTestSale)
		if err != nil {
			return stepErr("E_CARD_READ", err)
		}
		req := SaleRequest{Terminal: f.Terminal, STAN: f.nextSTAN(cp), Batch: cp.SignOn.Batch, Amount: amount, Card: card, Test: true}
		// The reversal image is durable before the request leaves.
		inf, err := f.inFlight("sale", req.STAN, req.Batch, req.Amount, card, len(req.PINBlock) > 0)
		if err != nil {
			return err
		}
		cp.InFlight = inf
		if err := f.save(cp); err != nil {
			return err
		}
		resp, err := f.Host.Sale(ctx, req)
		if err != nil {
			return f.unanswered(cp, "sale", err)
		}
		cp.InFlight = nil
		if resp.RC != "00" {
			if err := f.save(cp); err != nil {
				return err
			}
			return stepErr("E_DECLINED", nil, kindText("sale"), resp.RC)
		}
		cp.Sale = &TxnRecord{STAN: req.STAN, Batch: req.Batch, Amount: req.Amount, RC: resp.RC, RRN: resp.RRN,
			AuthCode: resp.AuthCode, Masked: card.PAN.Masked(), Time: resp.Time.UTC()}
		if err := f.save(cp); err != nil {
			return err
		}
	}
	return f.printSlip(ctx, cp)
}

// printSlip prints the test sale's slip once; an attempt that may have printed
// before a crash or a printer fault makes the next one a marked duplicate.
func (f *Flow) printSlip(ctx context.Context, cp *Checkpoint) error {
	if cp.Slip == nil {
		cp.Slip = &SlipRecord{}
	}
	if cp.Slip.Printed {
		return nil
	}
	cp.Slip.Attempts++
	if err := f.save(cp); err != nil {
		return err
	}
	r := Receipt{Merchant: *cp.Merchant, Terminal: f.Terminal, Card: *cp.Card, Txn: *cp.Sale,
		Kind: "sale", Test: true, Duplicate: cp.Slip.Attempts > 1}
	r.Card.Masked = cp.Sale.Masked
	if err := f.Printer.PrintReceipt(ctx, r); err != nil {
		// The driver's error says what to fix (paper end, cover open); it never
		// carries card data, so the installer sees it.
		return stepErr(codeOf(err, "E_PRINTER"), err)
	}
	cp.Slip.Printed = true
	return f.save(cp)
}

func (f *Flow) void(ctx context.Context, cp *Checkpoint) error {
	if cp.Sale == nil {
		return stepErr("E_STATE", nil, Text{"没有可撤销的测试交易", "no test sale to void"})
	}
	if err := f.reverseInFlight(ctx, cp); err != nil {
		return err
	}
	if cp.Void != nil {
		return nil
	}
	f.show(ctx, Screen{Title: "撤销 VOID", Lines: []string{"撤销测试交易 Voiding the test sale", "请插卡 Insert card"}})
	card, err := f.Card.ReadCard(ctx, PurposeVoid)
	if err != nil {
		return stepErr("E_CARD_READ", err)
	}
	if card.PAN.Masked() != cp.Sale.Masked {
		return stepErr("E_WRONG_CARD", nil, cp.Sale.Masked)
	}
	req := VoidRequest{Terminal: f.Terminal, STAN: f.nextSTAN(cp), Batch: cp.Sale.Batch, Card: card, Orig: *cp.Sale}
	inf, err := f.inFlight("void", req.STAN, req.Batch, cp.Sale.Amount, card, len(req.PINBlock) > 0)
	if err != nil {
		return err
	}
	inf.OrigSTAN = cp.Sale.STAN
	cp.InFlight = inf
	if err := f.save(cp); err != nil {
		return err
	}
	resp, err := f.Host.Void(ctx, req)
	if err != nil {
		return f.unanswered(cp, "void", err)
	}
	cp.InFlight = nil
	if resp.RC != "00" {
		if err := f.save(cp); err != nil {
			return err
		}
		return stepErr("E_DECLINED", nil, kindText("void"), resp.RC)
	}
	cp.Void = &TxnRecord{STAN: req.STAN, Batch: req.Batch, Amount: cp.Sale.Amount, RC: resp.RC, RRN: resp.RRN,
		AuthCode: resp.AuthCode, Masked: cp.Sale.Masked, Time: resp.Time.UTC()}
	return nil
}

// unanswered records why the in-flight message is to be reversed and returns
// the step's error. A bad response MAC is reason A0 and keeps its own code: the
// host may have approved, and the installer should know the keys are suspect.
func (f *Flow) unanswered(cp *Checkpoint, kind string, err error) error {
	if errors.Is(err, ErrResponseMAC) {
		cp.InFlight.Reason = "A0"
		if serr := f.save(cp); serr != nil {
			return serr
		}
		return stepErr("E_MAC", err, kindText(kind))
	}
	return stepErr("E_HOST", err, kindText(kind))
}

// kindText names a message kind for the installer.
func kindText(kind string) Text {
	switch kind {
	case "sale":
		return Text{"测试交易", "test sale"}
	case "void":
		return Text{"撤销交易", "void"}
	}
	return Text{kind, kind}
}

// rmb is an amount in fen as the slip prints it.
func rmb(fen int64) string { return fmt.Sprintf("RMB %d.%02d", fen/100, fen%100) }
