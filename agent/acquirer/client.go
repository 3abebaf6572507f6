package acquirer

import (
	"context"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/moov-io/iso8583"

	"github.com/posagent/posagent/provisioning"
)

// Config is one acquirer as the client talks to it. Zero values take the
// defaults documented per field.
type Config struct {
	// Addr is the host's TCP address, "host:port".
	Addr string
	// TPDU and Header frame every request; zero means DefaultTPDU and
	// DefaultHeader.
	TPDU   TPDU
	Header Header
	// TestModeSale sets the header's test-mode nibble on the installer's test
	// sale (SaleRequest.Test): some acquirers want it for a first sale.
	TestModeSale bool
	// KeyMode is sign-on 60.3; zero means DoubleDES ("004").
	KeyMode KeyMode
	// MAC is the field-64 algorithm; zero means MACUnionPayECB.
	MAC MACAlgorithm
	// MACFullKey runs the MAC with the whole double-length MAK (3DES) instead
	// of its first 8 bytes (DES).
	MACFullKey bool
	// Operator is field 63.1 of sign-on, 3 characters; zero means "01 ".
	Operator string
	// Currency is field 49; zero means "156" (CNY).
	Currency string
	// NoTDK says this acquirer sends no track data key in double-length
	// mode (a 40-byte field 62). Without it a sign-on answer without a TDK
	// is refused: on a link where anyone can cut the TDK off the unMACed
	// 0810, accepting it would send every swiped track in clear.
	NoTDK bool
	// HostTime, when set, is given the host's date and time from every
	// approved sign-on made over an authenticated link (TLS with a pinned
	// CA): only then can nobody on the way have written them, so only then
	// may they advance the terminal's time floor. Nil: not wanted.
	HostTime func(time.Time)
	// TLS, when set, runs every exchange over TLS with it. With RootCAs set
	// (the acquirer's CA pinned) the link is authenticated, and answers are
	// believed even under the forgeable UnionPay ECB MAC.
	TLS *tls.Config
	// ConnectTimeout bounds the TCP connect (default 10 s), ReadTimeout each
	// wait for bytes (default 30 s) and ExchangeTimeout the whole
	// connect-send-receive (default 60 s). The context can only shorten them.
	ConnectTimeout  time.Duration
	ReadTimeout     time.Duration
	ExchangeTimeout time.Duration
	// HostLocation is the zone of the host's fields 12/13; nil means UTC+8
	// (China Standard Time).
	HostLocation *time.Location
	// Now is the terminal clock, used to place the host's MMDD in a year;
	// nil means time.Now.
	Now func() time.Time
	// Dial opens the connection; nil means a net.Dialer. A seam for tests.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// Log receives one line per exchange (MTI, STAN, response code, timing),
	// never card data or keys; nil means slog.Default().
	Log *slog.Logger
}

func (c *Config) defaults() {
	if c.TPDU == (TPDU{}) {
		c.TPDU = DefaultTPDU
	}
	if c.Header == (Header{}) {
		c.Header = DefaultHeader
	}
	if c.KeyMode == "" {
		c.KeyMode = DoubleDES
	}
	if c.MAC == "" {
		c.MAC = MACUnionPayECB
	}
	if c.Operator == "" {
		c.Operator = "01 "
	}
	if c.Currency == "" {
		c.Currency = "156"
	}
	if c.ConnectTimeout <= 0 {
		c.ConnectTimeout = 10 * time.Second
	}
	if c.ReadTimeout <= 0 {
		c.ReadTimeout = 30 * time.Second
	}
	if c.ExchangeTimeout <= 0 {
		c.ExchangeTimeout = 60 * time.Second
	}
	if c.HostLocation == nil {
		c.HostLocation = time.FixedZone("CST", 8*3600)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Dial == nil {
		c.Dial = (&net.Dialer{}).DialContext
	}
	if c.Log == nil {
		c.Log = slog.Default()
	}
}

// Client is the acquirer host over TCP: one connection per exchange, as POS
// terminals on dial-up and GPRS links do, so a late or duplicated answer can
// never be mistaken for the next exchange's. Exchanges are serialised.
type Client struct {
	cfg  Config
	ks   KeyStore
	mu   sync.Mutex
	keys Keys
	// batch is the last batch the host gave at sign-on, for messages whose
	// request carries none (echo).
	batch string
}

var _ provisioning.Host = (*Client)(nil)

// Errors of an exchange that callers branch on.
var (
	// ErrNotSignedOn: no MAK yet, so no financial message can be sent.
	ErrNotSignedOn = errors.New("acquirer: not signed on (no working keys)")
	// ErrMismatch: the answer is not for this request (MTI, processing
	// code, amount, STAN, TID or MID differ). It wraps
	// provisioning.ErrMismatch: the flow reverses what it was sent for.
	ErrMismatch = fmt.Errorf("acquirer: response does not match the request: %w", provisioning.ErrMismatch)
	// ErrNoTDK: the key mode asks for a track key and the sign-on answer
	// brought none (a host that sends none must be configured NoTDK), or a
	// swiped track would go out in clear where one was expected.
	ErrNoTDK error = &codedError{code: "E_NO_TDK", msg: "acquirer: no track data key where the key mode requires one"}
	// ErrRequest: the request cannot be built from what the caller gave.
	ErrRequest = errors.New("acquirer: invalid request")
)

// codedError is an error that names the flow's failure code for it.
type codedError struct{ code, msg string }

func (e *codedError) Error() string       { return e.msg }
func (e *codedError) FailureCode() string { return e.code }

// ExchangeError is a failed exchange. Sent reports whether any request bytes
// may have reached the host: when it is true the message may have been
// processed, and a financial one must be reversed; when false it matches
// provisioning.ErrNotSent.
type ExchangeError struct {
	Op   string // "sale", "void", ...
	Sent bool
	Err  error
}

// Is makes an exchange whose request never left match provisioning.ErrNotSent.
func (e *ExchangeError) Is(target error) bool {
	return target == provisioning.ErrNotSent && !e.Sent
}

// Error names the exchange and the cause.
func (e *ExchangeError) Error() string {
	return "acquirer: " + e.Op + ": " + e.Err.Error()
}

// Unwrap returns the cause (ErrBadMAC, ErrNoMAC, ErrMalformed, a net error, ...).
func (e *ExchangeError) Unwrap() error { return e.Err }

// NewClient returns a client for cfg with keys from ks, which must hold a
// TMK; working keys of an earlier sign-on are used as they are, so a
// reversal after a restart is MACed with the MAK it was built under.
func NewClient(cfg Config, ks KeyStore) (*Client, error) {
	cfg.defaults()
	if cfg.KeyMode != SingleDES && cfg.KeyMode != DoubleDES {
		return nil, fmt.Errorf("acquirer: key mode %q is not supported", cfg.KeyMode)
	}
	if _, err := ComputeMAC(cfg.MAC, make(Key, 8), nil); err != nil {
		return nil, err
	}
	k, err := ks.LoadKeys()
	if err != nil {
		return nil, fmt.Errorf("acquirer: load keys: %w", err)
	}
	if len(k.TMK) == 0 {
		return nil, fmt.Errorf("acquirer: load keys: %w", ErrNoKeys)
	}
	return &Client{cfg: cfg, ks: ks, keys: k, batch: "000000"}, nil
}

// Echo sends an echo test (0820, 60.3 = 301).
func (c *Client) Echo(ctx context.Context, t provisioning.Terminal) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := NewMessage("0820")
	if err := c.setTerminal(m, t); err != nil {
		return err
	}
	if err := Set(m, 60, Field60{Type: "00", Batch: c.batch, Code: "301"}.String()); err != nil {
		return err
	}
	resp, _, err := c.exchange(ctx, "echo", m, t, false, c.cfg.Header)
	if err != nil {
		return err
	}
	if rc := Get(resp, 39); rc != "" && rc != "00" {
		return fmt.Errorf("acquirer: echo: host answered %s", rc)
	}
	return nil
}

// SignOff sends 0820 with 60.3 = 002 and forgets the working keys, on the
// host and here: nothing is MACed again until the next sign-on.
func (c *Client) SignOff(ctx context.Context, t provisioning.Terminal, stan int) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := NewMessage("0820")
	if err := setSTAN(m, stan); err != nil {
		return err
	}
	if err := c.setTerminal(m, t); err != nil {
		return err
	}
	if err := Set(m, 60, Field60{Type: "00", Batch: c.batch, Code: "002"}.String()); err != nil {
		return err
	}
	resp, _, err := c.exchange(ctx, "sign-off", m, t, false, c.cfg.Header)
	if err != nil {
		return err
	}
	if rc := Get(resp, 39); rc != "" && rc != "00" {
		return fmt.Errorf("acquirer: sign-off: host answered %s", rc)
	}
	next := c.keys
	next.Working = WorkingKeys{}
	if err := c.ks.SaveKeys(next); err != nil {
		return fmt.Errorf("acquirer: sign-off: %w", err)
	}
	old := c.keys.Working
	c.keys = next
	old.Wipe() // the keys the host just retired
	return nil
}

// SignOn sends 0800 (60.3 = key mode), decrypts the working keys of the
// answer under the TMK, and keeps them only when every check value matches.
func (c *Client) SignOn(ctx context.Context, r provisioning.SignOnRequest) (provisioning.SignOnResult, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := NewMessage("0800")
	if err := setSTAN(m, r.STAN); err != nil {
		return provisioning.SignOnResult{}, err
	}
	if err := c.setTerminal(m, r.Terminal); err != nil {
		return provisioning.SignOnResult{}, err
	}
	if err := Set(m, 60, Field60{Type: "00", Batch: "000000", Code: string(c.cfg.KeyMode)}.String()); err != nil {
		return provisioning.SignOnResult{}, err
	}
	if err := Set(m, 63, c.cfg.Operator); err != nil {
		return provisioning.SignOnResult{}, err
	}
	resp, _, err := c.exchange(ctx, "sign-on", m, r.Terminal, false, c.cfg.Header)
	if err != nil {
		return provisioning.SignOnResult{}, err
	}
	res := provisioning.SignOnResult{RC: Get(resp, 39), HostTime: c.hostTime(resp)}
	if res.RC != "00" {
		return res, nil
	}
	f60, err := ParseField60(Get(resp, 60))
	if err != nil || !isDigits(f60.Batch, 6) {
		return res, &ExchangeError{Op: "sign-on", Sent: true, Err: &FieldError{Op: "unpack", Field: 60}}
	}
	res.Batch = f60.Batch
	f62 := GetBytes(resp, 62)
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
	c.cfg.Log.Info("signed on", "batch", res.Batch, "mak", wk.MAK)
	if c.cfg.HostTime != nil && c.linkAuthenticated() && !res.HostTime.IsZero() {
		c.cfg.HostTime(res.HostTime)
	}
	return res, nil
}

// Sale sends 0200/000000. A chip card (Entry chip, ICData set) goes with
// entry mode 05x, field 23 and field 55; a swiped card (EntrySwipe, or
// EntryFallback with 60.5 = 2) with 02x and its tracks in fields 35/36,
// encrypted under the TDK; a card with neither is keyed (01x). With a PIN
// block the third digit of 22 is 1 and fields 26, 52 and 53 are added.
func (c *Client) Sale(ctx context.Context, r provisioning.SaleRequest) (provisioning.HostResponse, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
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
	return c.financialExchange(ctx, "sale", m, r.Terminal, h)
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
	return c.financialExchange(ctx, "void", m, r.Terminal, c.cfg.Header)
}

// Reverse sends 0400 for a sale or void whose answer never arrived: the
// original's PAN (2, when the request has it), processing code, amount, STAN
// (11), entry mode (22), batch and entry sub-fields (60) and, for a void, the
// sale's batch and STAN (61); field 39 carries the reason. It carries no
// track, PIN, field 53 or IC data: the host matches the original by terminal,
// batch and STAN, and checks field 2 against it.
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
	if len(r.Reason) != 2 {
		return provisioning.HostResponse{}, &FieldError{Op: "pack", Field: 39}
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
	return c.financialExchange(ctx, "reversal", m, r.Terminal, c.cfg.Header)
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

// entryMode is how the card was read, as fields 22 and 60.4/60.5 say it.
type entryMode struct {
	mode     string // the first two digits of 22: 05 chip, 02 magstripe, 01 keyed
	reader   string // 60.4: 5 the terminal reads IC, 0 unspecified
	fallback string // 60.5: 2 magstripe after the chip failed, else 0
}

func (e entryMode) field22(pin bool) string {
	if pin {
		return e.mode + "1"
	}
	return e.mode + "2"
}

// entryModeOf maps the card source's entry to the dialect. A chip entry
// without IC data is a keyed card (simulated cards have none).
func entryModeOf(e provisioning.Entry, chip bool) (entryMode, error) {
	switch e {
	case provisioning.EntryChip:
		if chip {
			return entryMode{"05", "5", "0"}, nil
		}
		return entryMode{"01", "0", "0"}, nil
	case provisioning.EntrySwipe:
		// 60.4 is the terminal's capability, and this one reads chips.
		return entryMode{"02", "5", "0"}, nil
	case provisioning.EntryFallback:
		return entryMode{"02", "5", "2"}, nil
	}
	return entryMode{}, fmt.Errorf("%w: entry mode %q", ErrRequest, e)
}

// setCard sets what a sale or void says about the card and the PIN, then
// the terminal, currency and field 60.
func (c *Client) setCard(m *iso8583.Message, t provisioning.Terminal, typ, batch string, card provisioning.Card, pin provisioning.PINBlock) error {
	if !isDigits(batch, 6) {
		return &FieldError{Op: "pack", Field: 60}
	}
	swiped := card.Entry == provisioning.EntrySwipe || card.Entry == provisioning.EntryFallback
	chip := card.Entry == provisioning.EntryChip && card.ICData != ""
	em, err := entryModeOf(card.Entry, chip)
	if err != nil {
		return err
	}
	panDigits := card.PAN.Reveal()
	track2 := card.Track2.Reveal()
	var trackPAN, trackExpiry string
	if swiped {
		if track2 == "" {
			return &FieldError{Op: "pack", Field: 35}
		}
		var rest string
		trackPAN, rest, _ = strings.Cut(track2, "=")
		if len(rest) >= 4 {
			trackExpiry = rest[:4]
		}
		switch {
		case panDigits == "":
			panDigits = trackPAN
		case panDigits != trackPAN:
			// The reader's PAN and the track's disagree: the host would
			// decline it (14); say which field instead.
			return &FieldError{Op: "pack", Field: 2}
		}
	}
	if panDigits != "" {
		if err := Set(m, 2, panDigits); err != nil {
			return err
		}
	}
	expiry := card.Expiry
	if !isDigits(expiry, 4) {
		expiry = trackExpiry
	}
	if isDigits(expiry, 4) {
		if err := Set(m, 14, expiry); err != nil {
			return err
		}
	}
	if chip {
		ic, err := hex.DecodeString(card.ICData)
		if err != nil || len(ic) == 0 {
			return &FieldError{Op: "pack", Field: 55}
		}
		if err := SetBytes(m, 55, ic); err != nil {
			return err
		}
		if card.Seq != "" {
			seq := card.Seq
			for len(seq) < 3 {
				seq = "0" + seq
			}
			if err := Set(m, 23, seq); err != nil {
				return err
			}
		}
	}
	hasPIN := len(pin) > 0
	if err := Set(m, 22, em.field22(hasPIN)); err != nil {
		return err
	}
	if err := Set(m, 25, "00"); err != nil {
		return err
	}
	if hasPIN {
		// 26: the most PIN digits the pad accepts (ISO 9564 allows 12).
		if err := Set(m, 26, "12"); err != nil {
			return err
		}
	}
	trackEncrypted := false
	if swiped {
		// Without a TDK (single-DES sign-on) tracks go in clear and 53
		// says so: that acquirer has no key to decrypt them with.
		tdk := c.keys.Working.TDK
		trackEncrypted = len(tdk) > 0
		if !trackEncrypted && c.expectsTDK() {
			return ErrNoTDK
		}
		for _, tr := range []struct {
			id   int
			data string
		}{{35, track2}, {36, card.Track3.Reveal()}} {
			if tr.data == "" {
				continue
			}
			v := tr.data
			if trackEncrypted {
				if v, err = EncryptTrack(tdk, tr.data); err != nil {
					return &FieldError{Op: "pack", Field: tr.id}
				}
			}
			if err := Set(m, tr.id, v); err != nil {
				return err
			}
		}
	}
	if hasPIN {
		if len(c.keys.Working.PIK) == 0 {
			return ErrNotSignedOn
		}
		if panDigits == "" {
			return &FieldError{Op: "pack", Field: 2}
		}
		block, err := EncryptPINBlock(c.keys.Working.PIK, pin, panDigits)
		if err != nil {
			if errors.Is(err, ErrPINBlock) {
				return &FieldError{Op: "pack", Field: 52}
			}
			return err
		}
		if err := SetBytes(m, 52, block); err != nil {
			return err
		}
	}
	if hasPIN || swiped {
		mode := c.keys.Mode
		if mode == "" {
			mode = c.cfg.KeyMode
		}
		if err := Set(m, 53, SecurityControl(mode, trackEncrypted)); err != nil {
			return err
		}
	}
	return c.setTail(m, t, typ, batch, em)
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

// expectsTDK says whether swiped tracks must go encrypted: double-length
// keys from an acquirer that sends a TDK.
func (c *Client) expectsTDK() bool {
	mode := c.keys.Mode
	if mode == "" {
		mode = c.cfg.KeyMode
	}
	return mode == DoubleDES && !c.cfg.NoTDK
}

func (c *Client) financialExchange(ctx context.Context, op string, m *iso8583.Message, t provisioning.Terminal, h Header) (provisioning.HostResponse, error) {
	resp, integrity, err := c.exchange(ctx, op, m, t, true, h)
	if err != nil {
		return provisioning.HostResponse{}, err
	}
	return provisioning.HostResponse{RC: Get(resp, 39), RRN: Get(resp, 37), AuthCode: Get(resp, 38), Time: c.hostTime(resp),
		Integrity: integrity}, nil
}

// integrity is what a verified MAC proves on this link: the UnionPay ECB
// MAC is the XOR of the message's blocks under one DES, so without an
// authenticated link it can be forged; X9.19 cannot.
func (c *Client) integrity() provisioning.Integrity {
	if c.linkAuthenticated() || c.cfg.MAC == MACX919 {
		return provisioning.IntegrityAuthentic
	}
	return provisioning.IntegrityForgeable
}

// linkAuthenticated is TLS with the acquirer's CA pinned.
func (c *Client) linkAuthenticated() bool {
	return c.cfg.TLS != nil && c.cfg.TLS.RootCAs != nil && !c.cfg.TLS.InsecureSkipVerify
}

// matchFields are the request fields an answer must echo unchanged: MTI
// aside, the processing code, amount, STAN, TID and MID. An answer that
// differs was written for another message, or rewritten.
var matchFields = []int{3, 4, 11, 41, 42}

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

// hostTime reads fields 13 (MMDD) and 12 (hhmmss) in the host's zone and
// puts them in the year nearest the terminal clock (the host sends no year).
func (c *Client) hostTime(m *iso8583.Message) time.Time {
	d, hms := Get(m, 13), Get(m, 12)
	if !isDigits(d, 4) || !isDigits(hms, 6) {
		return time.Time{}
	}
	now := c.cfg.Now().In(c.cfg.HostLocation)
	atoi := func(s string) int {
		n := 0
		for _, ch := range s {
			n = n*10 + int(ch-'0')
		}
		return n
	}
	t := time.Date(now.Year(), time.Month(atoi(d[:2])), atoi(d[2:]), atoi(hms[:2]), atoi(hms[2:4]), atoi(hms[4:]), 0, c.cfg.HostLocation)
	switch {
	case t.Sub(now) > 183*24*time.Hour:
		t = t.AddDate(-1, 0, 0)
	case now.Sub(t) > 183*24*time.Hour:
		t = t.AddDate(1, 0, 0)
	}
	return t
}

// responseMTI is the answer's MTI: the function digit plus one.
func responseMTI(mti string) string {
	b := []byte(mti)
	b[2]++
	return string(b)
}

// exchange sends m and waits for its answer on a fresh connection. The
// answer must match the request (matchFields). With macked set the request
// carries field 64, an answer's field 64 that is there must verify
// (ErrBadMAC otherwise), and the integrity returned says what the answer is
// worth: IntegrityNone when it carries no MAC (a host cannot MAC an answer to
// a message it could not authenticate — and neither can anyone else on the
// link), which the flow never takes as settling anything.
func (c *Client) exchange(ctx context.Context, op string, m *iso8583.Message, t provisioning.Terminal, macked bool, h Header) (*iso8583.Message, provisioning.Integrity, error) {
	start := c.cfg.Now()
	mak := MACKey(c.keys.Working.MAK, c.cfg.MACFullKey)
	var body []byte
	var err error
	if macked {
		body, err = PackMAC(m, c.cfg.MAC, mak)
	} else {
		body, err = Pack(m)
	}
	if err != nil {
		return nil, "", err
	}
	mti, _ := m.GetMTI()
	stan := Get(m, 11)
	frame, err := Frame{TPDU: c.cfg.TPDU, Header: h, Message: body}.Encode()
	if err != nil {
		return nil, "", err
	}

	ctx, cancel := context.WithTimeout(ctx, c.cfg.ExchangeTimeout)
	defer cancel()
	deadline, _ := ctx.Deadline()
	fail := func(sent bool, err error) error {
		cause := ctx.Err()
		// The connection deadline is the context's: whichever notices first,
		// a caller should see the context's error.
		var ne net.Error
		if cause == nil && errors.As(err, &ne) && ne.Timeout() && !time.Now().Before(deadline) {
			cause = context.DeadlineExceeded
		}
		if cause != nil && !errors.Is(err, cause) {
			err = fmt.Errorf("%w (%v)", cause, err)
		}
		c.cfg.Log.Warn("host exchange failed", "op", op, "mti", mti, "stan", stan, "sent", sent, "err", err)
		return &ExchangeError{Op: op, Sent: sent, Err: err}
	}

	dctx, dcancel := context.WithTimeout(ctx, c.cfg.ConnectTimeout)
	conn, err := c.cfg.Dial(dctx, "tcp", c.cfg.Addr)
	if err == nil && c.cfg.TLS != nil {
		// No application byte goes before the handshake: a link that fails
		// it has sent nothing the host could process.
		tc := tls.Client(conn, c.cfg.TLS)
		if herr := tc.HandshakeContext(dctx); herr != nil {
			conn.Close()
			err = fmt.Errorf("tls: %w", herr)
		} else {
			conn = tc
		}
	}
	dcancel()
	if err != nil {
		return nil, "", fail(false, err)
	}
	defer conn.Close()
	// Cancelling the context unblocks a read or write in progress.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()

	if err := conn.SetWriteDeadline(deadline); err != nil {
		return nil, "", fail(false, err)
	}
	if _, err := conn.Write(frame); err != nil {
		return nil, "", fail(true, err)
	}
	want := responseMTI(mti)
	rd := time.Now().Add(c.cfg.ReadTimeout)
	if deadline.Before(rd) {
		rd = deadline
	}
	if err := conn.SetReadDeadline(rd); err != nil {
		return nil, "", fail(true, err)
	}
	f, err := ReadFrame(conn, 0)
	if err != nil {
		return nil, "", fail(true, err)
	}
	resp, err := Unpack(f.Message)
	if err != nil {
		return nil, "", fail(true, err)
	}
	// One connection per exchange: an answer that is not ours is a host
	// fault or a forgery, not something to wait past.
	if rmti, _ := resp.GetMTI(); rmti != want {
		return nil, "", fail(true, ErrMismatch)
	}
	for _, id := range matchFields {
		if v := Get(m, id); v != "" && Get(resp, id) != v {
			return nil, "", fail(true, fmt.Errorf("%w (field %d)", ErrMismatch, id))
		}
	}
	integrity := provisioning.IntegrityNone
	if macked {
		switch err := CheckMAC(resp, f.Message, c.cfg.MAC, mak); {
		case err == nil:
			integrity = c.integrity()
		case errors.Is(err, ErrNoMAC):
			c.cfg.Log.Warn("host answer carries no MAC: it settles nothing", "op", op, "stan", stan, "rc", Get(resp, 39))
		default:
			return nil, "", fail(true, err)
		}
	}
	c.cfg.Log.Info("host exchange", "op", op, "mti", mti, "stan", stan, "rc", Get(resp, 39), "integrity", integrity,
		"elapsed", c.cfg.Now().Sub(start).Round(time.Millisecond))
	return resp, integrity, nil
}
