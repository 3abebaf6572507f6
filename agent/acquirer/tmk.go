package acquirer

import (
	"context"
	"crypto/rsa"
	"errors"
	"fmt"
	"math/big"

	"github.com/moov-io/bertlv"
	"github.com/moov-io/iso8583"

	"github.com/posagent/posagent/provisioning"
)

// Remote TMK download (Profile.RemoteTMK = TMKRSA), for a terminal that has
// no TMK injected:
//
//  1. 0800, 60.3 Codes.TMKKey (352): field 62 is the terminal's RSA public
//     key as TLV, DF02 the modulus and DF04 the public exponent (the tags
//     the CA public key download uses for the same two numbers).
//  2. The answer's field 62 is the TMK encrypted under that key with
//     RSAES-PKCS1-v1_5, as many bytes as the modulus, followed by the TMK's
//     4-byte check value (8 zero bytes under the TMK). The terminal
//     decrypts, and keeps the TMK only when the check value matches: as
//     PendingTMK in the key store, never used.
//  3. 0800, 60.3 Codes.TMKActivate (351): field 62 is the check value of
//     the pending TMK. An answer 00 makes it the TMK; any other answer
//     drops it (the next download starts again from 1).
//
// Neither message carries field 64 (the terminal holds no MAK yet); field
// 11 is sent, as both public apps that download a TMK send one. The facts,
// their sources and the choices made are in docs/acquirer-procedure.md.

// ErrTMKCheck is a downloaded TMK whose check value is not the host's: it is
// not stored and not activated.
var ErrTMKCheck error = &codedError{code: "E_TMK_CHECK", msg: "acquirer: the downloaded TMK does not match the host's check value"}

// ErrNoTMK: no TMK is held (none injected, or a download not yet
// activated), so nothing can be decrypted under it.
var ErrNoTMK error = &codedError{code: "E_NO_TMK", msg: "acquirer: no terminal master key held"}

var _ provisioning.TMKSource = (*Client)(nil)

// TMKState says whether the client holds a TMK, is waiting to activate a
// downloaded one, or has none.
func (c *Client) TMKState() provisioning.TMKState {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case len(c.keys.TMK) > 0:
		return provisioning.TMKHeld
	case len(c.keys.PendingTMK) > 0:
		return provisioning.TMKPending
	}
	return provisioning.TMKMissing
}

func (c *Client) remoteTMK() error {
	if c.cfg.Profile.RemoteTMK != TMKRSA || c.cfg.TerminalKey == nil {
		return fmt.Errorf("%w: profile %s downloads no TMK", ErrRequest, c.cfg.Profile.Name)
	}
	return nil
}

// FetchTMK sends the terminal's public key (352) and keeps the TMK of the
// answer as pending when its check value matches. It is refused while a TMK
// is held; a pending one is replaced.
func (c *Client) FetchTMK(ctx context.Context, r provisioning.AdminRequest) (provisioning.Ack, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.remoteTMK(); err != nil {
		return provisioning.Ack{}, err
	}
	if len(c.keys.TMK) > 0 {
		return provisioning.Ack{}, fmt.Errorf("%w: a TMK is held", ErrRequest)
	}
	pub := c.cfg.TerminalKey.Public()
	m, err := c.tmkMessage(c.cfg.Profile.Codes.TMKKey, r)
	if err != nil {
		return provisioning.Ack{}, err
	}
	if err := SetBytes(m, 62, PublicKeyField(pub)); err != nil {
		return provisioning.Ack{}, err
	}
	resp, err := c.exchange(ctx, "tmk-key", m, macAnswer, c.cfg.Header)
	if err != nil {
		return provisioning.Ack{}, err
	}
	ack := c.ack(resp)
	if ack.RC != "00" {
		return ack, nil
	}
	tmk, err := openTMKAnswer(c.cfg.TerminalKey, GetBytes(resp.m, 62))
	if errors.Is(err, ErrTMKCheck) {
		c.cfg.Log.Warn("downloaded TMK check failed: not stored", "stan", r.STAN)
		return ack, &ExchangeError{Op: "tmk-key", Sent: true, Err: err}
	}
	if err != nil {
		return ack, answerErr("tmk-key", err)
	}
	next := Keys{PendingTMK: tmk}
	// Stored before the activation goes: a restart sends it again rather
	// than asking for another key the host would not expect.
	if err := c.ks.SaveKeys(next); err != nil {
		clear(tmk)
		return ack, fmt.Errorf("acquirer: tmk download: %w", err)
	}
	old := c.keys
	c.keys = next
	old.Wipe()
	c.cfg.Log.Info("TMK received, awaiting activation", "tmk", Key(tmk))
	return ack, nil
}

// ActivateTMK sends the pending TMK's check value (351). On 00 the pending
// TMK becomes the TMK, stored; on any other code it is dropped, so that the
// next FetchTMK starts afresh. A failed exchange keeps it pending.
func (c *Client) ActivateTMK(ctx context.Context, r provisioning.AdminRequest) (provisioning.Ack, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.remoteTMK(); err != nil {
		return provisioning.Ack{}, err
	}
	pending := c.keys.PendingTMK
	if len(pending) == 0 || len(c.keys.TMK) > 0 {
		return provisioning.Ack{}, fmt.Errorf("%w: no TMK awaits activation", ErrRequest)
	}
	cv, err := CheckValue(pending)
	if err != nil {
		return provisioning.Ack{}, err
	}
	m, err := c.tmkMessage(c.cfg.Profile.Codes.TMKActivate, r)
	if err != nil {
		return provisioning.Ack{}, err
	}
	if err := SetBytes(m, 62, cv); err != nil {
		return provisioning.Ack{}, err
	}
	resp, err := c.exchange(ctx, "tmk-activate", m, macAnswer, c.cfg.Header)
	if err != nil {
		return provisioning.Ack{}, err
	}
	ack := c.ack(resp)
	if ack.RC != "00" {
		// Only in memory: the file keeps it, and after a restart the host is
		// asked once more, which it refuses again or accepts.
		c.keys.PendingTMK = nil
		pending.Wipe()
		c.cfg.Log.Warn("TMK activation refused: dropped", "rc", ack.RC)
		return ack, nil
	}
	next := Keys{TMK: append(Key(nil), pending...)}
	if err := c.ks.SaveKeys(next); err != nil {
		next.Wipe()
		return ack, fmt.Errorf("acquirer: tmk activation: %w", err)
	}
	old := c.keys
	c.keys = next
	old.Wipe()
	c.cfg.Log.Info("TMK activated", "tmk", next.TMK)
	return ack, nil
}

// tmkMessage is 0800 with 11, 41, 42 and 60 (00, batch 000000 — there is
// none before the first sign-on — and code).
func (c *Client) tmkMessage(code string, r provisioning.AdminRequest) (*iso8583.Message, error) {
	r.Batch = "000000"
	return c.admin("0800", code, r, true)
}

// PublicKeyField is field 62 of the 352 request: DF02 the modulus, DF04 the
// public exponent, each big-endian without leading zeros.
func PublicKeyField(pub *rsa.PublicKey) []byte {
	b, _ := bertlv.Encode([]bertlv.TLV{
		bertlv.NewTag("DF02", pub.N.Bytes()),
		bertlv.NewTag("DF04", big.NewInt(int64(pub.E)).Bytes()),
	})
	return b
}

// ParsePublicKeyField reads a 352 request's field 62 (the host's side, and
// the fuzz target). The modulus must be 1024 to 4096 bits and the exponent
// odd, at least 3 and below 2^31.
func ParsePublicKeyField(b []byte) (*rsa.PublicKey, error) {
	tlvs, err := decodeTLVField(b, 62)
	if err != nil {
		return nil, err
	}
	m, err := tlvMap(tlvs)
	if err != nil {
		return nil, err
	}
	n, e := m["DF02"], m["DF04"]
	if len(n) == 0 || len(e) == 0 || len(e) > 4 || n[0] == 0 || e[0] == 0 {
		return nil, bad62("no usable public key")
	}
	mod := new(big.Int).SetBytes(n)
	exp := new(big.Int).SetBytes(e)
	if mod.BitLen() < 1024 || mod.BitLen() > 4096 || exp.BitLen() > 31 || exp.Int64() < 3 || exp.Bit(0) == 0 {
		return nil, bad62("public key outside what a terminal uses")
	}
	return &rsa.PublicKey{N: mod, E: int(exp.Int64())}, nil
}

// openTMKAnswer decrypts a 352 answer's field 62 under tk and returns the
// TMK when it is a DES key length and its check value matches; a TMK that
// does not decrypt, or does not match, is ErrTMKCheck (the two are not told
// apart: both are a key the terminal will not take).
func openTMKAnswer(tk TerminalKey, f62 []byte) (Key, error) {
	ct, cv, err := ParseTMKAnswer(f62, tk.Public().Size())
	if err != nil {
		return nil, err
	}
	tmk, err := tk.Decrypt(ct)
	if err != nil {
		return nil, ErrTMKCheck
	}
	if !validKeyLen(len(tmk)) || !checkValueMatches(tmk, cv) {
		clear(tmk)
		return nil, ErrTMKCheck
	}
	return tmk, nil
}

// ParseTMKAnswer splits a 352 answer's field 62 into the RSA ciphertext
// (size bytes, the modulus's length) and the 4-byte check value.
func ParseTMKAnswer(b []byte, size int) (ciphertext, cv []byte, err error) {
	if size <= 0 || len(b) != size+4 {
		return nil, nil, bad62("TMK answer of %d bytes, want %d", len(b), size+4)
	}
	return b[:size], b[size:], nil
}
