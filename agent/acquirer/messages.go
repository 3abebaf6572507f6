package acquirer

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/moov-io/iso8583"

	"github.com/posagent/posagent/provisioning"
)

// Echo sends an echo test (0820, 60.3 the profile's echo code, 301). Like
// the public apps' (LiaoYang_POS TestResponse; the Centerm app's
// ECHO_TEST) it carries no STAN.
func (c *Client) Echo(ctx context.Context, t provisioning.Terminal) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := NewMessage("0820")
	if err := c.setTerminal(m, t); err != nil {
		return err
	}
	if err := Set(m, 60, Field60{Type: "00", Batch: c.batch, Code: c.cfg.Profile.Codes.Echo}.String()); err != nil {
		return err
	}
	r, err := c.exchange(ctx, "echo", m, macAnswer, c.cfg.Header)
	if err != nil {
		return err
	}
	if rc := Get(r.m, 39); rc != "" && rc != "00" {
		return fmt.Errorf("acquirer: echo: host answered %s", rc)
	}
	return nil
}

// SignOff sends 0820 with the profile's sign-off code (002) and, when the
// host agrees (39 = 00), forgets the working keys, on the host and here:
// nothing is MACed again until the next sign-on. Another answer comes back
// as its code, the keys kept.
func (c *Client) SignOff(ctx context.Context, r provisioning.AdminRequest) (provisioning.Ack, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	m, err := c.admin("0820", c.cfg.Profile.Codes.SignOff, r, true)
	if err != nil {
		return provisioning.Ack{}, err
	}
	resp, err := c.exchange(ctx, "sign-off", m, macAnswer, c.cfg.Header)
	if err != nil {
		return provisioning.Ack{}, err
	}
	ack := c.ack(resp)
	if ack.RC != "00" {
		return ack, nil
	}
	next := c.keys
	next.Working = WorkingKeys{}
	if err := c.ks.SaveKeys(next); err != nil {
		return ack, fmt.Errorf("acquirer: sign-off: %w", err)
	}
	old := c.keys.Working
	c.keys = next
	old.Wipe() // the keys the host just retired
	return ack, nil
}

// SignOn sends 0800 (60.3 = the profile's code for the key mode, 60.2 = the
// terminal's current batch), decrypts the working keys of the answer under
// the TMK, and keeps them only when every check value matches.
func (c *Client) SignOn(ctx context.Context, r provisioning.SignOnRequest) (provisioning.SignOnResult, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.keys.TMK) == 0 {
		// A downloaded TMK not yet activated is not one to sign on with.
		return provisioning.SignOnResult{}, ErrNoTMK
	}
	m := NewMessage("0800")
	if err := setSTAN(m, r.STAN); err != nil {
		return provisioning.SignOnResult{}, err
	}
	if err := c.setTerminal(m, r.Terminal); err != nil {
		return provisioning.SignOnResult{}, err
	}
	// The batch the terminal is in: the host answers 77 to a terminal
	// that is not in the batch it thinks (PROTOCOLS.md, step 13). Before
	// the first sign-on there is none.
	batch := r.Batch
	if batch == "" {
		batch = "000000"
	}
	if !isDigits(batch, 6) {
		return provisioning.SignOnResult{}, &FieldError{Op: "pack", Field: 60}
	}
	if err := Set(m, 60, Field60{Type: "00", Batch: batch, Code: c.cfg.Profile.Codes.SignOn(c.cfg.KeyMode)}.String()); err != nil {
		return provisioning.SignOnResult{}, err
	}
	if err := Set(m, 63, c.cfg.Operator); err != nil {
		return provisioning.SignOnResult{}, err
	}
	resp, err := c.exchange(ctx, "sign-on", m, macNone, c.cfg.Header)
	if err != nil {
		return provisioning.SignOnResult{}, err
	}
	res := provisioning.SignOnResult{RC: Get(resp.m, 39), HostTime: c.hostTime(resp.m), Demand: resp.demand}
	if res.RC != "00" {
		return res, nil
	}
	f60, err := ParseField60(Get(resp.m, 60))
	if err != nil || !isDigits(f60.Batch, 6) {
		return res, &ExchangeError{Op: "sign-on", Sent: true, Err: &FieldError{Op: "unpack", Field: 60}}
	}
	res.Batch = f60.Batch
	f62 := GetBytes(resp.m, 62)
	if c.cfg.KeyMode == DoubleDES && !c.cfg.NoTDK && len(f62) == 40 {
		c.cfg.Log.Warn("sign-on answer has no track data key; refusing its keys", "stan", r.STAN)
		return res, &ExchangeError{Op: "sign-on", Sent: true, Err: ErrNoTDK}
	}
	wk, err := DecryptWorkingKeys(c.keys.TMK, c.cfg.KeyMode, f62)
	if errors.Is(err, ErrKeyCheck) {
		c.cfg.Log.Warn("sign-on key check failed", "stan", r.STAN)
		return res, nil
	}
	if err != nil {
		return res, &ExchangeError{Op: "sign-on", Sent: true, Err: err}
	}
	next := c.keys
	next.Mode, next.Working = c.cfg.KeyMode, wk
	// Stored before use: a restart must MAC its reversals with these keys.
	if err := c.ks.SaveKeys(next); err != nil {
		return res, fmt.Errorf("acquirer: sign-on: %w", err)
	}
	old := c.keys.Working
	c.keys, c.batch, res.KeysOK = next, res.Batch, true
	old.Wipe() // replaced: nothing MACs or encrypts under them again
	c.cfg.Log.Info("signed on", "batch", res.Batch, "mak", wk.MAK, "demand", res.Demand)
	if c.cfg.HostTime != nil && c.linkAuthenticated() && !res.HostTime.IsZero() {
		c.cfg.HostTime(res.HostTime)
	}
	return res, nil
}

// ErrFallback refuses a domestic chip card read from its stripe after the
// chip failed: UnionPay closed that fallback on 2017-05-01, and only a
// profile with DomesticFallback reopens it. Nothing was sent.
var ErrFallback = fmt.Errorf("%w: fallback from chip to stripe is closed for domestic cards", ErrRequest)

// domesticCard says whether a card is a UnionPay domestic one by its BIN
// (62), from the PAN or, for a swiped card, track 2. UnionPay cards issued
// abroad share the prefix and are treated as domestic: the safe side.
func domesticCard(card provisioning.Card) bool {
	p := card.PAN.Reveal()
	if p == "" {
		p = card.Track2.Reveal()
	}
	return strings.HasPrefix(p, "62")
}

// Sale sends 0200/000000. A chip card (Entry chip, ICData set) goes with
// entry mode 05x, fields 14 and 23, field 35 the track-2 equivalent
// (encrypted under the TDK as a swipe's, 53 digit 3 = 1) and field 55; a
// swiped card (EntrySwipe, or EntryFallback with 60.5 = 2, refused for a
// domestic card unless the profile allows it) with 02x and its tracks in
// fields 35/36, encrypted under the TDK; a chip entry with neither ICData
// nor AID is keyed (01x). With a PIN block the third digit of 22 is 1 and
// fields 26, 52 and 53 are added.
func (c *Client) Sale(ctx context.Context, r provisioning.SaleRequest) (provisioning.HostResponse, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if r.Card.Entry == provisioning.EntryFallback && !c.cfg.Profile.DomesticFallback && domesticCard(r.Card) {
		return provisioning.HostResponse{}, ErrFallback
	}
	m, err := c.financial("0200", "000000", r.Terminal, r.STAN, r.Amount)
	if err != nil {
		return provisioning.HostResponse{}, err
	}
	if err := c.setCard(m, r.Terminal, "22", r.Batch, r.Card, r.PINBlock); err != nil {
		return provisioning.HostResponse{}, err
	}
	h := c.cfg.Header
	if r.Test && c.cfg.TestModeSale {
		h = h.WithTestMode(true)
	}
	return c.financialExchange(ctx, "sale", m, h)
}

// Void sends 0200/200000 for an approved sale of the open batch, with the
// sale's RRN (37), authorisation code (38) and batch + STAN (61).
func (c *Client) Void(ctx context.Context, r provisioning.VoidRequest) (provisioning.HostResponse, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	m, err := c.financial("0200", "200000", r.Terminal, r.STAN, r.Orig.Amount)
	if err != nil {
		return provisioning.HostResponse{}, err
	}
	if err := c.setCard(m, r.Terminal, "23", r.Batch, r.Card, r.PINBlock); err != nil {
		return provisioning.HostResponse{}, err
	}
	if err := Set(m, 37, r.Orig.RRN); err != nil {
		return provisioning.HostResponse{}, err
	}
	if r.Orig.AuthCode != "" {
		if err := Set(m, 38, r.Orig.AuthCode); err != nil {
			return provisioning.HostResponse{}, err
		}
	}
	if err := Set(m, 61, r.Orig.Batch+fmt.Sprintf("%06d", r.Orig.STAN)); err != nil {
		return provisioning.HostResponse{}, err
	}
	return c.financialExchange(ctx, "void", m, c.cfg.Header)
}

// reversalReasons are the codes a reversal's field 39 may carry
// (PROTOCOLS.md, "Transactions"): 98 no answer, 96 terminal fault, A0 the
// answer's MAC failed, 06 other — the card declining (AAC) what the host
// approved among them (the Centerm app reverses with 06 then).
var reversalReasons = map[string]bool{"98": true, "96": true, "A0": true, "06": true}

// Reverse sends 0400 for a sale or void whose answer never arrived or
// whose approval the terminal could not complete: the original's PAN (2,
// when the request has it), processing code, amount, STAN (11), entry mode
// (22), batch and entry sub-fields (60) and, for a void, the sale's batch
// and STAN (61); field 39 carries the reason, one of 98, 96, A0 and 06
// (another is refused as a FieldError on 39, nothing sent). The reversal
// of an IC transaction (Orig.IC set) adds the card's expiry (14) and PAN
// sequence number (23), the authorisation code of the approval it undoes
// (38, when there was one) and field 55, the objects the issuer needs to
// undo it on the card's account (95 9F1E 9F10 9F36, DF31 when scripts
// ran): the fields PROTOCOLS.md lists for IC reversals, which the Centerm
// app's SALE_REVERSE sends too (union_pay.xml: 2 3 4 11 14 22 23 25 38 39
// 41 42 49 55 60 64, with 59 and 62 of its own acquirer's). It carries no
// track, PIN or field 53: the host matches
// the original by terminal, batch and STAN, and checks field 2 against it.
func (c *Client) Reverse(ctx context.Context, r provisioning.ReversalRequest) (provisioning.HostResponse, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var pc, typ string
	switch r.Orig.Kind {
	case "sale":
		pc, typ = "000000", "22"
	case "void":
		pc, typ = "200000", "23"
	default:
		return provisioning.HostResponse{}, fmt.Errorf("%w: reversal of kind %q", ErrRequest, r.Orig.Kind)
	}
	if !reversalReasons[r.Reason] {
		return provisioning.HostResponse{}, &FieldError{Op: "pack", Field: 39}
	}
	var ic []byte
	if r.Orig.IC != "" {
		var err error
		if ic, err = hex.DecodeString(r.Orig.IC); err != nil || len(ic) == 0 {
			return provisioning.HostResponse{}, &FieldError{Op: "pack", Field: 55}
		}
	}
	m, err := c.financial("0400", pc, r.Terminal, r.Orig.STAN, r.Orig.Amount)
	if err != nil {
		return provisioning.HostResponse{}, err
	}
	if !r.PAN.IsZero() {
		if err := Set(m, 2, r.PAN.Reveal()); err != nil {
			return provisioning.HostResponse{}, err
		}
	}
	// The originals the flow records are card reads: an empty entry is a
	// chip read (05x), as the original's field 22 said.
	em, err := entryModeOf(r.Orig.Entry, true)
	if err != nil {
		return provisioning.HostResponse{}, err
	}
	if err := Set(m, 22, em.field22(r.Orig.PIN)); err != nil {
		return provisioning.HostResponse{}, err
	}
	if err := Set(m, 25, "00"); err != nil {
		return provisioning.HostResponse{}, err
	}
	if ic != nil {
		if err := c.setICReversal(m, r.Orig, ic); err != nil {
			return provisioning.HostResponse{}, err
		}
	}
	if err := c.setTail(m, r.Terminal, typ, r.Orig.Batch, em); err != nil {
		return provisioning.HostResponse{}, err
	}
	if err := Set(m, 39, r.Reason); err != nil {
		return provisioning.HostResponse{}, err
	}
	if r.Orig.Kind == "void" {
		if err := Set(m, 61, r.Orig.Batch+fmt.Sprintf("%06d", r.Orig.OrigSTAN)); err != nil {
			return provisioning.HostResponse{}, err
		}
	}
	return c.financialExchange(ctx, "reversal", m, c.cfg.Header)
}

// setICReversal sets what an IC reversal adds: 14, 23, 38 and 55.
func (c *Client) setICReversal(m *iso8583.Message, orig provisioning.InFlight, ic []byte) error {
	if orig.Expiry != "" {
		if !isDigits(orig.Expiry, 4) {
			return &FieldError{Op: "pack", Field: 14}
		}
		if err := Set(m, 14, orig.Expiry); err != nil {
			return err
		}
	}
	if orig.Seq != "" {
		if err := Set(m, 23, panSeq(orig.Seq)); err != nil {
			return err
		}
	}
	if orig.AuthCode != "" {
		if err := Set(m, 38, orig.AuthCode); err != nil {
			return err
		}
	}
	return SetBytes(m, 55, ic)
}

// financial starts a 0200/0400: MTI, processing code, amount and STAN.
func (c *Client) financial(mti, pc string, t provisioning.Terminal, stan int, amount int64) (*iso8583.Message, error) {
	if len(c.keys.Working.MAK) == 0 {
		return nil, ErrNotSignedOn
	}
	if amount <= 0 || amount > 999999999999 {
		return nil, &FieldError{Op: "pack", Field: 4}
	}
	m := NewMessage(mti)
	if err := Set(m, 3, pc); err != nil {
		return nil, err
	}
	if err := Set(m, 4, fmt.Sprintf("%012d", amount)); err != nil {
		return nil, err
	}
	if err := setSTAN(m, stan); err != nil {
		return nil, err
	}
	return m, nil
}

// setTail sets the terminal (41, 42), the currency (49) and field 60.
func (c *Client) setTail(m *iso8583.Message, t provisioning.Terminal, typ, batch string, em entryMode) error {
	if !isDigits(batch, 6) {
		return &FieldError{Op: "pack", Field: 60}
	}
	if err := c.setTerminal(m, t); err != nil {
		return err
	}
	if err := Set(m, 49, c.cfg.Currency); err != nil {
		return err
	}
	return Set(m, 60, Field60{Type: typ, Batch: batch, Code: "000", Reader: em.reader, Fallback: em.fallback}.String())
}

func (c *Client) setTerminal(m *iso8583.Message, t provisioning.Terminal) error {
	if len(t.TID) != 8 {
		return &FieldError{Op: "pack", Field: 41}
	}
	if len(t.MID) != 15 {
		return &FieldError{Op: "pack", Field: 42}
	}
	if err := Set(m, 41, t.TID); err != nil {
		return err
	}
	return Set(m, 42, t.MID)
}

func setSTAN(m *iso8583.Message, stan int) error {
	if stan < 1 || stan > 999999 {
		return &FieldError{Op: "pack", Field: 11}
	}
	return Set(m, 11, fmt.Sprintf("%06d", stan))
}

func isDigits(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
