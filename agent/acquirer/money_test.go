package acquirer

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/moov-io/iso8583"

	"github.com/posagent/posagent/agent/testkit/bench"
	"github.com/posagent/posagent/provisioning"
)

// What the client tells the flow an answer is worth (Integrity), and the
// answers it refuses to pass on at all.

func testKey(s string) Key {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

var testMAK = testKey("2222222222222222BBBBBBBBBBBBBBBB")

func signedOn(mode KeyMode) Keys {
	return Keys{TMK: testKey("0123456789ABCDEFFEDCBA9876543210"), Mode: mode,
		Working: WorkingKeys{MAK: testMAK, PIK: testMAK, TDK: testMAK}}
}

// answerer builds the host's answer to a request: edit changes it before it
// is MACed under macKey (nil: no MAC).
func answerer(t *testing.T, rc string, macKey Key, alg MACAlgorithm, edit func(req, resp *iso8583.Message)) func(Frame) []byte {
	return func(req Frame) []byte {
		m, err := Unpack(req.Message)
		if err != nil {
			t.Error(err)
			return nil
		}
		mti, _ := m.GetMTI()
		b := []byte(mti)
		b[2]++
		r := NewMessage(string(b))
		for _, id := range []int{3, 4, 11, 25, 41, 42, 49, 60} {
			if v := Get(m, id); v != "" {
				_ = Set(r, id, v)
			}
		}
		_ = Set(r, 37, "153012000001")
		_ = Set(r, 38, "654321")
		_ = Set(r, 39, rc)
		if edit != nil {
			edit(m, r)
		}
		var body []byte
		if macKey != nil {
			body, err = PackMAC(r, alg, macKey)
		} else {
			body, err = Pack(r)
		}
		if err != nil {
			t.Error(err)
			return nil
		}
		out, _ := Frame{TPDU: req.TPDU.Swap(), Header: req.Header, Message: body}.Encode()
		return out
	}
}

func sale(c *Client) (provisioning.HostResponse, error) {
	return c.Sale(context.Background(), provisioning.SaleRequest{Terminal: terminal, STAN: 7, Batch: "000123", Amount: 1, Card: chipCard})
}

func TestIntegrityOfAnswers(t *testing.T) {
	for _, tc := range []struct {
		name string
		alg  MACAlgorithm
		mac  bool
		want provisioning.Integrity
	}{
		// The ECB MAC is DES over the XOR of the blocks: forgeable.
		{"ecb", MACUnionPayECB, true, provisioning.IntegrityForgeable},
		{"x9.19", MACX919, true, provisioning.IntegrityAuthentic},
		// No MAC: anyone could have written it, whatever it says.
		{"unmaced decline", MACUnionPayECB, false, provisioning.IntegrityNone},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var key Key
			if tc.mac {
				key = testMAK[:8]
			}
			dial, _ := fakeHost(t, answerer(t, "05", key, tc.alg, nil))
			c := newTestClient(t, signedOn(DoubleDES), dial)
			c.cfg.MAC = tc.alg
			resp, err := sale(c)
			if err != nil {
				t.Fatal(err)
			}
			if resp.RC != "05" || resp.Integrity != tc.want {
				t.Fatalf("rc %s integrity %q, want 05 %q", resp.RC, resp.Integrity, tc.want)
			}
		})
	}
}

// An answer for another message (any of MTI, 3, 4, 11, 41, 42 differing) is
// not this message's answer: ErrMismatch, which the flow reverses.
func TestMismatchedAnswerRefused(t *testing.T) {
	for _, tc := range []struct {
		field int
		edit  func(req, resp *iso8583.Message)
	}{
		{3, func(_, r *iso8583.Message) { _ = Set(r, 3, "200000") }},
		{4, func(_, r *iso8583.Message) { _ = Set(r, 4, "000000000100") }},
		{11, func(_, r *iso8583.Message) { _ = Set(r, 11, "000008") }},
		{41, func(_, r *iso8583.Message) { _ = Set(r, 41, "87654321") }},
		{42, func(_, r *iso8583.Message) { _ = Set(r, 42, "898100012340002") }},
		{0, func(_, r *iso8583.Message) { r.MTI("0230") }},
	} {
		dial, _ := fakeHost(t, answerer(t, "00", testMAK[:8], MACUnionPayECB, tc.edit))
		c := newTestClient(t, signedOn(DoubleDES), dial)
		_, err := sale(c)
		var xe *ExchangeError
		if !errors.Is(err, provisioning.ErrMismatch) || !errors.As(err, &xe) || !xe.Sent {
			t.Errorf("field %d differs: %v", tc.field, err)
		}
	}
}

// A request that never left (no connection) matches provisioning.ErrNotSent;
// one whose bytes may have gone does not.
func TestNotSent(t *testing.T) {
	c := newTestClient(t, signedOn(DoubleDES), func(context.Context, string, string) (net.Conn, error) {
		return nil, errors.New("connection refused")
	})
	if _, err := sale(c); !errors.Is(err, provisioning.ErrNotSent) {
		t.Fatalf("dial failure: %v", err)
	}
	dial, _ := fakeHost(t, func(Frame) []byte { return []byte{0, 1} }) // a torn answer
	c = newTestClient(t, signedOn(DoubleDES), dial)
	if _, err := sale(c); err == nil || errors.Is(err, provisioning.ErrNotSent) {
		t.Fatalf("torn answer: %v", err)
	}
}

// In double-length mode the TDK is mandatory unless the acquirer is known
// to send none: the 0810 carries no MAC, and a 40-byte field 62 is what
// anyone cutting the TDK off would leave.
func TestSignOnWithoutTDK(t *testing.T) {
	tmk := Key(mustHex(t, "0123456789ABCDEFFEDCBA9876543210"))
	wk := WorkingKeys{PIK: mustHex(t, "1111111111111111AAAAAAAAAAAAAAAA"), MAK: mustHex(t, "2222222222222222BBBBBBBBBBBBBBBB")}
	f62, err := EncryptWorkingKeys(tmk, DoubleDES, wk)
	if err != nil || len(f62) != 40 {
		t.Fatal(err, len(f62))
	}
	answer := answerer(t, "00", nil, "", func(_, r *iso8583.Message) {
		mustSetBytes(t, r, 62, f62)
		_ = Set(r, 60, Field60{Type: "00", Batch: "000123", Code: "004"}.String())
	})
	for _, noTDK := range []bool{false, true} {
		dial, _ := fakeHost(t, answer)
		c := newTestClient(t, Keys{TMK: tmk}, dial)
		c.cfg.NoTDK = noTDK
		res, err := c.SignOn(context.Background(), provisioning.SignOnRequest{Terminal: terminal, STAN: 1})
		switch {
		case !noTDK && (!errors.Is(err, ErrNoTDK) || res.KeysOK):
			t.Fatalf("TDK cut off accepted: %v %+v", err, res)
		case noTDK && (err != nil || !res.KeysOK):
			t.Fatalf("acquirer without a TDK refused: %v %+v", err, res)
		}
	}
}

// Where a TDK is expected and there is none, a swiped track never goes out
// in clear: the sale is refused before anything is sent.
func TestNoClearTrackWhereTDKExpected(t *testing.T) {
	keys := signedOn(DoubleDES)
	keys.Working.TDK = nil
	c := newTestClient(t, keys, func(context.Context, string, string) (net.Conn, error) {
		t.Error("a swiped sale went out without its track key")
		return nil, errors.New("no")
	})
	_, err := c.Sale(context.Background(), provisioning.SaleRequest{Terminal: terminal, STAN: 3, Batch: "000123", Amount: 1,
		Card: swipeCard(provisioning.EntrySwipe)})
	if !errors.Is(err, ErrNoTDK) {
		t.Fatalf("%v", err)
	}
}

// Over TLS with the acquirer's CA pinned the link is authenticated: even the
// forgeable ECB MAC's answers are authentic. A server the CA did not sign
// gets no byte of the request.
func TestTLSLink(t *testing.T) {
	pki := newTestPKI(t)
	addr := pki.serve(t, answerer(t, "00", testMAK[:8], MACUnionPayECB, nil))
	ks := &MemKeyStore{}
	_ = ks.SaveKeys(signedOn(DoubleDES))
	c, err := NewClient(Config{Addr: addr, Log: quiet,
		TLS: &tls.Config{RootCAs: pki.pool, ServerName: "localhost"}}, ks)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := sale(c)
	if err != nil || resp.Integrity != provisioning.IntegrityAuthentic {
		t.Fatalf("over TLS: %v %+v", err, resp)
	}
	other := newTestPKI(t)
	c, err = NewClient(Config{Addr: addr, Log: quiet,
		TLS: &tls.Config{RootCAs: other.pool, ServerName: "localhost"}}, ks)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sale(c); !errors.Is(err, provisioning.ErrNotSent) {
		t.Fatalf("a host the pinned CA did not sign: %v", err)
	}
}

type testPKI struct {
	pool         *x509.CertPool
	serverConfig *tls.Config
}

// serve answers every request a TLS connection brings with answer, on
// loopback with the PKI's server certificate, until the test ends; it
// returns the address.
func (p testPKI) serve(t *testing.T, answer func(Frame) []byte) string {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", p.serverConfig)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				if f, err := ReadFrame(conn, 0); err == nil {
					_, _ = conn.Write(answer(f))
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// newTestPKI is a fresh CA and a server certificate for localhost.
func newTestPKI(t *testing.T) testPKI {
	t.Helper()
	p, err := bench.MakePKI(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return testPKI{pool: p.CAPool(t), serverConfig: &tls.Config{Certificates: []tls.Certificate{p.ServerCertificate(t)}}}
}

// The host's time from a sign-on may raise the terminal's time floor only
// when nobody on the way can have written it: over TLS with the CA pinned.
func TestHostTimeOnlyFromAnAuthenticatedLink(t *testing.T) {
	tmk := testKey("0123456789ABCDEFFEDCBA9876543210")
	wk := WorkingKeys{PIK: testKey("1111111111111111AAAAAAAAAAAAAAAA"), MAK: testMAK, TDK: testKey("3333333333333333CCCCCCCCCCCCCCCC")}
	f62, err := EncryptWorkingKeys(tmk, DoubleDES, wk)
	if err != nil {
		t.Fatal(err)
	}
	answer := answerer(t, "00", nil, "", func(_, r *iso8583.Message) {
		mustSet(t, r, 12, "101500")
		mustSet(t, r, 13, "1203")
		mustSetBytes(t, r, 62, f62)
		mustSet(t, r, 60, Field60{Type: "00", Batch: "000123", Code: "004"}.String())
	})
	pki := newTestPKI(t)
	addr := pki.serve(t, answer)
	for _, tc := range []struct {
		name string
		tls  bool
	}{{"plain", false}, {"tls", true}} {
		t.Run(tc.name, func(t *testing.T) {
			var got []time.Time
			cfg := Config{Log: quiet, HostTime: func(ht time.Time) { got = append(got, ht) }}
			if tc.tls {
				cfg.Addr, cfg.TLS = addr, &tls.Config{RootCAs: pki.pool, ServerName: "localhost"}
			} else {
				dial, _ := fakeHost(t, answer)
				cfg.Addr, cfg.Dial = "host", dial
			}
			ks := &MemKeyStore{}
			_ = ks.SaveKeys(Keys{TMK: tmk})
			c, err := NewClient(cfg, ks)
			if err != nil {
				t.Fatal(err)
			}
			res, err := c.SignOn(context.Background(), provisioning.SignOnRequest{Terminal: terminal, STAN: 1})
			if err != nil || !res.KeysOK {
				t.Fatalf("sign-on: %v %+v", err, res)
			}
			if want := map[bool]int{false: 0, true: 1}[tc.tls]; len(got) != want || want == 1 && !got[0].Equal(res.HostTime) {
				t.Fatalf("host time given %v, want %d times", got, want)
			}
		})
	}
}

// The working keys a sign-on replaces are wiped in memory.
func TestSignOnWipesReplacedKeys(t *testing.T) {
	tmk := testKey("0123456789ABCDEFFEDCBA9876543210")
	wk := WorkingKeys{PIK: testKey("1111111111111111AAAAAAAAAAAAAAAA"), MAK: testMAK, TDK: testKey("3333333333333333CCCCCCCCCCCCCCCC")}
	f62, err := EncryptWorkingKeys(tmk, DoubleDES, wk)
	if err != nil {
		t.Fatal(err)
	}
	dial, _ := fakeHost(t, answerer(t, "00", nil, "", func(_, r *iso8583.Message) {
		mustSetBytes(t, r, 62, f62)
		mustSet(t, r, 60, Field60{Type: "00", Batch: "000123", Code: "004"}.String())
	}))
	old := signedOn(DoubleDES)
	old.TMK = tmk
	old.Working = WorkingKeys{PIK: testKey("4444444444444444"), MAK: testKey("5555555555555555"), TDK: testKey("6666666666666666")}
	c := newTestClient(t, old, dial)
	replaced := c.keys.Working
	if res, err := c.SignOn(context.Background(), provisioning.SignOnRequest{Terminal: terminal, STAN: 1}); err != nil || !res.KeysOK {
		t.Fatalf("%v %+v", err, res)
	}
	for _, k := range []Key{replaced.PIK, replaced.MAK, replaced.TDK} {
		for _, b := range k {
			if b != 0 {
				t.Fatalf("a replaced key was not wiped: %x", []byte(k))
			}
		}
	}
	if len(c.keys.Working.MAK) == 0 || c.keys.Working.MAK[0] == 0 {
		t.Fatal("the new MAK is not in use")
	}
}
