package hostile_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/moov-io/iso8583"

	"github.com/posagent/posagent/agent/acquirer"
	"github.com/posagent/posagent/agent/sim/hostsim"
	"github.com/posagent/posagent/agent/sim/ledger"
	"github.com/posagent/posagent/agent/testkit/hostile"
	"github.com/posagent/posagent/provisioning"
	"github.com/posagent/posagent/provisioning/pan"
)

const tmkHex = "0123456789ABCDEFFEDCBA9876543210"

var (
	quiet    = slog.New(slog.DiscardHandler)
	terminal = provisioning.Terminal{TID: "12345678", MID: "898100012340001", Serial: "PA-1"}
	chipCard = provisioning.Card{PAN: pan.MustParse("6222021234567890123"), Seq: "01", Expiry: "2812",
		ICData: "9F2608112233445566778899270180", AID: "A000000333010101", Entry: provisioning.EntryChip}
)

func tmk(t testing.TB) acquirer.Key {
	t.Helper()
	k, err := acquirer.ParseKey(tmkHex)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// env is a host simulator, the proxy in front of it and a terminal's
// client talking to the proxy.
type env struct {
	t      testing.TB
	host   *hostsim.Server
	ledger *ledger.Ledger
	proxy  *hostile.Proxy
	keys   *acquirer.MemKeyStore
	client *acquirer.Client
	stan   int
	batch  string
}

func newEnv(t testing.TB, plan hostile.Planner, archive *hostile.Archive) *env {
	t.Helper()
	e := &env{t: t, keys: &acquirer.MemKeyStore{}}
	var err error
	e.ledger, err = ledger.Open(filepath.Join(t.TempDir(), "ledger.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.ledger.Close() })
	e.host, err = hostsim.New(hostsim.Config{TMK: tmk(t), Ledger: e.ledger, Log: quiet})
	if err != nil {
		t.Fatal(err)
	}
	addr, err := e.host.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.host.Close() })
	e.proxy, err = hostile.Listen("127.0.0.1:0", hostile.Options{Upstream: addr.String(), Plan: plan,
		Late: 700 * time.Millisecond, Archive: archive, Log: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.proxy.Close() })
	if err := e.keys.SaveKeys(acquirer.Keys{TMK: tmk(t)}); err != nil {
		t.Fatal(err)
	}
	e.client, err = acquirer.NewClient(acquirer.Config{Addr: e.proxy.Addr(), ReadTimeout: 400 * time.Millisecond,
		ExchangeTimeout: 2 * time.Second, Log: quiet}, e.keys)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *env) nextSTAN() int { e.stan++; return e.stan }

func (e *env) signOn() (provisioning.SignOnResult, error) {
	res, err := e.client.SignOn(context.Background(), provisioning.SignOnRequest{Terminal: terminal, STAN: e.nextSTAN()})
	if err == nil && res.KeysOK {
		e.batch = res.Batch
	}
	return res, err
}

func (e *env) mustSignOn() {
	e.t.Helper()
	if res, err := e.signOn(); err != nil || res.RC != "00" || !res.KeysOK {
		e.t.Fatalf("sign-on: %+v %v", res, err)
	}
}

func (e *env) sale() (int, provisioning.HostResponse, error) {
	stan := e.nextSTAN()
	resp, err := e.client.Sale(context.Background(), provisioning.SaleRequest{Terminal: terminal, STAN: stan, Batch: e.batch, Amount: 1, Card: chipCard})
	return stan, resp, err
}

func (e *env) reverse(stan int) (provisioning.HostResponse, error) {
	return e.client.Reverse(context.Background(), provisioning.ReversalRequest{Terminal: terminal, Reason: "98",
		Orig: provisioning.InFlight{Kind: "sale", STAN: stan, Batch: e.batch, Amount: 1, Entry: provisioning.EntryChip}})
}

func (e *env) mak() acquirer.Key {
	k, err := e.keys.LoadKeys()
	if err != nil {
		e.t.Fatal(err)
	}
	return acquirer.MACKey(k.Working.MAK, false)
}

// frames returns the messages (from the MTI on) of the recorded frames of dir.
func (e *env) messages(dir hostile.Dir) [][]byte {
	var out [][]byte
	for _, f := range e.proxy.Frames() {
		if f.Dir != dir {
			continue
		}
		fr, err := acquirer.DecodeFrame(f.Bytes)
		if err != nil {
			e.t.Fatalf("recorded frame %d does not decode: %v", f.Seq, err)
		}
		out = append(out, fr.Message)
	}
	return out
}

func unpack(t *testing.T, msg []byte) *iso8583.Message {
	t.Helper()
	m, err := acquirer.Unpack(msg)
	if err != nil {
		t.Fatalf("forged message does not unpack: %v", err)
	}
	return m
}

func mti(m *iso8583.Message) string { s, _ := m.GetMTI(); return s }

// realAnswers signs on, sells and reverses through a passing proxy and
// returns the host's answers: 0810, the sale's 0210 and the 0410, plus the
// 0400 request, and the session MAK.
func realAnswers(t testing.TB) (signOn, sale, reversal, reversalReq []byte, mak acquirer.Key) {
	e := newEnv(t, nil, nil)
	e.mustSignOn()
	stan, resp, err := e.sale()
	if err != nil || resp.RC != "00" {
		t.Fatalf("sale: %+v %v", resp, err)
	}
	if resp, err := e.reverse(stan); err != nil || resp.RC != "00" {
		t.Fatalf("reversal: %+v %v", resp, err)
	}
	answers := e.messages(hostile.Answer)
	reqs := e.messages(hostile.Request)
	if len(answers) != 3 || len(reqs) != 3 {
		t.Fatalf("recorded %d answers, %d requests; want 3 and 3", len(answers), len(reqs))
	}
	return answers[0], answers[1], answers[2], reqs[2], e.mak()
}

// Each mutation on a real host answer, checked with agent/acquirer: the
// compensated forgeries verify under the session MAK, the stripped MAC is
// absent, the cut field 62 still yields the PIK and MAK, and nothing else
// changed.
func TestMutationsOnRealAnswers(t *testing.T) {
	signOn, sale, _, revReq, mak := realAnswers(t)
	orig := unpack(t, sale)
	if err := acquirer.CheckMAC(orig, sale, acquirer.MACUnionPayECB, mak); err != nil {
		t.Fatalf("the host's own answer does not verify: %v", err)
	}
	same := func(t *testing.T, a, b *iso8583.Message, ids ...int) {
		t.Helper()
		for _, id := range ids {
			if acquirer.Get(a, id) != acquirer.Get(b, id) {
				t.Errorf("field %d changed", id)
			}
		}
	}

	t.Run("strip-mac", func(t *testing.T) {
		out, err := hostile.StripMACField(sale)
		if err != nil {
			t.Fatal(err)
		}
		m := unpack(t, out)
		if acquirer.GetBytes(m, 64) != nil || len(out) != len(sale)-8 {
			t.Fatal("field 64 still there")
		}
		if err := acquirer.CheckMAC(m, out, acquirer.MACUnionPayECB, mak); !errors.Is(err, acquirer.ErrNoMAC) {
			t.Fatalf("CheckMAC = %v, want ErrNoMAC", err)
		}
		same(t, orig, m, 3, 4, 11, 37, 38, 39, 41, 42)
		if _, err := hostile.StripMACField(out); err == nil {
			t.Error("stripped twice")
		}
	})

	for _, rc := range append(append([]string(nil), hostile.Declines...), hostile.DefectCodes...) {
		t.Run("rc-"+rc, func(t *testing.T) {
			out, err := hostile.RewriteRC(sale, rc)
			if err != nil {
				t.Fatal(err)
			}
			m := unpack(t, out)
			if acquirer.Get(m, 39) != rc {
				t.Fatalf("39 = %q", acquirer.Get(m, 39))
			}
			if err := acquirer.VerifyMAC(acquirer.MACUnionPayECB, mak, out[:len(out)-8], acquirer.GetBytes(m, 64)); err != nil {
				t.Fatalf("the forgery does not verify under the MAK: %v", err)
			}
			// The same rewrite without the compensation does not.
			naive := bytes.Clone(sale)
			i := bytes.LastIndex(naive[:len(naive)-8], []byte(acquirer.Get(orig, 38)+"00"))
			copy(naive[i+6:], rc)
			if err := acquirer.VerifyMAC(acquirer.MACUnionPayECB, mak, naive[:len(naive)-8], naive[len(naive)-8:]); !errors.Is(err, acquirer.ErrBadMAC) {
				t.Fatalf("an uncompensated rewrite: VerifyMAC = %v, want ErrBadMAC", err)
			}
			if !bytes.Equal(acquirer.GetBytes(m, 64), acquirer.GetBytes(orig, 64)) {
				t.Error("field 64 changed")
			}
			for _, id := range []int{37, 38} {
				for _, c := range []byte(acquirer.Get(m, id)) {
					if !(c >= '0' && c <= '9' || c >= 'A' && c <= 'Z') {
						t.Errorf("field %d holds %q", id, c)
					}
				}
			}
			same(t, orig, m, 2, 3, 4, 11, 12, 13, 32, 41, 42, 49, 60)
		})
	}
	if _, err := hostile.RewriteRC(signOn, "05"); err != nil {
		t.Errorf("an unMACed 0810 is rewritten without compensation: %v", err)
	}

	t.Run("forge-25-mac", func(t *testing.T) {
		out, err := hostile.Forge25FromApproval(sale)
		if err != nil {
			t.Fatal(err)
		}
		m := unpack(t, out)
		if mti(m) != "0410" || acquirer.Get(m, 39) != "25" {
			t.Fatalf("%s rc %s", mti(m), acquirer.Get(m, 39))
		}
		if err := acquirer.CheckMAC(m, out, acquirer.MACUnionPayECB, mak); err != nil {
			t.Fatalf("the forged 25 does not verify under the MAK: %v", err)
		}
		same(t, orig, m, 3, 4, 11, 41, 42)
	})

	t.Run("forge-25-plain", func(t *testing.T) {
		out, err := hostile.Forge25Unmaced(revReq, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		m := unpack(t, out)
		req := unpack(t, revReq)
		if mti(m) != "0410" || acquirer.Get(m, 39) != "25" || acquirer.GetBytes(m, 64) != nil {
			t.Fatalf("%s rc %s mac %x", mti(m), acquirer.Get(m, 39), acquirer.GetBytes(m, 64))
		}
		same(t, req, m, 3, 4, 11, 41, 42, 60)
	})

	t.Run("strip-tdk", func(t *testing.T) {
		full, err := acquirer.DecryptWorkingKeys(tmk(t), acquirer.DoubleDES, acquirer.GetBytes(unpack(t, signOn), 62))
		if err != nil || len(full.TDK) == 0 {
			t.Fatalf("the host's 0810 has no TDK: %v", err)
		}
		out, err := hostile.StripTDKField(signOn)
		if err != nil {
			t.Fatal(err)
		}
		m := unpack(t, out)
		f62 := acquirer.GetBytes(m, 62)
		if len(f62) != 40 {
			t.Fatalf("62 is %d bytes", len(f62))
		}
		wk, err := acquirer.DecryptWorkingKeys(tmk(t), acquirer.DoubleDES, f62)
		if err != nil {
			t.Fatalf("the cut 62 is refused: %v", err)
		}
		if len(wk.TDK) != 0 || !bytes.Equal(wk.MAK, full.MAK) || !bytes.Equal(wk.PIK, full.PIK) {
			t.Error("the cut 62 does not carry the same PIK and MAK without a TDK")
		}
		same(t, unpack(t, signOn), m, 11, 39, 41, 42, 60)
	})

	t.Run("replay-rewritten", func(t *testing.T) {
		out, err := hostile.RewriteSTANTID(signOn, "000777", "87654321")
		if err != nil {
			t.Fatal(err)
		}
		m := unpack(t, out)
		if acquirer.Get(m, 11) != "000777" || acquirer.Get(m, 41) != "87654321" {
			t.Fatalf("STAN %s TID %s", acquirer.Get(m, 11), acquirer.Get(m, 41))
		}
		if !bytes.Equal(acquirer.GetBytes(m, 62), acquirer.GetBytes(unpack(t, signOn), 62)) {
			t.Error("62 changed")
		}
		if _, err := hostile.RewriteSTANTID(sale, "000777", "87654321"); err == nil {
			t.Error("a MACed answer rewritten without compensation")
		}
	})
}

// Each mutation through the proxy against the real client and host: what
// the terminal is made to believe, and what the host booked.
func TestProxyAgainstClient(t *testing.T) {
	t.Run("pass", func(t *testing.T) {
		e := newEnv(t, nil, nil)
		e.mustSignOn()
		if _, resp, err := e.sale(); err != nil || resp.RC != "00" {
			t.Fatalf("sale: %+v %v", resp, err)
		}
		waitExchanges(t, e, 2)
		if c := e.proxy.Counts(); c[hostile.Pass] != 2 || len(c) != 1 {
			t.Errorf("counts %v", c)
		}
	})
	for _, m := range []hostile.Mutation{hostile.DropHold, hostile.DropClose, hostile.Delay} {
		t.Run(string(m), func(t *testing.T) {
			e := newEnv(t, hostile.Only(hostile.KindSale, m), nil)
			e.mustSignOn()
			_, _, err := e.sale()
			var xe *acquirer.ExchangeError
			if !errors.As(err, &xe) || !xe.Sent {
				t.Fatalf("sale: %v, want a sent exchange that failed", err)
			}
			if n := approved(e); n != 1 {
				t.Errorf("host approved %d sales, want 1 (the answer is lost, not the request)", n)
			}
			waitExchanges(t, e, 2)
			want := map[hostile.Mutation]int{hostile.DropHold: 1, hostile.DropClose: 1, hostile.Delay: 2}[m]
			if n := count(e, hostile.Delivered); n != want {
				t.Errorf("%d frames delivered, want %d (the 0810%s)", n, want, map[bool]string{true: " and the late 0210"}[want == 2])
			}
		})
	}
	t.Run("duplicate", func(t *testing.T) {
		e := newEnv(t, hostile.Only(hostile.KindSale, hostile.Duplicate), nil)
		e.mustSignOn()
		if _, resp, err := e.sale(); err != nil || resp.RC != "00" {
			t.Fatalf("sale: %+v %v", resp, err)
		}
		waitExchanges(t, e, 2)
		if n := count(e, hostile.Delivered); n != 3 {
			t.Errorf("%d frames delivered, want 3 (0810, 0210 twice)", n)
		}
	})
	t.Run("strip-mac", func(t *testing.T) {
		e := newEnv(t, hostile.Only(hostile.KindSale, hostile.StripMAC), nil)
		e.mustSignOn()
		// The client passes the answer on as worth nothing: the flow
		// reverses what it was sent for.
		if _, resp, err := e.sale(); err != nil || resp.Integrity != provisioning.IntegrityNone {
			t.Fatalf("sale: %+v %v, want an answer of no integrity", resp, err)
		}
	})
	for _, m := range []hostile.Mutation{hostile.ForgeDecline, hostile.Defect} {
		t.Run(string(m), func(t *testing.T) {
			e := newEnv(t, hostile.Only(hostile.KindSale, m), nil)
			e.mustSignOn()
			_, resp, err := e.sale()
			want := map[hostile.Mutation]string{hostile.ForgeDecline: hostile.Declines[0], hostile.Defect: hostile.DefectCodes[0]}[m]
			// The client checked field 64 and found it good, but knows the
			// ECB MAC on a plain link proves little.
			if err != nil || resp.RC != want || resp.Integrity != provisioning.IntegrityForgeable {
				t.Fatalf("sale: %+v %v, want rc %s, forgeable, no error", resp, err, want)
			}
			if n := approved(e); n != 1 {
				t.Errorf("host approved %d sales, want 1", n)
			}
		})
	}
	for _, m := range []hostile.Mutation{hostile.Forge25MAC, hostile.Forge25Plain} {
		t.Run(string(m), func(t *testing.T) {
			e := newEnv(t, hostile.Only(hostile.KindReversal, m), nil)
			e.mustSignOn()
			stan, _, err := e.sale()
			if err != nil {
				t.Fatal(err)
			}
			resp, err := e.reverse(stan)
			if err != nil || resp.RC != "25" {
				t.Fatalf("reversal: %+v %v, want a 25 the client accepts", resp, err)
			}
			for _, en := range e.ledger.Entries() {
				if en.Event == ledger.EventReversed {
					t.Error("the host saw the reversal")
				}
			}
			var req hostile.Frame
			for _, f := range e.proxy.Frames() {
				if f.Dir == hostile.Request {
					req = f
				}
			}
			if req.Forwarded {
				t.Error("the reversal is recorded as forwarded")
			}
		})
	}
	t.Run("strip-tdk", func(t *testing.T) {
		// The cut reaches the client, which refuses the keys: the key mode
		// asks for a TDK and this acquirer is not configured to send none.
		e := newEnv(t, hostile.Only(hostile.KindSignOn, hostile.StripTDK), nil)
		res, err := e.signOn()
		if !errors.Is(err, acquirer.ErrNoTDK) || res.KeysOK {
			t.Fatalf("sign-on with the TDK cut off: %+v %v", res, err)
		}
		if k, _ := e.keys.LoadKeys(); len(k.Working.MAK) != 0 {
			t.Error("the keys of a sign-on without its TDK were stored")
		}
	})
	for _, m := range []hostile.Mutation{hostile.Replay, hostile.ReplayMatched} {
		t.Run(string(m), func(t *testing.T) {
			// An earlier install's sign-on, seen by the same attacker.
			archive := &hostile.Archive{}
			first := newEnv(t, nil, archive)
			first.mustSignOn()
			old, _ := first.keys.LoadKeys()
			waitExchanges(t, first, 1)
			if archive.Len() != 1 {
				t.Fatalf("archive holds %d answers", archive.Len())
			}
			e := newEnv(t, hostile.Only(hostile.KindSignOn, m), archive)
			if m == hostile.ReplayMatched {
				e.stan = 41 // the rewritten STAN makes any earlier answer match
			}
			e.mustSignOn()
			k, _ := e.keys.LoadKeys()
			if !bytes.Equal(k.Working.MAK, old.Working.MAK) {
				t.Error("the terminal did not take the replayed keys")
			}
			// The host gave this terminal other keys: the sale's MAC fails
			// there, and its unMACed A0 is all the terminal hears.
			if _, resp, err := e.sale(); err != nil || resp.RC != "A0" {
				t.Errorf("sale after the replay: %+v %v, want A0", resp, err)
			}
		})
	}
}

// waitExchanges waits until the proxy has finished n exchanges: it records
// one after its last delivery, which the client need not wait for.
func waitExchanges(t *testing.T, e *env, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := e.proxy.Await(ctx, n); err != nil {
		t.Fatal(err)
	}
}

func approved(e *env) int {
	n := 0
	for _, en := range e.ledger.Entries() {
		if en.Event == ledger.EventApproved {
			n++
		}
	}
	return n
}

func count(e *env, dir hostile.Dir) int {
	n := 0
	for _, f := range e.proxy.Frames() {
		if f.Dir == dir {
			n++
		}
	}
	return n
}

// What does not parse goes on untouched, both ways.
func TestProxyForwardsGarbage(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	answer := []byte{0x00, 0x03, 0xde, 0xad, 0x00}
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		buf := make([]byte, 6)
		if _, err := io.ReadFull(c, buf); err == nil {
			_, _ = c.Write(answer)
		}
	}()
	// Every exchange planned as a forgery: none applies to garbage.
	p, err := hostile.Listen("127.0.0.1:0", hostile.Options{Upstream: ln.Addr().String(),
		Plan: hostile.PlanFunc(func(_ string, c []hostile.Mutation) hostile.Mutation { return c[len(c)-1] })})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte{0x00, 0x04, 0x01, 0x02, 0x03, 0x04}); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	got := make([]byte, len(answer))
	if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, answer) {
		t.Fatalf("answer %x %v, want %x", got, err, answer)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ex, err := p.Await(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(ex) != 1 || ex[0].Kind != hostile.KindOther || ex[0].Applied != hostile.Pass {
		t.Errorf("exchanges %+v", ex)
	}
}

// The mutations never panic on hostile bytes and never claim to have
// applied to a message they cannot parse.
func FuzzMutations(f *testing.F) {
	_, sale, rev, revReq, _ := realAnswers(f)
	for _, b := range [][]byte{sale, rev, revReq, {0x02, 0x10}, {}} {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, fn := range []func([]byte) ([]byte, error){
			hostile.StripMACField, hostile.StripTDKField, hostile.Forge25FromApproval,
			func(b []byte) ([]byte, error) { return hostile.RewriteRC(b, "A2") },
			func(b []byte) ([]byte, error) { return hostile.RewriteSTANTID(b, "000001", "12345678") },
			func(b []byte) ([]byte, error) { return hostile.Forge25Unmaced(b, time.Unix(0, 0)) },
		} {
			out, err := fn(b)
			if err == nil {
				if _, uerr := acquirer.Unpack(out); uerr != nil {
					t.Errorf("a mutation produced a message that does not unpack: %v", uerr)
				}
			}
		}
	})
}
