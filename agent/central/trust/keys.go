package trust

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"regexp"
	"sort"
)

// kidPattern keeps key ids short and printable: they are echoed in refusals
// and logs, and they name files in central's key store.
var kidPattern = regexp.MustCompile(`^[A-Za-z0-9._-]{1,32}$`)

// ValidKID reports whether s can be a key id: 1 to 32 characters of
// A-Z a-z 0-9 . _ -.
func ValidKID(s string) bool { return kidPattern.MatchString(s) }

// Key is one of central's verification keys and its id.
type Key struct {
	ID     string
	Public ed25519.PublicKey
}

// KeyRing is the set of central keys a terminal accepts signatures from. A
// signed payload names its key id (kid); only that key is tried. Rotation is
// listing the new key beside the old one until every signer uses it;
// revocation is moving the old kid to the revoked list, which turns its
// signatures from "unknown key" into "revoked key" for whoever reads the
// refusal. A KeyRing is immutable and safe for concurrent use.
type KeyRing struct {
	keys    map[string]ed25519.PublicKey
	revoked map[string]bool
}

// Refusals of Verify; callers map them to their own codes.
var (
	ErrUnknownKey   = errors.New("trust: no configured key has this kid")
	ErrRevokedKey   = errors.New("trust: the key with this kid is revoked")
	ErrBadSignature = errors.New("trust: the signature does not verify")
)

// NewKeyRing checks and copies keys and revoked. A kid that is malformed,
// listed twice, or both listed and revoked is an error, as is a key of the
// wrong size: a ring that means two things is a configuration mistake.
func NewKeyRing(keys []Key, revoked []string) (*KeyRing, error) {
	r := &KeyRing{keys: map[string]ed25519.PublicKey{}, revoked: map[string]bool{}}
	for _, kid := range revoked {
		if !ValidKID(kid) {
			return nil, errors.New("trust: a revoked kid is not 1-32 characters of A-Z a-z 0-9 . _ -")
		}
		r.revoked[kid] = true
	}
	for _, k := range keys {
		switch {
		case !ValidKID(k.ID):
			return nil, errors.New("trust: a kid is not 1-32 characters of A-Z a-z 0-9 . _ -")
		case r.keys[k.ID] != nil:
			return nil, fmt.Errorf("trust: kid %s is listed twice", k.ID)
		case r.revoked[k.ID]:
			return nil, fmt.Errorf("trust: kid %s is both listed and revoked", k.ID)
		case len(k.Public) != ed25519.PublicKeySize:
			return nil, fmt.Errorf("trust: key %s is not an Ed25519 public key", k.ID)
		}
		r.keys[k.ID] = append(ed25519.PublicKey(nil), k.Public...)
	}
	return r, nil
}

// KIDs returns the listed key ids, sorted.
func (r *KeyRing) KIDs() []string {
	if r == nil {
		return nil
	}
	ids := make([]string, 0, len(r.keys))
	for id := range r.keys {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// Verify checks sig over msg with the key named kid. A nil ring has no keys.
func (r *KeyRing) Verify(kid string, msg, sig []byte) error {
	if r == nil {
		return ErrUnknownKey
	}
	if r.revoked[kid] {
		return ErrRevokedKey
	}
	k, ok := r.keys[kid]
	if !ok {
		return ErrUnknownKey
	}
	if len(sig) != ed25519.SignatureSize || !ed25519.Verify(k, msg, sig) {
		return ErrBadSignature
	}
	return nil
}

// GenerateKey makes a key pair and returns both halves as PEM: the private
// key as PKCS #8 ("PRIVATE KEY") and the public key as PKIX ("PUBLIC KEY"),
// the forms `openssl genpkey -algorithm ed25519` and `openssl pkey -pubout`
// read and write.
func GenerateKey() (privPEM, pubPEM []byte, err error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	p8, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, nil, err
	}
	pk, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: p8}),
		pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pk}), nil
}

// ParsePrivateKey reads a PEM PKCS #8 Ed25519 private key. Errors never
// include the key's bytes.
func ParsePrivateKey(b []byte) (ed25519.PrivateKey, error) {
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "PRIVATE KEY" {
		return nil, errors.New("trust: private key: want a PEM \"PRIVATE KEY\" (PKCS #8) block")
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, errors.New("trust: private key: not PKCS #8")
	}
	ek, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, errors.New("trust: private key: not Ed25519")
	}
	return ek, nil
}

// ParsePublicKey reads a PEM PKIX Ed25519 public key.
func ParsePublicKey(b []byte) (ed25519.PublicKey, error) {
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "PUBLIC KEY" {
		return nil, errors.New("trust: public key: want a PEM \"PUBLIC KEY\" block")
	}
	k, err := x509.ParsePKIXPublicKey(blk.Bytes)
	if err != nil {
		return nil, errors.New("trust: public key: not PKIX")
	}
	ek, ok := k.(ed25519.PublicKey)
	if !ok {
		return nil, errors.New("trust: public key: not Ed25519")
	}
	return ek, nil
}

// LoadPublicKey reads ParsePublicKey's format from a file.
func LoadPublicKey(path string) (ed25519.PublicKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("trust: public key: %w", err)
	}
	return ParsePublicKey(b)
}
