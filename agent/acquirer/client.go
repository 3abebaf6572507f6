package acquirer

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/moov-io/iso8583"

	"github.com/posagent/posagent/provisioning"
)

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

var (
	_ provisioning.Host              = (*Client)(nil)
	_ provisioning.AcquirerProcedure = (*Client)(nil)
)

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

// codedError is an error that names the flow's failure code for it; wrap,
// when set, is the class it belongs to (ErrRequest).
type codedError struct {
	code, msg string
	wrap      error
}

func (e *codedError) Error() string       { return e.msg }
func (e *codedError) FailureCode() string { return e.code }
func (e *codedError) Unwrap() error       { return e.wrap }

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
	if err := cfg.Profile.Validate(); err != nil {
		return nil, err
	}
	if !cfg.KeyMode.supported() || cfg.Profile.Codes.SignOn(cfg.KeyMode) == "" {
		return nil, fmt.Errorf("acquirer: key mode %q is not supported", cfg.KeyMode)
	}
	if _, err := ComputeMAC(cfg.MAC, make(Key, 8), nil); err != nil {
		return nil, err
	}
	remote := cfg.Profile.RemoteTMK != TMKNone
	if remote && cfg.TerminalKey == nil {
		return nil, fmt.Errorf("acquirer: profile %s downloads the TMK and no terminal key is configured", cfg.Profile.Name)
	}
	k, err := ks.LoadKeys()
	if remote && errors.Is(err, ErrNoKeys) {
		// The TMK is downloaded (FetchTMK) before the first sign-on.
		k, err = Keys{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("acquirer: load keys: %w", err)
	}
	if len(k.TMK) == 0 && !remote {
		return nil, fmt.Errorf("acquirer: load keys: %w", ErrNoKeys)
	}
	return &Client{cfg: cfg, ks: ks, keys: k, batch: "000000"}, nil
}

// Profile returns the acquirer profile the client speaks (a copy).
func (c *Client) Profile() Profile {
	p := c.cfg.Profile
	p.Requires = append([]provisioning.Demand(nil), p.Requires...)
	p.ParamTags = append([]ParamTag(nil), p.ParamTags...)
	p.StatusTags = append([]ParamTag(nil), p.StatusTags...)
	return p
}

func (c *Client) financialExchange(ctx context.Context, op string, m *iso8583.Message, h Header) (provisioning.HostResponse, error) {
	r, err := c.exchange(ctx, op, m, macFull, h)
	if err != nil {
		return provisioning.HostResponse{}, err
	}
	issuer, acq := institutions(Get(r.m, 44))
	return provisioning.HostResponse{RC: Get(r.m, 39), RRN: Get(r.m, 37), AuthCode: Get(r.m, 38), Time: c.hostTime(r.m),
		Integrity: r.integrity, Issuer: issuer, Acquirer: acq, Demand: r.demand,
		// The issuer's data for the card (91, 71, 72) goes to the chip as
		// it came: the card, not the terminal, judges it. It counts only
		// as far as Integrity says, which the flow applies.
		ICData: issuerData(r.m)}, nil
}

// issuerData is the answer's field 55, a copy; nil when it has none.
func issuerData(m *iso8583.Message) []byte {
	if b := GetBytes(m, 55); len(b) > 0 {
		return bytes.Clone(b)
	}
	return nil
}

// institutions splits field 44 into the issuer's and the acquirer's
// institution codes, 11 characters each (space padded), as the slip's 发卡行
// and 收单行 show them: the Centerm app's transcation/pos/data/
// BaseField44.java; LiaoYang_POS (Src/trancomm.c, SaveRspPackData) keeps the
// first 8 of each. A short field gives what it holds.
func institutions(f44 string) (issuer, acquirer string) {
	if len(f44) <= 11 {
		return strings.TrimSpace(f44), ""
	}
	end := min(len(f44), 22)
	return strings.TrimSpace(f44[:11]), strings.TrimSpace(f44[11:end])
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

// responseMTI is the answer's MTI: the function digit plus one.
func responseMTI(mti string) string {
	b := []byte(mti)
	b[2]++
	return string(b)
}

// macMode is how an exchange treats field 64.
type macMode int

const (
	// macNone: the request carries no MAC and the answer's is not looked
	// at (sign-on: the answer brings the key it would be checked with).
	macNone macMode = iota
	// macAnswer: the request carries no MAC, as the public apps send the
	// management messages (no admin message of LiaoYang_POS's HaveMacData,
	// Src/trancomm.c, nor of the Centerm app's union_pay.xml carries field
	// 64); an answer that does carry one must verify under the MAK held.
	macAnswer
	// macFull: the request is MACed, and a MAC on the answer must verify.
	macFull
)

// reply is a host's answer as an exchange returns it.
type reply struct {
	m         *iso8583.Message
	demand    provisioning.Demand
	integrity provisioning.Integrity
}

// exchange sends m and waits for its answer on a fresh connection. The
// answer must match the request (matchFields). With macFull the request
// carries field 64, an answer's field 64 that is there must verify
// (ErrBadMAC otherwise), and the integrity returned says what the answer is
// worth: IntegrityNone when it carries no MAC (a host cannot MAC an answer to
// a message it could not authenticate — and neither can anyone else on the
// link), which the flow never takes as settling anything. With macAnswer a
// MAC the answer carries must verify too. The answer header's
// processing-requirement digit is read with the profile (Profile.Demand).
func (c *Client) exchange(ctx context.Context, op string, m *iso8583.Message, mm macMode, h Header) (reply, error) {
	return c.exchangeMatch(ctx, op, m, mm, h, matchFields)
}

// exchangeMatch is exchange with the request fields the answer must echo
// given: the chip notices (TC upload, script results) are answered without
// the amount by hosts the public apps talk to, and those apps do not
// compare it (LiaoYang_POS Src/trancomm.c ProcRspPacket skips field 4 for
// UPLOAD_SCRIPT_RESULT and ICC_BATCHUP; the Centerm app's union_pay.xml
// unpacks no field 4 from the UPLOAD_SCRIPT_RESULT answer).
func (c *Client) exchangeMatch(ctx context.Context, op string, m *iso8583.Message, mm macMode, h Header, match []int) (reply, error) {
	start := c.cfg.Now()
	mak := MACKey(c.keys.Working.MAK, c.cfg.MACFullKey)
	var body []byte
	var err error
	if mm == macFull {
		body, err = PackMAC(m, c.cfg.MAC, mak)
	} else {
		body, err = Pack(m)
	}
	if err != nil {
		return reply{}, err
	}
	mti, _ := m.GetMTI()
	stan := Get(m, 11)
	frame, err := Frame{TPDU: c.cfg.TPDU, Header: h, Message: body}.Encode()
	if err != nil {
		return reply{}, err
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
		return reply{}, fail(false, err)
	}
	defer conn.Close()
	// Cancelling the context unblocks a read or write in progress.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()

	if err := conn.SetWriteDeadline(deadline); err != nil {
		return reply{}, fail(false, err)
	}
	if _, err := conn.Write(frame); err != nil {
		return reply{}, fail(true, err)
	}
	want := responseMTI(mti)
	rd := time.Now().Add(c.cfg.ReadTimeout)
	if deadline.Before(rd) {
		rd = deadline
	}
	if err := conn.SetReadDeadline(rd); err != nil {
		return reply{}, fail(true, err)
	}
	f, err := ReadFrame(conn, 0)
	if err != nil {
		return reply{}, fail(true, err)
	}
	resp, err := Unpack(f.Message)
	if err != nil {
		return reply{}, fail(true, err)
	}
	// One connection per exchange: an answer that is not ours is a host
	// fault or a forgery, not something to wait past.
	if rmti, _ := resp.GetMTI(); rmti != want {
		return reply{}, fail(true, ErrMismatch)
	}
	for _, id := range match {
		if v := Get(m, id); v != "" && Get(resp, id) != v {
			return reply{}, fail(true, fmt.Errorf("%w (field %d)", ErrMismatch, id))
		}
	}
	integrity := provisioning.IntegrityNone
	switch mm {
	case macFull:
		switch err := CheckMAC(resp, f.Message, c.cfg.MAC, mak); {
		case err == nil:
			integrity = c.integrity()
		case errors.Is(err, ErrNoMAC):
			c.cfg.Log.Warn("host answer carries no MAC: it settles nothing", "op", op, "stan", stan, "rc", Get(resp, 39))
		default:
			return reply{}, fail(true, err)
		}
	case macAnswer:
		if GetBytes(resp, 64) == nil {
			break
		}
		if len(mak) == 0 {
			// Nothing to check it with: an echo before the first sign-on.
			c.cfg.Log.Warn("host answer carries a MAC the terminal holds no key for", "op", op, "rc", Get(resp, 39))
			break
		}
		if err := CheckMAC(resp, f.Message, c.cfg.MAC, mak); err != nil {
			return reply{}, fail(true, err)
		}
		integrity = c.integrity()
	}
	demand := c.cfg.Profile.Demand(f.Header)
	c.cfg.Log.Info("host exchange", "op", op, "mti", mti, "stan", stan, "rc", Get(resp, 39), "integrity", integrity,
		"demand", demand, "elapsed", c.cfg.Now().Sub(start).Round(time.Millisecond))
	return reply{m: resp, demand: demand, integrity: integrity}, nil
}
