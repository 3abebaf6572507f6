package provisioning

import (
	"context"
	"errors"
	"fmt"
	"time"
)

func (f *Flow) selftest(ctx context.Context, cp *Checkpoint) error {
	f.show(ctx, Screen{Title: "自检 SELF TEST", Lines: []string{"检查设备 Checking devices"}})
	// A clock that lost its time (an RTC without battery reads 1970) no
	// longer stops the install: the flow's clock is floored (FloorClock)
	// and set from the host at sign-on; the log says which it runs on.
	if now, src := f.clock().Read(); src != ClockNTP && src != ClockSystem {
		f.Log.Warn("system clock behind the floor; running on the floor until sign-on", "source", src, "now", now.UTC().Format(time.RFC3339),
			"system", f.clock().System.Now().UTC().Format(time.RFC3339))
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
	if err := f.Host.Echo(ctx, f.term(cp)); err != nil {
		return stepErr("E_NETWORK", err)
	}
	return nil
}

func (f *Flow) parameters(ctx context.Context, cp *Checkpoint) error {
	f.show(ctx, Screen{Title: "参数 PARAMETERS", Lines: []string{"下载终端参数 Loading parameters"}})
	t := f.term(cp)
	m, err := f.Params.Parameters(ctx, t)
	if err != nil {
		return stepErr(codeOf(err, "E_PARAMETERS"), err)
	}
	if m.MID != t.MID {
		return stepErr("E_MID_MISMATCH", nil, m.MID, t.MID)
	}
	if m.CardType != Debit && m.CardType != Credit {
		return stepErr("E_PARAMETERS_DATA", fmt.Errorf("merchant record has card type %q", m.CardType))
	}
	if m.TestAmount > 0 && m.TestAmount != f.Amount {
		if err := f.confirmAmount(ctx, m.TestAmount); err != nil {
			return err
		}
	}
	cp.Merchant = &m
	return nil
}

// DefaultMaxTestAmount caps a test sale amount the merchant record asks
// for: RMB 1.00. A test sale is voided at once, but until then it is a real
// charge on a real card.
const DefaultMaxTestAmount = 100

// confirmAmount checks a test-sale amount the merchant record (central's
// ticket) asks for against the cap, and has the installer confirm it: the
// merchant's card is about to be charged that much.
func (f *Flow) confirmAmount(ctx context.Context, amount int64) error {
	limit := f.MaxTestAmount
	if limit <= 0 {
		limit = DefaultMaxTestAmount
	}
	if amount > limit {
		return stepErr("E_TEST_AMOUNT", nil, FormatRMB(amount), FormatRMB(limit))
	}
	choice, err := f.UI.Ask(ctx, Screen{Title: "测试金额 TEST AMOUNT", Lines: []string{
		"中心要求的测试交易金额", "Central asks a test sale of", FormatRMB(amount),
	}}, Option{ID: "confirm", Key: "ENTER", Label: "确认 Confirm"}, Option{ID: "cancel", Key: "CANCEL", Label: "取消 Cancel"})
	if err != nil {
		return &promptError{err}
	}
	if choice != "confirm" {
		return stepErr("E_AMOUNT_NOT_CONFIRMED", nil, FormatRMB(amount))
	}
	return nil
}

func (f *Flow) nextSTAN(cp *Checkpoint) int {
	// 11 is six digits; 000000 is not a valid STAN.
	cp.STAN = cp.STAN%999999 + 1
	return cp.STAN
}

func (f *Flow) signOn(ctx context.Context, cp *Checkpoint) error {
	f.show(ctx, Screen{Title: "签到 SIGN-ON", Lines: []string{"终端签到 Signing on"}})
	return f.signOnOnce(ctx, cp)
}

// signOnOnce sends one sign-on and keeps what it established. It also runs
// before a financial message when the keys went stale (an answer failed its
// MAC check): the batch of a message in flight stays its own.
func (f *Flow) signOnOnce(ctx context.Context, cp *Checkpoint) error {
	// No sign-on without a TMK: one the host link downloads comes first.
	if err := f.ensureTMK(ctx, cp); err != nil {
		return err
	}
	stan := f.nextSTAN(cp)
	if err := f.save(cp); err != nil {
		return err
	}
	hctx, cancel := f.hostCtx(ctx, cp)
	defer cancel()
	sent := f.clock().System.Now()
	res, err := f.Host.SignOn(hctx, SignOnRequest{Terminal: f.term(cp), STAN: stan, Batch: signOnBatch(cp)})
	if err != nil {
		return stepErr(codeOf(err, "E_SIGNON"), err)
	}
	if res.RC != "00" {
		return stepErr("E_SIGNON_DECLINED", nil, res.RC)
	}
	if !res.KeysOK {
		return stepErr("E_KEY_CHECK", nil)
	}
	f.hostTime(cp, res, sent)
	cp.SignOn = &SignOnRecord{Batch: res.Batch, KeysOK: true, HostTime: res.HostTime.UTC()}
	cp.KeysStale = false
	// Any sign-on is the one a host asked for.
	cp.served(DemandSignOn)
	f.noteDemand(cp, res.Demand, "sign-on")
	return f.save(cp)
}

// signOnBatch is 60.2 of a sign-on: the terminal's current batch, the one
// after the settled test batch once that is closed, and zeros before the
// first sign-on (the host then names it).
func signOnBatch(cp *Checkpoint) string {
	switch {
	case cp.Settlement != nil && cp.Settlement.Done && cp.Business == nil:
		return cp.Settlement.NextBatch
	case cp.SignOn != nil:
		return cp.SignOn.Batch
	}
	return ""
}

// hostTime sets the flow's clock from a sign-on answer the flow can
// believe (SignOnResult.Integrity), read about when the request left at
// the system clock's sent; the checkpoint keeps it for a restart.
func (f *Flow) hostTime(cp *Checkpoint, res SignOnResult, sent time.Time) {
	if res.Integrity != IntegrityAuthentic || res.HostTime.IsZero() {
		return
	}
	f.clock().SetHost(res.HostTime, sent)
	cp.Clock = &ClockRecord{HostTime: res.HostTime.UTC(), SystemAt: sent.Round(0).UTC()}
	f.Log.Info("clock set from the host", "time", res.HostTime.UTC().Format(time.RFC3339))
}

func (f *Flow) bindCard(ctx context.Context, cp *Checkpoint) error {
	if cp.Merchant == nil {
		return stepErr("E_STATE", nil, Text{"缺少商户参数", "no merchant record"})
	}
	f.show(ctx, Screen{Title: "绑定结算卡 BIND CARD", Lines: []string{"请插入商户结算卡", "Insert the settlement card"}})
	card, err := f.Card.ReadCard(ctx, f.cardRequest(PurposeBind, 0))
	if err != nil {
		return stepErr("E_CARD_READ", err)
	}
	if err := f.Rules.Check(card, *cp.Merchant, f.now()); err != nil {
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

// reverse is the step route enters whenever a message is unsettled: nothing
// new goes online while an earlier one is. Messages an operator must clear
// stop it; the message in flight is reversed; stale keys are renewed first,
// since the reversal is MACed.
func (f *Flow) reverse(ctx context.Context, cp *Checkpoint) error {
	if len(cp.Unreversed) > 0 {
		return f.operatorStop(cp.Unreversed[0])
	}
	if cp.InFlight == nil {
		return nil
	}
	if err := f.ensureKeys(ctx, cp); err != nil {
		return err
	}
	return f.reverseInFlight(ctx, cp)
}

// ensureKeys signs on again before an online message when an earlier
// answer failed its MAC check (KeysStale): the working keys may be out of
// step with the host's, and every message after would fail the same way.
func (f *Flow) ensureKeys(ctx context.Context, cp *Checkpoint) error {
	if !cp.KeysStale {
		return nil
	}
	return f.signOnOnce(ctx, cp)
}

// unsettled refuses a financial message while another is unsettled. route
// never runs a sale or void then; this is the last line of defence.
func unsettled(cp *Checkpoint) error {
	if cp.InFlight != nil || len(cp.Unreversed) > 0 {
		return stepErr("E_STATE", nil, Text{"有未结清的交易", "a message is unsettled"})
	}
	return nil
}

// operatorStop is the failure for a message only the acquirer can settle.
func (f *Flow) operatorStop(u ReversalNote) error {
	return stepErr("E_REVERSAL_LIMIT", nil, kindText(u.Kind), u.STAN, u.Batch, u.Masked, FormatRMB(u.Amount), u.Attempts)
}

// reverseInFlight sends the reversal for a message whose outcome the
// terminal does not know. After MaxReversals tries that may have reached the
// host it gives up: the message moves to Unreversed (masked, its sealed PAN
// purged) and the flow stops for an operator with E_REVERSAL_LIMIT. That is
// final: no financial message goes out until an operator, after the
// acquirer cancelled it by hand, clears it.
func (f *Flow) reverseInFlight(ctx context.Context, cp *Checkpoint) error {
	if cp.InFlight == nil {
		return nil
	}
	limit := f.maxReversals(cp)
	if cp.InFlight.Attempts >= limit {
		return f.holdForOperator(cp, "E_REVERSAL_LIMIT")
	}
	// Counted before the send: a crash inside it uses up a try as well, or
	// a host that hangs the terminal would be retried for ever. A try that
	// provably never left the terminal is given back below.
	cp.InFlight.Attempts++
	if err := f.save(cp); err != nil {
		return err
	}
	orig := *cp.InFlight
	reason := orig.Reason
	if reason == "" {
		reason = "98"
	}
	req := ReversalRequest{Terminal: f.term(cp), Orig: orig, Reason: reason}
	if len(orig.SealedPAN) > 0 {
		if s := f.sealer(); s != nil {
			p, err := s.OpenPAN(orig.SealedPAN, sealContext(f.term(cp), orig))
			if err == nil {
				req.PAN = p
			} else {
				// Matching is by terminal, batch and STAN: a reversal without
				// field 2 is better than one never sent.
				f.Log.Warn("sealed PAN does not open; reversing without field 2", "stan", orig.STAN, "err", err)
			}
		}
	}
	hctx, cancel := f.hostCtx(ctx, cp)
	defer cancel()
	resp, err := f.Host.Reverse(hctx, req)
	if err != nil {
		if errors.Is(err, ErrNotSent) {
			cp.InFlight.Attempts--
			if serr := f.save(cp); serr != nil {
				return serr
			}
		}
		if errors.Is(err, ErrResponseMAC) {
			cp.KeysStale = true
			if serr := f.save(cp); serr != nil {
				return serr
			}
		}
		return stepErr("E_REVERSAL", err, kindText(orig.Kind), orig.STAN, cp.InFlight.Attempts, limit)
	}
	if resp.Integrity != IntegrityNone {
		f.noteDemand(cp, resp.Demand, "reversal")
	}
	if !reversalFinal(resp) {
		if resp.Integrity == IntegrityNone || resp.RC == "A0" {
			cp.KeysStale = true
			if serr := f.save(cp); serr != nil {
				return serr
			}
		}
		return stepErr("E_REVERSAL", fmt.Errorf("host answered the reversal with response code %s (integrity %q)", resp.RC, resp.Integrity),
			kindText(orig.Kind), orig.STAN, orig.Attempts, limit)
	}
	cp.Reversed = append(cp.Reversed, ReversalNote{Kind: orig.Kind, STAN: orig.STAN})
	cp.InFlight = nil
	return f.save(cp)
}

// undoSale handles a void the host cannot match to the sale: 25, it has no
// such sale (its record differs from ours — an RRN rewritten on the way),
// or 94, a void of it is booked already. Voiding again would get the same
// answer for ever. The sale itself is reversed instead, matched by terminal,
// batch and STAN as reversals are, and the test sale is done again. The
// void's own image is dropped, not reversed: if the host did book it, the
// sale is cancelled and the reversal finds nothing to undo, while reversing
// the void would charge the card again behind the terminal's back.
func (f *Flow) undoSale(cp *Checkpoint, card Card, rc string) error {
	sale := *cp.Sale
	t := f.term(cp)
	inf, err := f.inFlight(t, "sale", sale.STAN, sale.Batch, sale.Amount, card, false)
	if err != nil {
		return err
	}
	inf.Entry, inf.Reason, inf.PIN = sale.Entry, "06", sale.PIN
	inf.Expiry, inf.AuthCode = sale.Expiry, sale.AuthCode
	if ic := sale.IC; ic != nil {
		inf.Seq, inf.IC = ic.CSN, ic.Reversal
	}
	cp.InFlight, cp.Sale, cp.Slip, cp.Void, cp.VoidSlip = inf, nil, nil, nil, nil
	cp.Undone = append(cp.Undone, ReversalNote{Kind: "sale", STAN: sale.STAN, Batch: sale.Batch, Amount: sale.Amount,
		Masked: sale.Masked, Code: "E_VOID_UNMATCHED"})
	// The retry belongs to the test sale: its reversal goes first.
	cp.Step = StepTestSale
	if err := f.save(cp); err != nil {
		return err
	}
	return stepErr("E_VOID_UNMATCHED", nil, rc, sale.STAN)
}

// holdForOperator moves the message in flight to Unreversed for the
// acquirer to settle by hand, and stops the step with code.
func (f *Flow) holdForOperator(cp *Checkpoint, code string) error {
	orig := *cp.InFlight
	u := ReversalNote{Kind: orig.Kind, STAN: orig.STAN, Batch: orig.Batch, Amount: orig.Amount, Masked: orig.Masked,
		Attempts: orig.Attempts, State: "operator", Code: code}
	cp.Unreversed = append(cp.Unreversed, u)
	cp.InFlight = nil
	if err := f.save(cp); err != nil {
		return err
	}
	return f.operatorStop(u)
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

// sealContext is what a sealed PAN is bound to: a seal copied into another
// message's record does not open there.
func sealContext(t Terminal, inf InFlight) []byte {
	return fmt.Appendf(nil, "posagent pan seal v1|%s|%s|%s|%06d|%s", t.TID, t.MID, inf.Batch, inf.STAN, inf.Kind)
}

// inFlight is the reversal image of a message about to go out. The PAN is
// kept only sealed. A sealer that fails stops the step before anything is
// sent: nothing has reached the host yet, and a broken sealer should be seen
// by the installer rather than quietly produce reversals without field 2.
func (f *Flow) inFlight(t Terminal, kind string, stan int, batch string, amount int64, c Card, pin bool) (*InFlight, error) {
	inf := &InFlight{Kind: kind, STAN: stan, Batch: batch, Amount: amount, Masked: c.PAN.Masked(), Entry: c.Entry, PIN: pin}
	if s := f.sealer(); s != nil && !c.PAN.IsZero() {
		sealed, err := s.SealPAN(c.PAN, sealContext(t, *inf))
		if err != nil {
			return nil, stepErr("E_SEAL", err)
		}
		inf.SealedPAN = sealed
	}
	return inf, nil
}

// send runs one sale or void under the reversal discipline: its reversal
// image is durable before the request leaves, and the money rule (judge)
// decides from the answer whether it may be forgotten. It returns the
// answer when it approved, and otherwise the step's error with the image
// kept wherever the host may have acted.
func (f *Flow) send(ctx context.Context, cp *Checkpoint, inf *InFlight, exchange func() (HostResponse, error)) (HostResponse, error) {
	cp.InFlight = inf
	if err := f.save(cp); err != nil {
		return HostResponse{}, err
	}
	resp, err := exchange()
	if err != nil {
		switch {
		case errors.Is(err, ErrNotSent):
			// The host cannot have seen it: nothing to reverse.
			cp.InFlight = nil
			if serr := f.save(cp); serr != nil {
				return HostResponse{}, serr
			}
			return HostResponse{}, stepErr("E_NETWORK", err)
		case errors.Is(err, ErrResponseMAC):
			cp.InFlight.Reason, cp.KeysStale = "A0", true
			if serr := f.save(cp); serr != nil {
				return HostResponse{}, serr
			}
			return HostResponse{}, stepErr("E_MAC", err, kindText(inf.Kind))
		case errors.Is(err, ErrMismatch):
			cp.InFlight.Reason = "96"
			if serr := f.save(cp); serr != nil {
				return HostResponse{}, serr
			}
			return HostResponse{}, stepErr("E_HOST_ANSWER", err, kindText(inf.Kind))
		}
		return HostResponse{}, stepErr("E_HOST", err, kindText(inf.Kind))
	}
	if resp.Integrity != IntegrityNone {
		// Saved with the record or the reversal image below: a demand in
		// the sale's answer runs before the void even after a power cut.
		f.noteDemand(cp, resp.Demand, inf.Kind)
	}
	if resp.RC == "A0" {
		// The host says our MAC failed: its keys and ours are out of step.
		cp.KeysStale = true
	}
	out, reason := f.judge(resp)
	switch out {
	case approved:
		cp.InFlight = nil // the caller saves the record at once
		return resp, nil
	case declined:
		cp.InFlight = nil
		if err := f.save(cp); err != nil {
			return HostResponse{}, err
		}
		return HostResponse{}, stepErr("E_DECLINED", nil, kindText(inf.Kind), resp.RC)
	case declinedUnproven:
		cp.InFlight.Reason = reason
		if err := f.save(cp); err != nil {
			return HostResponse{}, err
		}
		return HostResponse{}, stepErr("E_DECLINED", fmt.Errorf("declined %s under a forgeable MAC: reversing it anyway", resp.RC),
			kindText(inf.Kind), resp.RC)
	}
	cp.InFlight.Reason = reason
	if resp.Integrity == IntegrityNone {
		cp.KeysStale = true
	}
	if err := f.save(cp); err != nil {
		return HostResponse{}, err
	}
	if resp.Integrity == IntegrityNone {
		return HostResponse{}, stepErr("E_MAC", fmt.Errorf("answer %s without a MAC that verifies", resp.RC), kindText(inf.Kind))
	}
	return HostResponse{}, stepErr("E_HOST_ANSWER", fmt.Errorf("answer %s settles nothing", resp.RC), kindText(inf.Kind))
}

func (f *Flow) testSale(ctx context.Context, cp *Checkpoint) error {
	if cp.SignOn == nil || cp.Card == nil || cp.Merchant == nil {
		return stepErr("E_STATE", nil, Text{"须先签到并绑定结算卡", "sign-on and card binding must come first"})
	}
	if err := unsettled(cp); err != nil {
		return err
	}
	if cp.Sale == nil {
		d, err := f.chipReady(cp)
		if err != nil {
			return err
		}
		if err := f.ensureKeys(ctx, cp); err != nil {
			return err
		}
		amount := cp.SaleAmount(f.Amount)
		f.show(ctx, Screen{Title: "测试交易 TEST SALE", Lines: []string{"金额 " + FormatRMB(amount), "请插卡 Insert card"}})
		pay, err := f.Card.Pay(ctx, CardRequest{Purpose: PurposeTestSale, Amount: amount, Apps: d.Apps, CAPKs: d.CAPKs})
		if err != nil {
			return stepErr(codeOf(err, "E_CARD_READ"), err)
		}
		defer pay.Close()
		return f.sale(ctx, cp, pay, amount)
	}
	return nil
}

// sale sends the test sale the card has signed and finishes it on the card.
// The reversal image is durable before the request leaves (send), and stays
// durable until the card has accepted the host's approval: an approval the
// card refuses (AAC), a card pulled out before it answered, or a power cut
// in between each leave the sale to be reversed, never charged next to its
// retry.
func (f *Flow) sale(ctx context.Context, cp *Checkpoint, pay Payment, amount int64) error {
	card, pin := pay.Card(), pay.PINBlock()
	t := f.term(cp)
	req := SaleRequest{Terminal: t, STAN: f.nextSTAN(cp), Batch: cp.SignOn.Batch, Amount: amount, Card: card, PINBlock: pin, Test: true}
	inf, err := f.inFlight(t, "sale", req.STAN, req.Batch, req.Amount, card, len(pin) > 0)
	if err != nil {
		return err
	}
	inf.Expiry, inf.Seq, inf.IC = card.Expiry, card.Seq, card.ICReversal
	hctx, cancel := f.hostCtx(ctx, cp)
	defer cancel()
	var answer HostResponse
	answered := false
	resp, err := f.send(ctx, cp, inf, func() (HostResponse, error) {
		r, err := f.Host.Sale(hctx, req)
		answer, answered = r, err == nil
		return r, err
	})
	if err != nil {
		// Not approved: the card ends its transaction with an AAC. What the
		// host may have done is the reversal image's business, kept or
		// dropped by send as the money rule said.
		f.tellCard(ctx, pay, answer, answered)
		return err
	}
	// Approved by the host, not yet by the card: until the card answers,
	// the image stays with reason 96 (the terminal could not finish), so a
	// power cut here reverses the sale on restart.
	inf.Reason, inf.AuthCode = "96", resp.AuthCode
	cp.InFlight = inf
	if err := f.save(cp); err != nil {
		return err
	}
	verdict, err := pay.Complete(ctx, HostVerdict{Online: true, Approved: true, RC: resp.RC, IssuerData: resp.ICData})
	if err != nil || !verdict.Approved {
		// The card did not accept the approval: reversed with reason 06,
		// its IC reversal data as the card last gave it (DF31 when scripts
		// ran).
		cp.InFlight.Reason = "06"
		if verdict.IC != nil && verdict.IC.Reversal != "" {
			cp.InFlight.IC = verdict.IC.Reversal
		}
		if serr := f.save(cp); serr != nil {
			return serr
		}
		switch {
		case errors.Is(err, ErrCardRemoved):
			return stepErr("E_CARD_REMOVED", err, kindText("sale"))
		case err != nil:
			return stepErr("E_CARD_COMPLETION", err, kindText("sale"))
		}
		return stepErr("E_CARD_DECLINED", nil, kindText("sale"))
	}
	cp.InFlight = nil
	cp.Sale = &TxnRecord{STAN: req.STAN, Batch: req.Batch, Entry: card.Entry, Amount: req.Amount, RC: resp.RC, RRN: resp.RRN,
		AuthCode: resp.AuthCode, Time: f.stamp(resp.Time),
		Masked: card.PAN.Masked(), SealedPAN: inf.SealedPAN, AID: card.AID, Label: card.Label, Expiry: card.Expiry,
		Issuer: resp.Issuer, Acquirer: resp.Acquirer, IC: verdict.IC, PIN: len(pin) > 0}
	return f.save(cp)
}

// tellCard ends the card's transaction after an answer that approved
// nothing: an AAC, with the host's decline as the authorisation response
// code when an answer that counts came, else "unable to go online". The
// card's verdict changes nothing (no approval to take back); an error is
// logged only.
func (f *Flow) tellCard(ctx context.Context, pay Payment, answer HostResponse, answered bool) {
	v := HostVerdict{}
	if answered && answer.Integrity != IntegrityNone {
		v = HostVerdict{Online: true, RC: answer.RC, IssuerData: answer.ICData}
	}
	if _, err := pay.Complete(ctx, v); err != nil {
		f.Log.Warn("the card did not finish the declined transaction", "err", err)
	}
}

// printSlip prints the test sale's slip once; an attempt that may have printed
// before a crash or a printer fault makes the next one a marked duplicate.
func (f *Flow) printSlip(ctx context.Context, cp *Checkpoint) error {
	if cp.Sale == nil {
		return stepErr("E_STATE", nil, Text{"没有测试交易", "no test sale"})
	}
	return f.printTxn(ctx, cp, &cp.Slip, *cp.Sale, "sale")
}

// printVoidSlip prints the void's slip once, under the same rule, counted
// in a record of its own: the sale's slip printed says nothing about it.
func (f *Flow) printVoidSlip(ctx context.Context, cp *Checkpoint) error {
	if cp.Void == nil {
		return stepErr("E_STATE", nil, Text{"没有撤销交易", "no void"})
	}
	return f.printTxn(ctx, cp, &cp.VoidSlip, *cp.Void, "void")
}

// printTxn prints txn's slip unless *rec says it printed. The attempt is
// counted on disk before the printer is called, so an attempt a crash or a
// fault cut short makes the next one a duplicate.
func (f *Flow) printTxn(ctx context.Context, cp *Checkpoint, rec **SlipRecord, txn TxnRecord, kind string) error {
	if *rec == nil {
		*rec = &SlipRecord{}
	}
	slip := *rec
	if slip.Printed {
		return nil
	}
	slip.Attempts++
	if err := f.save(cp); err != nil {
		return err
	}
	m := *cp.Merchant
	if tp := cp.TermParams; tp != nil && tp.MerchantName != "" {
		// The acquirer's name for the merchant, downloaded: the slip says
		// what the acquirer's statement will.
		m.Name = tp.MerchantName
	}
	r := Receipt{Merchant: m, Terminal: f.term(cp), Txn: txn,
		Kind: kind, Test: true, Duplicate: slip.Attempts > 1}
	if err := f.Printer.PrintReceipt(ctx, r); err != nil {
		return stepErr(codeOf(err, "E_PRINTER"), err)
	}
	slip.Printed = true
	return f.save(cp)
}

func (f *Flow) void(ctx context.Context, cp *Checkpoint) error {
	if cp.Sale == nil {
		return stepErr("E_STATE", nil, Text{"没有可撤销的测试交易", "no test sale to void"})
	}
	if err := unsettled(cp); err != nil {
		return err
	}
	if cp.Void != nil {
		return nil
	}
	if err := f.ensureKeys(ctx, cp); err != nil {
		return err
	}
	f.show(ctx, Screen{Title: "撤销 VOID", Lines: []string{"撤销测试交易 Voiding the test sale", "请插卡 Insert card"}})
	card, err := f.Card.ReadCard(ctx, f.cardRequest(PurposeVoid, 0))
	if err != nil {
		return stepErr("E_CARD_READ", err)
	}
	if card.PAN.Masked() != cp.Sale.Masked {
		return stepErr("E_WRONG_CARD", nil, cp.Sale.Masked)
	}
	t := f.term(cp)
	req := VoidRequest{Terminal: t, STAN: f.nextSTAN(cp), Batch: cp.Sale.Batch, Card: card, Orig: *cp.Sale}
	inf, err := f.inFlight(t, "void", req.STAN, req.Batch, cp.Sale.Amount, card, len(req.PINBlock) > 0)
	if err != nil {
		return err
	}
	inf.OrigSTAN = cp.Sale.STAN
	inf.Expiry, inf.Seq = card.Expiry, card.Seq
	var verdict HostResponse
	hctx, cancel := f.hostCtx(ctx, cp)
	defer cancel()
	resp, err := f.send(ctx, cp, inf, func() (HostResponse, error) {
		r, err := f.Host.Void(hctx, req)
		verdict = r
		return r, err
	})
	if err != nil {
		if verdict.Integrity != IntegrityNone && (verdict.RC == "25" || verdict.RC == "94") {
			return f.undoSale(cp, card, verdict.RC)
		}
		return err
	}
	// Saved before anything else: a power cut now must not reverse an
	// approved void and void again.
	cp.Void = &TxnRecord{STAN: req.STAN, Batch: req.Batch, Entry: card.Entry, Amount: cp.Sale.Amount, RC: resp.RC, RRN: resp.RRN,
		AuthCode: resp.AuthCode, Time: f.stamp(resp.Time),
		Masked: card.PAN.Masked(), AID: card.AID, Label: card.Label, Expiry: card.Expiry,
		Issuer: resp.Issuer, Acquirer: resp.Acquirer, OrigSTAN: cp.Sale.STAN, OrigRRN: cp.Sale.RRN}
	return f.save(cp)
}
