package acquirer

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/posagent/posagent/agent/store"
)

// TerminalKey is the terminal's own RSA key pair, under which a remote TMK
// download delivers the terminal master key (Profile.RemoteTMK). The public
// half goes to the host; the private half never leaves whatever holds it. A
// secure element implements it with a key generated inside the element; the
// file implementation (FileTerminalKey) stands in where there is none.
type TerminalKey interface {
	// Public is the key the host encrypts the TMK under.
	Public() *rsa.PublicKey
	// Decrypt undoes the host's RSAES-PKCS1-v1_5 encryption (RFC 8017
	// §7.2) and returns the clear TMK, which the caller wipes. An error
	// says nothing about the ciphertext beyond "it did not decrypt".
	Decrypt(ciphertext []byte) ([]byte, error)
}

// TerminalKeyBits is the size of a key FileTerminalKey generates: its
// modulus and the host's ciphertext (256 bytes) fit field 62 with room to spare.
const TerminalKeyBits = 2048

// ErrTerminalKey is a terminal key file that exists but cannot be used.
var ErrTerminalKey = errors.New("acquirer: terminal key file is corrupt")

// FileTerminalKey is a TerminalKey kept as a PEM file (PKCS #1) of mode 0600
// in the state directory, beside the key store and under the same rules: a
// regular file, not a link, mode exactly 0600, owned by this process's user
// (ErrKeyFileUnsafe otherwise). It is generated once, with crypto/rand, the
// first time it is opened; after that the same key is read, so a download
// interrupted by a power cut decrypts under the key the host was given.
// The private key is never logged and String shows only a fingerprint.
type FileTerminalKey struct {
	path string
	mu   sync.Mutex
	key  *rsa.PrivateKey
}

var _ TerminalKey = (*FileTerminalKey)(nil)

// generateKey is a test seam: 2048-bit keys take a while to make, and tests
// use a smaller one.
var generateKey = func(r io.Reader) (*rsa.PrivateKey, error) { return rsa.GenerateKey(r, TerminalKeyBits) }

// OpenFileTerminalKey reads the key at path, or generates and writes one
// when there is no file. A file that exists but does not hold an RSA
// private key is ErrTerminalKey, never replaced: the host may already hold
// its public half.
func OpenFileTerminalKey(path string) (*FileTerminalKey, error) {
	b, err := readKeyFile(path)
	switch {
	case errors.Is(err, ErrNoKeys):
		k, err := generateKey(rand.Reader)
		if err != nil {
			return nil, fmt.Errorf("acquirer: terminal key: %w", err)
		}
		der := x509.MarshalPKCS1PrivateKey(k)
		out := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: der})
		clear(der)
		werr := store.WriteFile(path, out, 0o600)
		clear(out)
		if werr != nil {
			return nil, fmt.Errorf("acquirer: terminal key: %w", werr)
		}
		return &FileTerminalKey{path: path, key: k}, nil
	case err != nil:
		return nil, err
	}
	defer clear(b)
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "RSA PRIVATE KEY" {
		return nil, ErrTerminalKey
	}
	defer clear(blk.Bytes)
	k, err := x509.ParsePKCS1PrivateKey(blk.Bytes)
	if err != nil || k.N.BitLen() < 1024 {
		return nil, ErrTerminalKey
	}
	return &FileTerminalKey{path: path, key: k}, nil
}

// Public returns the public half.
func (f *FileTerminalKey) Public() *rsa.PublicKey {
	f.mu.Lock()
	defer f.mu.Unlock()
	return &f.key.PublicKey
}

// Decrypt is RSAES-PKCS1-v1_5 decryption with the private key.
func (f *FileTerminalKey) Decrypt(ciphertext []byte) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	// PKCS #1 v1.5 because that is what the host sends (docs/acquirer-
	// procedure.md). Its padding oracle is closed where it is used: a
	// ciphertext that does not decrypt and one whose TMK fails the check
	// value end the same way (ErrTMKCheck, no activation sent), so nothing
	// on the link learns which it was.
	//lint:ignore SA1019 the acquirer's protocol is PKCS #1 v1.5; see above
	out, err := rsa.DecryptPKCS1v15(nil, f.key, ciphertext)
	if err != nil {
		return nil, errors.New("acquirer: terminal key: the TMK does not decrypt")
	}
	return out, nil
}

// String names the file and the key's size, nothing of the key.
func (f *FileTerminalKey) String() string {
	return fmt.Sprintf("terminal key %s (RSA %d)", f.path, f.key.N.BitLen())
}

// GoString hides the key from %#v.
func (f *FileTerminalKey) GoString() string { return f.String() }
