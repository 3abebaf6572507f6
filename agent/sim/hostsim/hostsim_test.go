package hostsim_test

import (
	"context"

	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/posagent/posagent/agent/acquirer"
	"github.com/posagent/posagent/agent/sim/hostsim"
	"github.com/posagent/posagent/agent/sim/ledger"
	"github.com/posagent/posagent/provisioning"
	"github.com/posagent/posagent/provisioning/pan"
)

const (
	tmkHex = "0123456789ABCDEFFEDCBA9876543210"
	tid    = "12345678"
	mid    = "898100012340001"
)

var (
	quiet    = slog.New(slog.NewTextHandler(io.Discard, nil))
	terminal = provisioning.Terminal{TID: tid, MID: mid, Serial: "PA-1"}
	card     = provisioning.Card{PAN: pan.MustParse("6222021234567890123"), Seq: "01", Expiry: "2812",
		ICData: "9F2608112233445566778899270180", AID: "A000000333010101"}
)

func key(t testing.TB, s string) acquirer.Key {
	t.Helper()
	k, err := acquirer.ParseKey(s)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// env is one simulator on a random loopback port and one terminal.
type env struct {
	t      *testing.T
	srv    *hostsim.Server
	ledger *ledger.Ledger
	path   string
	addr   string
	ks     acquirer.KeyStore
	c      *acquirer.Client
	ccfg   acquirer.Config
	stan   int
	batch  string
}

func newEnv(t *testing.T, scfg func(*hostsim.Config), ccfg func(*acquirer.Config)) *env {
	t.Helper()
	e := &env{t: t, path: filepath.Join(t.TempDir(), "ledger.jsonl")}
	e.startServer(scfg)
	e.ks = &acquirer.FileKeyStore{Path: filepath.Join(t.TempDir(), "keys.json")}
	if err := e.ks.SaveKeys(acquirer.Keys{TMK: key(t, tmkHex)}); err != nil {
		t.Fatal(err)
	}
	e.ccfg = acquirer.Config{Addr: e.addr, ReadTimeout: 2 * time.Second, ExchangeTimeout: 10 * time.Second, Log: quiet}
	if ccfg != nil {
		ccfg(&e.ccfg)
	}
	e.restartClient()
	return e
}

func (e *env) startServer(scfg func(*hostsim.Config)) {
	e.t.Helper()
	l, err := ledger.Open(e.path)
	if err != nil {
		e.t.Fatal(err)
	}
	cfg := hostsim.Config{TMK: key(e.t, tmkHex), MIDs: []string{mid}, Ledger: l, Log: quiet}
	if scfg != nil {
		scfg(&cfg)
	}
	srv, err := hostsim.New(cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	a, err := srv.Listen("127.0.0.1:0")
	if err != nil {
		e.t.Fatal(err)
	}
	e.srv, e.ledger, e.addr = srv, l, a.String()
	e.t.Cleanup(func() { srv.Close(); l.Close() })
}

// restartClient is a terminal restart: a new client on the same key store.
func (e *env) restartClient() {
	e.t.Helper()
	e.ccfg.Addr = e.addr
	c, err := acquirer.NewClient(e.ccfg, e.ks)
	if err != nil {
		e.t.Fatal(err)
	}
	e.c = c
}

func (e *env) nextSTAN() int { e.stan++; return e.stan }

func (e *env) signOn() provisioning.SignOnResult {
	e.t.Helper()
	res, err := e.c.SignOn(context.Background(), provisioning.SignOnRequest{Terminal: terminal, STAN: e.nextSTAN()})
	if err != nil {
		e.t.Fatal(err)
	}
	if res.RC != "00" || !res.KeysOK {
		e.t.Fatalf("sign-on: %+v", res)
	}
	e.batch = res.Batch
	return res
}

// reverse sends the reversal until the host answers it, as the flow does
// before anything else goes online.
func (e *env) reverse(inf provisioning.InFlight) {
	e.t.Helper()
	for i := 0; i < 5; i++ {
		resp, err := e.c.Reverse(context.Background(), provisioning.ReversalRequest{Terminal: terminal, Orig: inf, Reason: "98"})
		if err == nil && (resp.RC == "00" || resp.RC == "25") {
			return
		}
	}
	e.t.Fatalf("reversal of STAN %d never answered", inf.STAN)
}

// sale runs a sale with the flow's discipline: on an exchange error it is
// reversed. It returns the approved record, or nil.
func (e *env) sale(amount int64) (*provisioning.TxnRecord, error) {
	e.t.Helper()
	req := provisioning.SaleRequest{Terminal: terminal, STAN: e.nextSTAN(), Batch: e.batch, Amount: amount, Card: card, Test: true}
	resp, err := e.c.Sale(context.Background(), req)
	if err != nil {
		e.reverse(provisioning.InFlight{Kind: "sale", STAN: req.STAN, Batch: req.Batch, Amount: amount})
		return nil, err
	}
	if resp.RC != "00" {
		return nil, fmt.Errorf("declined %s", resp.RC)
	}
	return &provisioning.TxnRecord{STAN: req.STAN, Batch: req.Batch, Amount: amount, RC: resp.RC, RRN: resp.RRN,
		AuthCode: resp.AuthCode, Masked: card.PAN.Masked(), Time: resp.Time}, nil
}

func (e *env) void(sale *provisioning.TxnRecord) error {
	e.t.Helper()
	req := provisioning.VoidRequest{Terminal: terminal, STAN: e.nextSTAN(), Batch: sale.Batch, Card: card, Orig: *sale}
	resp, err := e.c.Void(context.Background(), req)
	if err != nil {
		e.reverse(provisioning.InFlight{Kind: "void", STAN: req.STAN, Batch: req.Batch, Amount: sale.Amount, OrigSTAN: sale.STAN})
		return err
	}
	if resp.RC != "00" {
		return fmt.Errorf("void declined %s", resp.RC)
	}
	return nil
}

// checkLedger asserts the acceptance rule of issue 5 on the ledger file:
// every approved sale ends voided or reversed exactly once, never both and
// never twice, and no transaction is reversed twice. It returns how many
// sales ended voided and reversed.
func checkLedger(t *testing.T, path string) (voided, reversed int) {
	t.Helper()
	entries, err := ledger.Read(path)
	if err != nil {
		t.Fatal(err)
	}
	type k struct {
		batch string
		stan  int
	}
	approved := map[k]ledger.Entry{}
	rev := map[k]int{}
	for _, en := range entries {
		if en.Card != "" && (len(en.Card) < 13 || strings.Count(en.Card, "*") != len(en.Card)-10) {
			t.Fatalf("ledger line %d holds %q, not the masked PAN", en.Seq, en.Card)
		}
		switch en.Event {
		case ledger.EventApproved, ledger.EventVoided:
			if _, dup := approved[k{en.Batch, en.STAN}]; dup {
				t.Fatalf("STAN %d approved twice", en.STAN)
			}
			approved[k{en.Batch, en.STAN}] = en
		case ledger.EventReversed:
			rev[k{en.Batch, en.STAN}]++
			if rev[k{en.Batch, en.STAN}] > 1 {
				t.Fatalf("STAN %d reversed twice", en.STAN)
			}
		}
	}
	for key, en := range approved {
		if en.Kind != ledger.KindSale {
			continue
		}
		voids := 0
		for vk, v := range approved {
			if v.Kind == ledger.KindVoid && v.OrigSTAN == en.STAN && rev[vk] == 0 {
				voids++
			}
		}
		switch {
		case voids == 1 && rev[key] == 0:
			voided++
		case voids == 0 && rev[key] == 1:
			reversed++
		default:
			t.Fatalf("sale STAN %d ends with %d voids and %d reversals", en.STAN, voids, rev[key])
		}
	}
	return voided, reversed
}

func TestSignOnEchoSaleVoid(t *testing.T) {
	for _, mode := range []acquirer.KeyMode{acquirer.DoubleDES, acquirer.SingleDES} {
		for _, alg := range []acquirer.MACAlgorithm{acquirer.MACUnionPayECB, acquirer.MACX919} {
			t.Run(string(mode)+"/"+string(alg), func(t *testing.T) {
				e := newEnv(t, func(c *hostsim.Config) { c.MAC = alg },
					func(c *acquirer.Config) { c.KeyMode, c.MAC = mode, alg })
				if err := e.c.Echo(context.Background(), terminal); err != nil {
					t.Fatal(err)
				}
				res := e.signOn()
				if res.Batch != "000001" || time.Since(res.HostTime).Abs() > time.Minute {
					t.Fatalf("sign-on %+v", res)
				}
				keys, err := e.ks.LoadKeys()
				if err != nil || keys.Mode != mode || len(keys.Working.MAK) == 0 {
					t.Fatalf("stored keys %v, %v", keys, err)
				}
				s, err := e.sale(1)
				if err != nil {
					t.Fatal(err)
				}
				if len(s.RRN) != 12 || len(s.AuthCode) != 6 {
					t.Fatalf("sale %+v", s)
				}
				if err := e.void(s); err != nil {
					t.Fatal(err)
				}
				if v, r := checkLedger(t, e.path); v != 1 || r != 0 {
					t.Fatalf("voided %d reversed %d", v, r)
				}
			})
		}
	}
}

func TestResponseCodesByRule(t *testing.T) {
	e := newEnv(t, nil, nil)
	e.signOn()
	if _, err := e.sale(151); err == nil || err.Error() != "declined 51" {
		t.Fatalf("amount ending 51: %v", err)
	}
	other := terminal
	other.MID = "898100099999999"
	resp, err := e.c.Sale(context.Background(), provisioning.SaleRequest{Terminal: other, STAN: e.nextSTAN(), Batch: e.batch, Amount: 100, Card: card})
	if err != nil || resp.RC != "03" {
		t.Fatalf("unknown MID: %+v %v", resp, err)
	}
	res, err := e.c.SignOn(context.Background(), provisioning.SignOnRequest{Terminal: other, STAN: e.nextSTAN()})
	if err != nil || res.RC != "03" || res.KeysOK {
		t.Fatalf("sign-on of unknown MID: %+v %v", res, err)
	}
	// A terminal MACing with the whole double-length MAK against a host that
	// uses its first half: the host answers A0, unMACed, and approves nothing.
	e.ccfg.MACFullKey = true
	e.restartClient()
	resp, err = e.c.Sale(context.Background(), provisioning.SaleRequest{Terminal: terminal, STAN: e.nextSTAN(), Batch: e.batch, Amount: 100, Card: card})
	if err != nil || resp.RC != "A0" {
		t.Fatalf("bad MAC: %+v %v", resp, err)
	}
	// Only the issuer's decline is on the ledger: 03 and A0 never reach it.
	if es := e.ledger.Entries(); len(es) != 1 || es[0].Event != ledger.EventDeclined || es[0].RC != "51" || es[0].Amount != 151 {
		t.Fatalf("ledger %+v, want the one decline 51", es)
	}
}

func TestSignOnWrongTMK(t *testing.T) {
	e := newEnv(t, func(c *hostsim.Config) { c.TMK = key(t, "00112233445566778899AABBCCDDEEFF") }, nil)
	res, err := e.c.SignOn(context.Background(), provisioning.SignOnRequest{Terminal: terminal, STAN: e.nextSTAN()})
	if err != nil || res.RC != "00" || res.KeysOK {
		t.Fatalf("%+v %v", res, err)
	}
	// Nothing MACable until a sign-on whose keys check out.
	if _, err := e.c.Sale(context.Background(), provisioning.SaleRequest{Terminal: terminal, STAN: e.nextSTAN(), Batch: "000001", Amount: 1, Card: card}); !errors.Is(err, acquirer.ErrNotSignedOn) {
		t.Fatalf("sale without keys: %v", err)
	}
}

// faultOutcome is what the terminal sees for each fault action.
var faultOutcome = map[hostsim.Action]error{
	hostsim.Delay:     nil,
	hostsim.Duplicate: nil,
	hostsim.NoAnswer:  context.DeadlineExceeded,
	hostsim.CloseMid:  io.ErrUnexpectedEOF,
	hostsim.Garbage:   acquirer.ErrMalformed,
	hostsim.WrongMAC:  acquirer.ErrBadMAC,
}

func fault(a hostsim.Action) hostsim.Fault {
	// The delay is well inside the read timeout: a slow host, not a dead one.
	return hostsim.Fault{Action: a, Delay: 50 * time.Millisecond}
}

// shortTimeout makes a dead host cost a second, not the default 30 s; the
// delay fault stays far inside it.
func shortTimeout(c *acquirer.Config) { c.ReadTimeout = time.Second }

func checkErr(t *testing.T, a hostsim.Action, err error) {
	t.Helper()
	want := faultOutcome[a]
	if want == nil {
		if err != nil {
			t.Fatalf("%s: %v", a, err)
		}
		return
	}
	var xe *acquirer.ExchangeError
	if !errors.As(err, &xe) || !xe.Sent {
		t.Fatalf("%s: %v is not a sent ExchangeError", a, err)
	}
	if a != hostsim.NoAnswer && !errors.Is(err, want) {
		t.Fatalf("%s: %v, want %v", a, err, want)
	}
}

func TestFaultOnSale(t *testing.T) {
	for _, a := range hostsim.Actions {
		t.Run(string(a), func(t *testing.T) {
			e := newEnv(t, nil, shortTimeout)
			e.signOn()
			e.srv.Inject(hostsim.KindSale, fault(a))
			s, err := e.sale(100)
			checkErr(t, a, err)
			if s != nil {
				if err := e.void(s); err != nil {
					t.Fatal(err)
				}
			}
			v, r := checkLedger(t, e.path)
			if faultOutcome[a] == nil && (v != 1 || r != 0) || faultOutcome[a] != nil && (v != 0 || r != 1) {
				t.Fatalf("voided %d reversed %d", v, r)
			}
		})
	}
}

func TestFaultOnVoid(t *testing.T) {
	for _, a := range hostsim.Actions {
		t.Run(string(a), func(t *testing.T) {
			e := newEnv(t, nil, shortTimeout)
			e.signOn()
			s, err := e.sale(100)
			if err != nil {
				t.Fatal(err)
			}
			e.srv.Inject(hostsim.KindVoid, fault(a))
			err = e.void(s)
			checkErr(t, a, err)
			if err != nil {
				// The void was reversed; the flow voids again with a new STAN.
				if err := e.void(s); err != nil {
					t.Fatal(err)
				}
			}
			if v, r := checkLedger(t, e.path); v != 1 || r != 0 {
				t.Fatalf("voided %d reversed %d", v, r)
			}
		})
	}
}

func TestFaultOnReversal(t *testing.T) {
	for _, a := range hostsim.Actions {
		t.Run(string(a), func(t *testing.T) {
			e := newEnv(t, nil, shortTimeout)
			e.signOn()
			e.srv.Inject(hostsim.KindSale, hostsim.Fault{Action: hostsim.NoAnswer})
			// The first reversal meets the fault; reverse() resends it.
			e.srv.Inject(hostsim.KindReversal, fault(a))
			if _, err := e.sale(100); err == nil {
				t.Fatal("sale answered")
			}
			if v, r := checkLedger(t, e.path); v != 0 || r != 1 {
				t.Fatalf("voided %d reversed %d", v, r)
			}
		})
	}
}

// TestTerminalRestartMidSale: the terminal dies between sending a sale and
// its answer (the host approved it); after the restart a new client on the
// same key store reverses it with the stored MAK, exactly once even when the
// reversal is resent.
func TestTerminalRestartMidSale(t *testing.T) {
	e := newEnv(t, nil, nil)
	e.signOn()
	e.srv.Inject(hostsim.KindSale, hostsim.Fault{Action: hostsim.NoAnswer})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	req := provisioning.SaleRequest{Terminal: terminal, STAN: e.nextSTAN(), Batch: e.batch, Amount: 100, Card: card}
	if _, err := e.c.Sale(ctx, req); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("sale: %v", err)
	}
	e.restartClient()
	inf := provisioning.InFlight{Kind: "sale", STAN: req.STAN, Batch: req.Batch, Amount: req.Amount}
	e.reverse(inf)
	e.reverse(inf) // a resend after a lost answer: no second reversal
	if v, r := checkLedger(t, e.path); v != 0 || r != 1 {
		t.Fatalf("voided %d reversed %d", v, r)
	}
}

// TestHostRestartKeepsLedger: the simulator rebuilds its state from the
// ledger, so a reversal resent after a host restart is still not doubled.
func TestHostRestartKeepsLedger(t *testing.T) {
	e := newEnv(t, nil, nil)
	e.signOn()
	s, err := e.sale(100)
	if err != nil {
		t.Fatal(err)
	}
	inf := provisioning.InFlight{Kind: "sale", STAN: s.STAN, Batch: s.Batch, Amount: s.Amount}
	e.reverse(inf)
	e.srv.Close()
	e.ledger.Close()
	e.startServer(nil)
	e.restartClient()
	e.signOn() // the simulator keeps working keys in memory only
	e.reverse(inf)
	if v, r := checkLedger(t, e.path); v != 0 || r != 1 {
		t.Fatalf("voided %d reversed %d", v, r)
	}
	// And a void of the reversed sale finds no original.
	resp, err := e.c.Void(context.Background(), provisioning.VoidRequest{Terminal: terminal, STAN: e.nextSTAN(), Batch: s.Batch, Card: card, Orig: *s})
	if err != nil || resp.RC != "25" {
		t.Fatalf("void of a reversed sale: %+v %v", resp, err)
	}
}

func TestSignOff(t *testing.T) {
	e := newEnv(t, nil, nil)
	e.signOn()
	if ack, err := e.c.SignOff(context.Background(), provisioning.AdminRequest{Terminal: terminal, STAN: e.nextSTAN(), Batch: e.batch}); err != nil || ack.RC != "00" {
		t.Fatalf("sign-off: %+v %v", ack, err)
	}
	if _, err := e.c.Sale(context.Background(), provisioning.SaleRequest{Terminal: terminal, STAN: e.nextSTAN(), Batch: e.batch, Amount: 1, Card: card}); !errors.Is(err, acquirer.ErrNotSignedOn) {
		t.Fatalf("sale after sign-off: %v", err)
	}
	if k, _ := e.ks.LoadKeys(); len(k.Working.MAK) != 0 || len(k.TMK) == 0 {
		t.Fatalf("keys after sign-off: %v", k)
	}
}

func TestParseFault(t *testing.T) {
	for in, want := range map[string]hostsim.Fault{
		"sale=no-answer":        {Action: hostsim.NoAnswer},
		"void=delay:2s*3":       {Action: hostsim.Delay, Delay: 2 * time.Second, Times: 3},
		"reversal=wrong-mac*-1": {Action: hostsim.WrongMAC, Times: -1},
	} {
		_, got, err := hostsim.ParseFault(in)
		if err != nil || got != want {
			t.Errorf("%s: %+v %v", in, got, err)
		}
	}
	for _, bad := range []string{"sale", "x=no-answer", "sale=explode", "sale=delay:soon", "sale=garbage*x"} {
		if _, _, err := hostsim.ParseFault(bad); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}

// The back office cancels a sale the terminal could not reverse: booked as
// a reversal marked by hand, once; a second cancel finds nothing to do.
func TestCancelByHand(t *testing.T) {
	e := newEnv(t, nil, nil)
	e.signOn()
	sale, err := e.sale(1)
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []bool{true, false} {
		got, err := e.srv.CancelByHand(tid, sale.Batch, sale.STAN)
		if err != nil || got != want {
			t.Fatalf("cancel %d: %v %v, want %v", i+1, got, err, want)
		}
	}
	es := e.ledger.Entries()
	if last := es[len(es)-1]; last.Event != ledger.EventReversed || !last.ByHand || last.STAN != sale.STAN {
		t.Fatalf("last entry %+v", last)
	}
	if got, err := e.srv.CancelByHand(tid, sale.Batch, 999); got || err != nil {
		t.Fatalf("unknown message: %v %v", got, err)
	}
	if _, r := checkLedger(t, e.path); r != 1 {
		t.Fatalf("%d reversed, want the one cancelled by hand", r)
	}
}

// A reversal of a sale its void cancelled finds nothing to undo: 00, and no
// ledger line (the card is not credited twice).
func TestReversalOfVoidedSale(t *testing.T) {
	e := newEnv(t, nil, nil)
	e.signOn()
	sale, err := e.sale(1)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.void(sale); err != nil {
		t.Fatal(err)
	}
	n := len(e.ledger.Entries())
	resp, err := e.c.Reverse(context.Background(), provisioning.ReversalRequest{Terminal: terminal, Reason: "06",
		Orig: provisioning.InFlight{Kind: "sale", STAN: sale.STAN, Batch: sale.Batch, Amount: 1}})
	if err != nil || resp.RC != "00" {
		t.Fatalf("%v %+v", err, resp)
	}
	if len(e.ledger.Entries()) != n {
		t.Fatal("the reversal of a voided sale was booked")
	}
	if v, r := checkLedger(t, e.path); v != 1 || r != 0 {
		t.Fatalf("voided %d reversed %d", v, r)
	}
}

// Close right after Listen closes the listener and returns: the listener is
// known to the server before Listen returns, not once its goroutine runs.
func TestCloseRightAfterListen(t *testing.T) {
	for range 200 {
		l, err := ledger.Open(filepath.Join(t.TempDir(), "ledger.jsonl"))
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		srv, err := hostsim.New(hostsim.Config{TMK: key(t, tmkHex), Ledger: l, Log: quiet})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := srv.Listen("127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() { srv.Close(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("Close right after Listen never returned")
		}
	}
}
