package acquirer

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/posagent/posagent/agent/testkit/golden"
	"github.com/posagent/posagent/provisioning"
)

// testTerminalKey is the TEST-ONLY 1024-bit key of testdata/tmk (made by
// openssl genrsa), read without the file's mode check: git does not keep
// the 0600 the real file must have.
func testTerminalKey(t testing.TB) *FileTerminalKey {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "tmk", "terminal-key-TEST-ONLY.pem"))
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	k, err := x509.ParsePKCS1PrivateKey(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return &FileTerminalKey{path: "test", key: k}
}

var testTMK = "0123456789ABCDEFFEDCBA9876543210"

func remoteTMKConfig(tk TerminalKey) func(*Config) {
	return func(c *Config) {
		c.Profile, _ = LookupProfile("remote-tmk")
		c.TerminalKey = tk
	}
}

// tmkAnswer is the 352 answer's field 62: tmk under pub (Go's PKCS#1
// v1.5; TestTMKOpenSSL uses openssl's), and cv.
func tmkAnswer(t testing.TB, pub *rsa.PublicKey, tmk, cv []byte) []byte {
	t.Helper()
	//lint:ignore SA1019 the host's side of the protocol
	ct, err := rsa.EncryptPKCS1v15(rand.Reader, pub, tmk)
	if err != nil {
		t.Fatal(err)
	}
	return append(ct, cv...)
}

func mustCV(t testing.TB, k []byte) []byte {
	t.Helper()
	cv, err := CheckValue(k)
	if err != nil {
		t.Fatal(err)
	}
	return cv
}

var tmkReq = provisioning.AdminRequest{Terminal: terminal, STAN: 7}

// TestGoldenTMK pins both requests of the download byte for byte.
func TestGoldenTMK(t *testing.T) {
	tk := testTerminalKey(t)
	tmk := mustHex(t, testTMK)
	for _, tc := range []struct {
		name string
		keys Keys
		a    answer
		call func(c *Client) (provisioning.Ack, error)
		want provisioning.TMKState
	}{
		{"tmk-key", Keys{}, answer{fields: map[int]string{39: "00"}, bin: map[int][]byte{62: tmkAnswer(t, tk.Public(), tmk, mustCV(t, tmk))}},
			func(c *Client) (provisioning.Ack, error) { return c.FetchTMK(context.Background(), tmkReq) }, provisioning.TMKPending},
		{"tmk-activate", Keys{PendingTMK: tmk}, answer{fields: map[int]string{39: "00"}},
			func(c *Client) (provisioning.Ack, error) { return c.ActivateTMK(context.Background(), tmkReq) }, provisioning.TMKHeld},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var c *Client
			wire, err := exchangeOnce(t, tc.keys, tc.a, func(cl *Client) error {
				c = cl
				a, err := tc.call(cl)
				if err == nil && a.RC != "00" {
					t.Errorf("%+v", a)
				}
				return err
			}, remoteTMKConfig(tk))
			if err != nil {
				t.Fatal(err)
			}
			if got := c.TMKState(); got != tc.want {
				t.Fatalf("state %s, want %s", got, tc.want)
			}
			text := annotateFrame(t, wire)
			golden.Check(t, filepath.Join("testdata", "golden", tc.name+".txt"), text)
			_, v := requestMessage(t, wire)
			f60, _ := ParseField60(v.get(60))
			if f60.Code != map[string]string{"tmk-key": "352", "tmk-activate": "351"}[tc.name] || !v.has(11) || v.has(64) {
				t.Fatalf("60 %+v, 11 %v, 64 %v", f60, v.has(11), v.has(64))
			}
			if tc.name == "tmk-activate" && !bytes.Equal(v.bytes(62), mustCV(t, tmk)) {
				t.Fatalf("activation 62 %X", v.bytes(62))
			}
			if tc.name == "tmk-key" {
				pub, err := ParsePublicKeyField(v.bytes(62))
				if err != nil || !pub.Equal(tk.Public()) {
					t.Fatalf("62 is not the terminal's public key: %v", err)
				}
			}
		})
	}
}

// TestTMKOpenSSL: openssl encrypts the TMK under the terminal's public key
// (pkeyutl, PKCS#1 v1.5) and computes its check value (3DES-ECB of 8 zero
// bytes, first 4); the client decrypts the one and accepts the other.
func TestTMKOpenSSL(t *testing.T) {
	path, err := exec.LookPath("openssl")
	if err != nil {
		t.Skip("openssl not installed")
	}
	tk := testTerminalKey(t)
	dir := t.TempDir()
	der, err := x509.MarshalPKIXPublicKey(tk.Public())
	if err != nil {
		t.Fatal(err)
	}
	pubPath := filepath.Join(dir, "pub.pem")
	if err := os.WriteFile(pubPath, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	tmk := mustHex(t, testTMK)
	run := func(stdin []byte, args ...string) []byte {
		cmd := exec.Command(path, args...)
		cmd.Stdin = bytes.NewReader(stdin)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("openssl %v: %v: %s", args, err, stderr.String())
		}
		return out
	}
	ct := run(tmk, "pkeyutl", "-encrypt", "-pubin", "-inkey", pubPath, "-pkeyopt", "rsa_padding_mode:pkcs1")
	cv := run(make([]byte, 8), "enc", "-des-ede", "-nopad", "-K", testTMK)[:4]
	if !bytes.Equal(cv, mustCV(t, tmk)) {
		t.Fatalf("CheckValue %X, openssl %X", mustCV(t, tmk), cv)
	}
	ks := &MemKeyStore{}
	_, err = exchangeOnceStore(t, ks, answer{fields: map[int]string{39: "00"}, bin: map[int][]byte{62: append(ct, cv...)}},
		func(c *Client) error { _, err := c.FetchTMK(context.Background(), tmkReq); return err }, remoteTMKConfig(tk))
	if err != nil {
		t.Fatal(err)
	}
	k, _ := ks.LoadKeys()
	if !bytes.Equal(k.PendingTMK, tmk) || len(k.TMK) != 0 {
		t.Fatalf("stored %v", k)
	}
	// And the other way: what the terminal key decrypts, openssl encrypted.
	priv := filepath.Join(dir, "priv.pem")
	if err := os.WriteFile(priv, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(tk.key)}), 0o600); err != nil {
		t.Fatal(err)
	}
	//lint:ignore SA1019 the host's side of the protocol
	goCT, _ := rsa.EncryptPKCS1v15(rand.Reader, tk.Public(), tmk)
	if got := run(goCT, "pkeyutl", "-decrypt", "-inkey", priv, "-pkeyopt", "rsa_padding_mode:pkcs1"); !bytes.Equal(got, tmk) {
		t.Fatalf("openssl decrypts to %X", got)
	}
}

// exchangeOnceStore is exchangeOnce on a key store the test keeps.
func exchangeOnceStore(t *testing.T, ks KeyStore, a answer, call func(c *Client) error, edits ...func(*Config)) ([]byte, error) {
	t.Helper()
	dial, got := fakeHost(t, func(req Frame) []byte { return a.frame(t, req) })
	cfg := Config{Addr: "host", Dial: dial, Log: quiet}
	for _, e := range edits {
		e(&cfg)
	}
	c, err := NewClient(cfg, ks)
	if err != nil {
		t.Fatal(err)
	}
	err = call(c)
	req := <-got
	wire, _ := req.Encode()
	return wire, err
}

// TestTMKRefused: a TMK whose check value is not the host's, one that does
// not decrypt, a field 62 of the wrong length and a refusal all leave
// nothing stored, with an error the flow can name.
func TestTMKRefused(t *testing.T) {
	tk := testTerminalKey(t)
	tmk := mustHex(t, testTMK)
	wrong := mustCV(t, tmk)
	wrong[3] ^= 1
	junk := bytes.Repeat([]byte{0x42}, tk.Public().Size())
	for _, tc := range []struct {
		name string
		f62  []byte
		rc   string
		code string
	}{
		{"wrong check value", tmkAnswer(t, tk.Public(), tmk, wrong), "00", "E_TMK_CHECK"},
		{"does not decrypt", append(junk, mustCV(t, tmk)...), "00", "E_TMK_CHECK"},
		{"not a key length", tmkAnswer(t, tk.Public(), tmk[:15], mustCV(t, tmk)), "00", "E_TMK_CHECK"},
		{"short 62", tmkAnswer(t, tk.Public(), tmk, mustCV(t, tmk))[:100], "00", "E_DOWNLOAD_DATA"},
		{"refused", nil, "96", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			ks := &FileKeyStore{Path: filepath.Join(dir, "keys.json")}
			a := answer{fields: map[int]string{39: tc.rc}}
			if tc.f62 != nil {
				a.bin = map[int][]byte{62: tc.f62}
			}
			var c *Client
			_, err := exchangeOnceStore(t, ks, a, func(cl *Client) error {
				c = cl
				ack, err := cl.FetchTMK(context.Background(), tmkReq)
				if err == nil && ack.RC != tc.rc {
					t.Errorf("RC %s", ack.RC)
				}
				return err
			}, remoteTMKConfig(tk))
			var ce interface{ FailureCode() string }
			switch {
			case tc.code == "" && err != nil:
				t.Fatal(err)
			case tc.code != "" && (!errors.As(err, &ce) || ce.FailureCode() != tc.code):
				t.Fatalf("err %v, want code %s", err, tc.code)
			}
			if _, err := ks.LoadKeys(); !errors.Is(err, ErrNoKeys) {
				t.Fatalf("something was stored (%v)", err)
			}
			if c.TMKState() != provisioning.TMKMissing {
				t.Fatalf("state %s", c.TMKState())
			}
			if tc.code == "E_TMK_CHECK" && strings.Contains(err.Error(), hex.EncodeToString(tmk)) {
				t.Fatal("the error shows the key")
			}
		})
	}
}

// TestTMKPowerCut: a TMK received and not activated survives a restart as
// pending, is used for no sign-on, and is activated by the next client.
// An activation the host refuses drops it.
func TestTMKPowerCut(t *testing.T) {
	tk := testTerminalKey(t)
	tmk := mustHex(t, testTMK)
	dir := t.TempDir()
	ks := &FileKeyStore{Path: filepath.Join(dir, "keys.json")}
	if _, err := exchangeOnceStore(t, ks, answer{fields: map[int]string{39: "00"}, bin: map[int][]byte{62: tmkAnswer(t, tk.Public(), tmk, mustCV(t, tmk))}},
		func(c *Client) error { _, err := c.FetchTMK(context.Background(), tmkReq); return err }, remoteTMKConfig(tk)); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(ks.Path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file %v %v", fi.Mode(), err)
	}
	// The restart: a new client on the same store.
	c, err := NewClient(Config{Addr: "host", Log: quiet, Dial: func(context.Context, string, string) (net.Conn, error) {
		t.Fatal("a sign-on went out on a TMK not activated")
		return nil, nil
	}, Profile: func() Profile { p, _ := LookupProfile("remote-tmk"); return p }(), TerminalKey: tk}, ks)
	if err != nil {
		t.Fatal(err)
	}
	if c.TMKState() != provisioning.TMKPending {
		t.Fatalf("state %s", c.TMKState())
	}
	if _, err := c.SignOn(context.Background(), provisioning.SignOnRequest{Terminal: terminal, STAN: 8}); !errors.Is(err, ErrNoTMK) {
		t.Fatalf("sign-on: %v", err)
	}
	if _, err := exchangeOnceStore(t, ks, answer{fields: map[int]string{39: "00"}},
		func(c *Client) error { _, err := c.ActivateTMK(context.Background(), tmkReq); return err }, remoteTMKConfig(tk)); err != nil {
		t.Fatal(err)
	}
	k, err := ks.LoadKeys()
	if err != nil || !bytes.Equal(k.TMK, tmk) || len(k.PendingTMK) != 0 {
		t.Fatalf("after activation %v %v", k, err)
	}

	// A refused activation: dropped in memory, the next download starts over.
	ks2 := &MemKeyStore{}
	_ = ks2.SaveKeys(Keys{PendingTMK: tmk})
	var c2 *Client
	if _, err := exchangeOnceStore(t, ks2, answer{fields: map[int]string{39: "A7"}},
		func(c *Client) error { c2 = c; _, err := c.ActivateTMK(context.Background(), tmkReq); return err }, remoteTMKConfig(tk)); err != nil {
		t.Fatal(err)
	}
	if c2.TMKState() != provisioning.TMKMissing {
		t.Fatalf("state after a refusal %s", c2.TMKState())
	}
}

// TestFileTerminalKey: generated once, 0600, the same key on reopening, a
// file of another mode or content refused and never replaced.
func TestFileTerminalKey(t *testing.T) {
	old := generateKey
	generateKey = func(r io.Reader) (*rsa.PrivateKey, error) { return rsa.GenerateKey(r, 1024) }
	t.Cleanup(func() { generateKey = old })
	path := filepath.Join(t.TempDir(), "terminal-key.pem")
	k1, err := OpenFileTerminalKey(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v %v", fi.Mode(), err)
	}
	k2, err := OpenFileTerminalKey(path)
	if err != nil || !k2.Public().Equal(k1.Public()) {
		t.Fatalf("reopened: %v", err)
	}
	//lint:ignore SA1019 the host's side of the protocol
	ct, _ := rsa.EncryptPKCS1v15(rand.Reader, k1.Public(), []byte("sixteen byte key"))
	if pt, err := k2.Decrypt(ct); err != nil || string(pt) != "sixteen byte key" {
		t.Fatalf("decrypt: %q %v", pt, err)
	}
	if s := k1.String() + k1.GoString(); strings.Contains(s, k1.key.D.String()[:20]) {
		t.Fatal("String shows the private key")
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenFileTerminalKey(path); !errors.Is(err, ErrKeyFileUnsafe) {
		t.Fatalf("0644: %v", err)
	}
	if err := os.WriteFile(path, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	_ = os.Chmod(path, 0o600)
	if _, err := OpenFileTerminalKey(path); !errors.Is(err, ErrTerminalKey) {
		t.Fatalf("garbage: %v", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "not a key" {
		t.Fatal("a corrupt key file was replaced")
	}
}

// TestKeyFilePendingTMK: the store keeps a pending TMK alone or beside a
// TMK, and refuses working keys without a TMK.
func TestKeyFilePendingTMK(t *testing.T) {
	tmk := mustHex(t, testTMK)
	ks := &FileKeyStore{Path: filepath.Join(t.TempDir(), "keys.json")}
	for _, k := range []Keys{{PendingTMK: tmk}, {TMK: tmk, PendingTMK: mustHex(t, "1111111111111111AAAAAAAAAAAAAAAA")}} {
		if err := ks.SaveKeys(k); err != nil {
			t.Fatal(err)
		}
		got, err := ks.LoadKeys()
		if err != nil || !bytes.Equal(got.TMK, k.TMK) || !bytes.Equal(got.PendingTMK, k.PendingTMK) {
			t.Fatalf("%v %v", got, err)
		}
	}
	if err := ks.SaveKeys(Keys{PendingTMK: tmk, Mode: DoubleDES, Working: WorkingKeys{MAK: tmk}}); err == nil {
		t.Fatal("working keys without a TMK were saved")
	}
	for _, f := range []string{
		`{"schema": 3, "pending_tmk": "0123456789ABCDEFFEDCBA9876543210", "pending_tmk_kcv": "000000"}`,
		`{"schema": 3, "pending_tmk": "0123456789ABCDEFFEDCBA9876543210", "pending_tmk_kcv": "08D7B4", "mode": "004"}`,
		`{"schema": 2, "pending_tmk": "0123456789ABCDEFFEDCBA9876543210", "pending_tmk_kcv": "08D7B4"}`,
	} {
		if _, err := decodeKeyFile([]byte(f)); !errors.Is(err, ErrKeyFile) {
			t.Fatalf("%s: %v", f, err)
		}
	}
}

// TestRemoteTMKProfile: the profile validates, and a client of it needs a
// terminal key but no TMK.
func TestRemoteTMKProfile(t *testing.T) {
	p, ok := LookupProfile("remote-tmk")
	if !ok || p.Validate() != nil || p.RemoteTMK != TMKRSA || p.Codes.TMKKey != "352" || p.Codes.TMKActivate != "351" {
		t.Fatalf("%+v", p)
	}
	bad := p
	bad.Codes.TMKActivate = p.Codes.AIDEnd
	if bad.Validate() == nil {
		t.Fatal("a TMK code shared with the AID end passed")
	}
	if _, err := NewClient(Config{Addr: "h", Profile: p, Log: quiet}, &MemKeyStore{}); err == nil {
		t.Fatal("no terminal key accepted")
	}
	if _, err := NewClient(Config{Addr: "h", Log: quiet}, &MemKeyStore{}); !errors.Is(err, ErrNoKeys) {
		t.Fatalf("common profile without a TMK: %v", err)
	}
}

// FuzzPublicKeyField: the 352 request's parser (the host's side) never
// panics, and what it accepts encodes back to the same key.
func FuzzPublicKeyField(f *testing.F) {
	f.Add(PublicKeyField(testTerminalKey(f).Public()))
	f.Add([]byte{0xDF, 0x02, 0x01, 0x05, 0xDF, 0x04, 0x01, 0x03})
	f.Add([]byte{0xDF, 0x02, 0x84, 0xFF, 0xFF, 0xFF, 0xFF})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		pub, err := ParsePublicKeyField(b)
		if err != nil {
			return
		}
		again, err := ParsePublicKeyField(PublicKeyField(pub))
		if err != nil || !again.Equal(pub) {
			t.Fatalf("re-encoded key does not read back: %v", err)
		}
	})
}

// FuzzTMKAnswer: the 352 answer's field 62 never panics the terminal, and
// a TMK is returned only with a matching check value.
func FuzzTMKAnswer(f *testing.F) {
	tk := testTerminalKey(f)
	tmk := mustHex(f, testTMK)
	good := tmkAnswer(f, tk.Public(), tmk, mustCV(f, tmk))
	f.Add(good)
	f.Add(good[:len(good)-1])
	f.Add(append(bytes.Repeat([]byte{0}, tk.Public().Size()), 1, 2, 3, 4))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		k, err := openTMKAnswer(tk, b)
		if err != nil {
			if k != nil {
				t.Fatal("a key with an error")
			}
			return
		}
		if !checkValueMatches(k, b[len(b)-4:]) {
			t.Fatal("a TMK whose check value does not match")
		}
	})
}
