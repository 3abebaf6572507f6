package acquirer

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
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
