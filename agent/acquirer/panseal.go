package acquirer

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"

	"github.com/posagent/posagent/provisioning"
	"github.com/posagent/posagent/provisioning/pan"
)

// The client keeps the PAN of an in-flight message sealed in the flow's
// checkpoint, so a reversal after a restart can carry field 2 while the
// state file never holds a readable card number (PCI DSS 3.4).
var _ provisioning.PANSealer = (*Client)(nil)

// ErrSealed is returned for a sealed PAN that does not open: another TMK
// (re-injected since), a damaged checkpoint, or not a sealed PAN at all.
var ErrSealed = errors.New("acquirer: sealed PAN does not open")

// sealVersion prefixes every sealed PAN, so the layout can change without
// guessing at old checkpoints. Version 2 binds the caller's associated data
// (the message the PAN belongs to); version 1 seals bound nothing and no
// longer open.
const sealVersion = 2

// sealInfo separates this key from anything else ever derived from the TMK.
const sealInfo = "posagent acquirer: PAN at rest v1"

// sealKey derives the AES-256 key that seals PANs at rest from the TMK. The
// TMK already lives in the key store, apart from the checkpoint: a copy of
// the state file alone reveals no PAN, and no second secret has to be kept.
func sealKey(tmk Key) ([]byte, error) {
	if len(tmk) == 0 {
		return nil, ErrNoKeys
	}
	return hkdf.Key(sha256.New, tmk, nil, sealInfo, 32)
}

// SealPAN encrypts p (AES-256-GCM under a key derived from the TMK) for the
// checkpoint: version byte, 12-byte nonce, ciphertext and tag. The version
// byte and ad are authenticated: the seal opens only with the same ad.
func (c *Client) SealPAN(p pan.PAN, ad []byte) ([]byte, error) {
	if p.IsZero() {
		return nil, fmt.Errorf("%w: no PAN to seal", ErrRequest)
	}
	c.mu.Lock()
	tmk := c.keys.TMK
	c.mu.Unlock()
	aead, err := sealAEAD(tmk)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 1+aead.NonceSize(), 1+aead.NonceSize()+len(p.Reveal())+aead.Overhead())
	out[0] = sealVersion
	if _, err := rand.Read(out[1:]); err != nil {
		return nil, fmt.Errorf("acquirer: seal PAN: %w", err)
	}
	return aead.Seal(out, out[1:], []byte(p.Reveal()), sealAD(out[:1], ad)), nil
}

// sealAD is what the AEAD authenticates besides the ciphertext.
func sealAD(version, ad []byte) []byte {
	return append(append([]byte(nil), version...), ad...)
}

// OpenPAN is the inverse of SealPAN. Its error is ErrSealed whatever went
// wrong, so it cannot serve as an oracle for the content.
func (c *Client) OpenPAN(sealed, ad []byte) (pan.PAN, error) {
	c.mu.Lock()
	tmk := c.keys.TMK
	c.mu.Unlock()
	aead, err := sealAEAD(tmk)
	if err != nil {
		return pan.PAN{}, err
	}
	if len(sealed) < 1+aead.NonceSize()+aead.Overhead() || sealed[0] != sealVersion {
		return pan.PAN{}, ErrSealed
	}
	ns := 1 + aead.NonceSize()
	digits, err := aead.Open(nil, sealed[1:ns], sealed[ns:], sealAD(sealed[:1], ad))
	if err != nil {
		return pan.PAN{}, ErrSealed
	}
	p, err := pan.Parse(string(digits))
	clearBytes(digits)
	if err != nil {
		return pan.PAN{}, ErrSealed
	}
	return p, nil
}

func sealAEAD(tmk Key) (cipher.AEAD, error) {
	k, err := sealKey(tmk)
	if err != nil {
		return nil, fmt.Errorf("acquirer: seal key: %w", err)
	}
	defer clearBytes(k)
	b, err := aes.NewCipher(k)
	if err != nil {
		return nil, fmt.Errorf("acquirer: seal key: %w", err)
	}
	return cipher.NewGCM(b)
}
