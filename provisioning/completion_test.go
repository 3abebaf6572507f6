package provisioning_test

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/posagent/posagent/provisioning"
)

// fakeChip is a chip card's side of the payments: what each Complete was
// told, and what the card answers. It is the provisioning flow's view of a
// card only; the EMV kernel and the card simulator are tested against each
// other in agent/card/emv.
type fakeChip struct {
	// declineAfterApproval answers AAC to an approval; removed fails
	// Complete as a card pulled out; pin is the block the pad gave.
	declineAfterApproval bool
	removed              bool
	pin                  provisioning.PINBlock
	// scripts makes the card report issuer scripts run (DF31).
	scripts bool
	// onComplete, when set, runs before the card answers (a power cut
	// there returns its error).
	onComplete func() error

	payments  int
	verdicts  []provisioning.HostVerdict
	closed    int
	completed int
}

func (c *fakeChip) pay(card provisioning.Card) provisioning.Payment {
	c.payments++
	card.ICData = fmt.Sprintf("9F2608%016X", c.payments)
	card.ICReversal = "95050000000000" + "9F3602" + fmt.Sprintf("%04X", c.payments)
	card.IC = &provisioning.ICData{ARQC: fmt.Sprintf("%016X", c.payments), ATC: fmt.Sprintf("%04X", c.payments)}
	return &fakePayment{chip: c, card: card}
}

type fakePayment struct {
	chip *fakeChip
	card provisioning.Card
	done bool
}

func (p *fakePayment) Card() provisioning.Card         { return p.card }
func (p *fakePayment) PINBlock() provisioning.PINBlock { return p.chip.pin }
func (p *fakePayment) Close() error                    { p.chip.closed++; return nil }

func (p *fakePayment) Complete(ctx context.Context, v provisioning.HostVerdict) (provisioning.CardVerdict, error) {
	if p.done {
		return provisioning.CardVerdict{}, errors.New("fake chip: completed twice")
	}
	p.done = true
	c := p.chip
	c.verdicts = append(c.verdicts, v)
	if c.onComplete != nil {
		if err := c.onComplete(); err != nil {
			return provisioning.CardVerdict{}, err
		}
	}
	if c.removed {
		return provisioning.CardVerdict{}, fmt.Errorf("fake chip: %w", provisioning.ErrCardRemoved)
	}
	c.completed++
	ic := *p.card.IC
	ic.CID = provisioning.CIDAAC
	if v.Online && v.Approved && !c.declineAfterApproval {
		ic.CID = provisioning.CIDTC
	}
	ic.Cryptogram = "TC" + ic.ARQC
	ic.TC = "9F2708" + ic.CID
	ic.Reversal = p.card.ICReversal
	if c.scripts {
		ic.Scripts = "2000000001"
		ic.Reversal += "DF3105" + ic.Scripts
	}
	return provisioning.CardVerdict{Approved: ic.CID == provisioning.CIDTC, IC: &ic}, nil
}

func chipRig() (*rig, *fakeChip) {
	r := newRig()
	chip := &fakeChip{}
	r.card.chip = chip
	return r, chip
}

// TestChipSaleEndsWithTheCardsTC: an approved chip sale is recorded with
// the card's TC, the card was told the host's approval with its field 55,
// and the session is closed.
func TestChipSaleEndsWithTheCardsTC(t *testing.T) {
	r, chip := chipRig()
	cp, err := r.flow().Run(context.Background())
	if err != nil || cp.Step != provisioning.StepLive {
		t.Fatalf("run: %v at %s", err, cp.Step)
	}
	if chip.payments != 1 || len(chip.verdicts) != 1 || chip.closed < 1 {
		t.Fatalf("payments %d verdicts %d closed %d", chip.payments, len(chip.verdicts), chip.closed)
	}
	if v := chip.verdicts[0]; !v.Online || !v.Approved || v.RC != "00" {
		t.Fatalf("card told %+v", v)
	}
	if cp.Sale.IC == nil || cp.Sale.IC.CID != provisioning.CIDTC || cp.Sale.IC.Cryptogram == "" {
		t.Fatalf("sale record IC %+v", cp.Sale.IC)
	}
	if len(r.host.reversals) != 0 {
		t.Fatalf("reversals %+v", r.host.reversals)
	}
	if len(r.host.proc.tcs) != 1 || r.host.proc.tcs[0].Txn.IC.TC != cp.Sale.IC.TC || r.host.proc.tcs[0].Txn.STAN != cp.Sale.STAN {
		t.Fatalf("TC uploads %+v, sale IC %+v", r.host.proc.tcs, cp.Sale.IC)
	}
	if len(r.host.proc.scripts) != 0 {
		t.Fatalf("script notices without scripts: %+v", r.host.proc.scripts)
	}
}

// TestCardDeclinesAfterApproval: an approval the card answers with an AAC
// is reversed with reason 06, carrying the IC reversal data and the
// authorisation code, and the sale is then done again.
func TestCardDeclinesAfterApproval(t *testing.T) {
	r, chip := chipRig()
	chip.declineAfterApproval = true
	r.ui.answers = []string{"confirm"} // then no answer: the installer walks away at the failure
	cp, err := r.flow().Run(context.Background())
	if !errors.Is(err, errNoAnswerScripted) {
		t.Fatalf("run: %v at %s", err, cp.Step)
	}
	if cp.Failure == nil || cp.Failure.Code != "E_CARD_DECLINED" {
		t.Fatalf("failure %+v", cp.Failure)
	}
	if cp.InFlight == nil || cp.InFlight.Reason != "06" || cp.InFlight.AuthCode != "123456" || cp.InFlight.IC == "" || cp.Sale != nil {
		t.Fatalf("in flight %+v, sale %+v", cp.InFlight, cp.Sale)
	}
	// The retry reverses it first; the card now accepts.
	chip.declineAfterApproval = false
	r.ui.answers = []string{"retry"}
	cp, err = r.flow().Run(context.Background())
	if err != nil || cp.Step != provisioning.StepLive {
		t.Fatalf("retry: %v at %s", err, cp.Step)
	}
	if len(r.host.reversals) != 1 {
		t.Fatalf("reversals %+v", r.host.reversals)
	}
	rev := r.host.reversals[0]
	if rev.Reason != "06" || rev.Orig.IC == "" || rev.Orig.AuthCode != "123456" || rev.Orig.Expiry != "3012" || rev.Orig.Seq != "01" {
		t.Fatalf("reversal %+v", rev)
	}
	if got := r.host.count("reversed"); got != 1 {
		t.Fatalf("sales reversed %d, want 1", got)
	}
	if chip.payments != 2 {
		t.Fatalf("payments %d, want 2 (the sale done again)", chip.payments)
	}
}

// TestCardRemovedBeforeItFinished: a card pulled out before its second
// GENERATE AC leaves the approved sale to be reversed (06), with its own
// code.
func TestCardRemovedBeforeItFinished(t *testing.T) {
	r, chip := chipRig()
	chip.removed = true
	r.ui.answers = []string{"confirm"}
	cp, err := r.flow().Run(context.Background())
	if !errors.Is(err, errNoAnswerScripted) || cp.Failure == nil || cp.Failure.Code != "E_CARD_REMOVED" {
		t.Fatalf("run: %v, failure %+v", err, cp.Failure)
	}
	if cp.InFlight == nil || cp.InFlight.Reason != "06" {
		t.Fatalf("in flight %+v", cp.InFlight)
	}
	chip.removed = false
	r.ui.answers = []string{"retry"}
	cp, err = r.flow().Run(context.Background())
	if err != nil || cp.Step != provisioning.StepLive || len(r.host.reversals) != 1 || r.host.reversals[0].Reason != "06" {
		t.Fatalf("retry: %v at %s, reversals %+v", err, cp.Step, r.host.reversals)
	}
}

// TestHostDeclineTellsTheCard: a decline goes to the card as its response
// code, online; no answer goes as "unable to go online" and the sale is
// reversed (98).
func TestHostDeclineTellsTheCard(t *testing.T) {
	t.Run("declined", func(t *testing.T) {
		r, chip := chipRig()
		r.host.saleRC = "51"
		r.ui.answers = []string{"confirm"}
		cp, _ := r.flow().Run(context.Background())
		if cp.Failure == nil || cp.Failure.Code != "E_DECLINED" || cp.InFlight != nil {
			t.Fatalf("failure %+v, in flight %+v", cp.Failure, cp.InFlight)
		}
		if len(chip.verdicts) != 1 || !chip.verdicts[0].Online || chip.verdicts[0].Approved || chip.verdicts[0].RC != "51" {
			t.Fatalf("card told %+v", chip.verdicts)
		}
	})
	t.Run("no answer", func(t *testing.T) {
		r, chip := chipRig()
		r.host.loseSale = true
		r.ui.answers = []string{"confirm"}
		cp, _ := r.flow().Run(context.Background())
		if cp.Failure == nil || cp.Failure.Code != "E_HOST" || cp.InFlight == nil || cp.InFlight.Reason != "" {
			t.Fatalf("failure %+v, in flight %+v", cp.Failure, cp.InFlight)
		}
		if len(chip.verdicts) != 1 || chip.verdicts[0].Online || chip.verdicts[0].Approved {
			t.Fatalf("card told %+v", chip.verdicts)
		}
		r.ui.answers = []string{"retry"}
		cp, err := r.flow().Run(context.Background())
		if err != nil || cp.Step != provisioning.StepLive || len(r.host.reversals) != 1 || r.host.reversals[0].Reason != "98" {
			t.Fatalf("retry: %v at %s, reversals %+v", err, cp.Step, r.host.reversals)
		}
	})
}

// TestPowerCutBeforeTheCardAnswered: the host approved, the power went
// before the card answered: the image on disk says 96 (the terminal could
// not finish), and the restart reverses the sale before selling again.
func TestPowerCutBeforeTheCardAnswered(t *testing.T) {
	r, chip := chipRig()
	ctx, cancel := context.WithCancel(context.Background())
	chip.onComplete = func() error {
		cancel()
		return context.Canceled
	}
	cp, _ := r.flow().Run(ctx)
	saved, err := provisioning.Decode(r.store.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if saved.InFlight == nil || saved.Sale != nil || !slices.Contains([]string{"96", "06"}, saved.InFlight.Reason) {
		t.Fatalf("after the cut: in flight %+v, sale %+v (run ended at %s)", saved.InFlight, saved.Sale, cp.Step)
	}
	chip.onComplete = nil
	r.ui.answers = []string{"confirm", "retry"}
	cp, err = r.flow().Run(context.Background())
	if err != nil || cp.Step != provisioning.StepLive {
		t.Fatalf("restart: %v at %s", err, cp.Step)
	}
	if len(r.host.reversals) != 1 || r.host.count("reversed") != 1 || r.host.count("voided") != 1 {
		t.Fatalf("reversals %+v, sales %v", r.host.reversals, r.host.sales)
	}
}

// TestScriptResultsAndPIN: a sale whose card ran issuer scripts has their
// results notified before settlement; an online PIN goes to the host in
// the request and nowhere else (the record says only that one was
// entered).
func TestScriptResultsAndPIN(t *testing.T) {
	r, chip := chipRig()
	chip.scripts = true
	block := provisioning.PINBlock{0x04, 0x12, 0x34, 0xDF, 0xFF, 0xFF, 0xFF, 0xFF}
	chip.pin = block
	cp, err := r.flow().Run(context.Background())
	if err != nil || cp.Step != provisioning.StepLive {
		t.Fatalf("run: %v at %s", err, cp.Step)
	}
	if len(r.host.proc.scripts) != 1 || r.host.proc.scripts[0].Txn.IC.Scripts != "2000000001" || !cp.Settlement.ScriptsNotified {
		t.Fatalf("script notices %+v, settlement %+v", r.host.proc.scripts, cp.Settlement)
	}
	if len(r.host.pins) != 1 || !slices.Equal(r.host.pins[0], block) {
		t.Fatalf("PIN blocks at the host: %d", len(r.host.pins))
	}
	if !cp.Sale.PIN {
		t.Fatal("the sale's record does not say a PIN was entered")
	}
	stored := string(r.store.Bytes())
	for _, form := range []string{string(block), hex.EncodeToString(block), strings.ToUpper(hex.EncodeToString(block)),
		base64.StdEncoding.EncodeToString(block)} {
		if strings.Contains(stored, form) {
			t.Fatalf("the checkpoint holds the PIN block (as %q)", form)
		}
	}
}
