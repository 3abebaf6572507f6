package command

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"path/filepath"
	"testing"
	"time"

	"github.com/posagent/posagent/agent/central/mqtt"
	"github.com/posagent/posagent/agent/central/trust"
)

const (
	tid    = "10000001"
	kid    = "central-2026a"
	nonce0 = "00112233445566778899aabbccddeeff"
)

// testKey is fixed so that the committed seed corpora hold commands that
// verify.
var testKey = ed25519.NewKeyFromSeed([]byte("posagent command fuzz seed 32 by"))

// t0 is when the test commands are issued; the terminal's clock reads t0+1m.
var t0 = time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)

func testRing(t testing.TB) *trust.KeyRing {
	t.Helper()
	r, err := trust.NewKeyRing([]trust.Key{{ID: kid, Public: testKey.Public().(ed25519.PublicKey)}}, []string{"central-2025"})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func randomNonce(t testing.TB) string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b[:])
}

// envelope is a valid command for this terminal issued at t0.
func envelope(t testing.TB, id, name, args string) Envelope {
	e := Envelope{ID: id, Name: name, TID: tid, Nonce: randomNonce(t), IssuedAt: t0, ExpiresAt: t0.Add(5 * time.Minute), KID: kid}
	if args != "" {
		e.Args = []byte(args)
	}
	return e
}

func signEnv(t testing.TB, e Envelope, key ed25519.PrivateKey) []byte {
	t.Helper()
	b, err := Sign(e, key)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func signedPayload(t testing.TB, id, name string) string {
	return string(signEnv(t, envelope(t, id, name, ""), testKey))
}

func verifierIn(t testing.TB, dir string, now time.Time) *Verifier {
	t.Helper()
	f, err := trust.OpenFloor(filepath.Join(dir, "time-floor.json"))
	if err != nil {
		t.Fatal(err)
	}
	return &Verifier{Keys: testRing(t), TID: tid, StatePath: filepath.Join(dir, "command-nonces.json"), Floor: f,
		Now: func() time.Time { return now }}
}

func newServer(t testing.TB, tr Transport, h Handler) *Server {
	return &Server{TID: tid, Handler: h, Transport: tr, Log: quiet(), Verifier: verifierIn(t, t.TempDir(), t0.Add(time.Minute))}
}

// restarted is s after a restart: the same files, nothing in memory.
func restarted(t testing.TB, s *Server) *Server {
	v := verifierIn(t, filepath.Dir(s.Verifier.StatePath), t0.Add(time.Minute))
	return &Server{TID: tid, Handler: s.Handler, Transport: s.Transport, Log: quiet(), Verifier: v}
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// liveServer runs a command server for tid over tr, on the session made
// from o, until the test ends: the verifier on the real clock, the handler
// h. The session is started after the server listens and closed at the end.
func liveServer(t *testing.T, ctx context.Context, o mqtt.Options, tid string, h Handler, tr func(*mqtt.Client) Transport) *mqtt.Client {
	t.Helper()
	link, err := mqtt.New(o)
	if err != nil {
		t.Fatal(err)
	}
	v := verifierIn(t, t.TempDir(), time.Now())
	v.TID, v.Now = tid, nil // the real clock
	s := &Server{TID: tid, Handler: h, Transport: tr(link), Log: quiet(), Verifier: v}
	if err := s.Listen(); err != nil {
		t.Fatal(err)
	}
	go s.Run(ctx)
	if err := link.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cctx, ccancel := context.WithTimeout(context.Background(), wait)
		defer ccancel()
		_ = link.Close(cctx)
	})
	return link
}
