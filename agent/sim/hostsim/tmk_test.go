package hostsim_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/posagent/posagent/agent/acquirer"
	"github.com/posagent/posagent/agent/sim/hostsim"
	"github.com/posagent/posagent/provisioning"
	"github.com/posagent/posagent/provisioning/provisioningtest"
)

// One terminal key for the package's tests: a 2048-bit key takes a moment
// to make.
var (
	tkOnce sync.Once
	tkKey  *acquirer.FileTerminalKey
	tkErr  error
)

func terminalKey(t *testing.T) *acquirer.FileTerminalKey {
	t.Helper()
	tkOnce.Do(func() {
		dir, err := os.MkdirTemp("", "hostsim-tk")
		if err != nil {
			tkErr = err
			return
		}
		tkKey, tkErr = acquirer.OpenFileTerminalKey(filepath.Join(dir, "terminal-key.pem"))
		_ = os.RemoveAll(dir) // the key is in memory; nothing of it stays on disk
	})
	if tkErr != nil {
		t.Fatal(tkErr)
	}
	return tkKey
}

// newTMKEnv is a host that downloads TMKs and a terminal with none: an
// empty key store and the remote-tmk profile.
func newTMKEnv(t *testing.T) *env {
	t.Helper()
	e := &env{t: t, path: filepath.Join(t.TempDir(), "ledger.jsonl")}
	e.startServer(func(c *hostsim.Config) { c.TMKDownload = true })
	e.ks = &acquirer.FileKeyStore{Path: filepath.Join(t.TempDir(), "keys.json")}
	p, _ := acquirer.LookupProfile("remote-tmk")
	e.ccfg = acquirer.Config{Addr: e.addr, ReadTimeout: time.Second, ExchangeTimeout: 10 * time.Second, Log: quiet,
		Profile: p, TerminalKey: terminalKey(t)}
	e.restartClient()
	return e
}

func (e *env) fetchTMK() (provisioning.Ack, error) {
	return e.c.FetchTMK(context.Background(), provisioning.AdminRequest{Terminal: terminal, STAN: e.nextSTAN()})
}

func (e *env) activateTMK() (provisioning.Ack, error) {
	return e.c.ActivateTMK(context.Background(), provisioning.AdminRequest{Terminal: terminal, STAN: e.nextSTAN()})
}

// TestTMKDownloadThenSale: the real client downloads a TMK from the host,
// activates it, signs on with it (the host's working keys under the new TMK
// pass their check values) and sells with the MAK of that sign-on.
func TestTMKDownloadThenSale(t *testing.T) {
	e := newTMKEnv(t)
	if a, err := e.fetchTMK(); err != nil || a.RC != "00" {
		t.Fatalf("352: %+v %v", a, err)
	}
	if e.c.TMKState() != provisioning.TMKPending {
		t.Fatalf("state %s", e.c.TMKState())
	}
	if a, err := e.activateTMK(); err != nil || a.RC != "00" {
		t.Fatalf("351: %+v %v", a, err)
	}
	k, err := e.ks.LoadKeys()
	if err != nil || len(k.TMK) != 16 || k.TMK.String() == key(t, tmkHex).String() {
		t.Fatalf("stored %v %v", k, err)
	}
	e.signOn()
	if s, err := e.sale(100); err != nil || s == nil {
		t.Fatalf("sale: %v", err)
	}
}

// TestTMKDownloadFaults: the host's faults on the new messages.
func TestTMKDownloadFaults(t *testing.T) {
	t.Run("wrong check value", func(t *testing.T) {
		e := newTMKEnv(t)
		e.srv.Inject(hostsim.KindTMKKey, hostsim.Fault{Action: hostsim.WrongCV})
		_, err := e.fetchTMK()
		if !errors.Is(err, acquirer.ErrTMKCheck) {
			t.Fatalf("err %v", err)
		}
		if _, err := e.ks.LoadKeys(); !errors.Is(err, acquirer.ErrNoKeys) {
			t.Fatalf("stored after a wrong check value (%v)", err)
		}
		// Nothing was activated: the host still signs the terminal on under
		// its configured TMK, which the terminal does not hold.
		if _, err := e.activateTMK(); err == nil {
			t.Fatal("an activation went out with nothing pending")
		}
	})
	t.Run("broken 62", func(t *testing.T) {
		e := newTMKEnv(t)
		e.srv.Inject(hostsim.KindTMKKey, hostsim.Fault{Action: hostsim.BrokenF62})
		var ce interface{ FailureCode() string }
		if _, err := e.fetchTMK(); !errors.As(err, &ce) || ce.FailureCode() != "E_DOWNLOAD_DATA" {
			t.Fatalf("err %v", err)
		}
		if e.c.TMKState() != provisioning.TMKMissing {
			t.Fatal("a broken answer left a TMK")
		}
	})
	t.Run("activation unanswered, then a power cut", func(t *testing.T) {
		e := newTMKEnv(t)
		if _, err := e.fetchTMK(); err != nil {
			t.Fatal(err)
		}
		e.srv.Inject(hostsim.KindTMKActivate, hostsim.Fault{Action: hostsim.NoAnswer})
		if _, err := e.activateTMK(); err == nil {
			t.Fatal("no error without an answer")
		}
		e.restartClient()
		if e.c.TMKState() != provisioning.TMKPending {
			t.Fatalf("after the restart: %s", e.c.TMKState())
		}
		if _, err := e.c.SignOn(context.Background(), provisioning.SignOnRequest{Terminal: terminal, STAN: e.nextSTAN()}); !errors.Is(err, acquirer.ErrNoTMK) {
			t.Fatalf("sign-on on a pending TMK: %v", err)
		}
		if a, err := e.activateTMK(); err != nil || a.RC != "00" {
			t.Fatalf("351 after the restart: %+v %v", a, err)
		}
		e.signOn()
	})
	t.Run("wrong activation", func(t *testing.T) {
		e := newTMKEnv(t)
		e.srv.Inject(hostsim.KindTMKActivate, hostsim.Fault{Action: hostsim.WrongRC, RC: "A7"})
		if _, err := e.fetchTMK(); err != nil {
			t.Fatal(err)
		}
		if a, err := e.activateTMK(); err != nil || a.RC != "A7" {
			t.Fatalf("%+v %v", a, err)
		}
		if e.c.TMKState() != provisioning.TMKMissing {
			t.Fatalf("state %s", e.c.TMKState())
		}
		// Starting again works.
		if _, err := e.fetchTMK(); err != nil {
			t.Fatal(err)
		}
		if a, err := e.activateTMK(); err != nil || a.RC != "00" {
			t.Fatalf("%+v %v", a, err)
		}
		e.signOn()
	})
}

// TestFlowDownloadsTMK: the install flow on a terminal without a TMK
// downloads one before its first sign-on and goes live; a power cut while
// the activation is unanswered resumes with the activation.
func TestFlowDownloadsTMK(t *testing.T) {
	e := newTMKEnv(t)
	var kinds []string
	var mu sync.Mutex
	e.srv.Close()
	e.startServer(func(c *hostsim.Config) {
		c.TMKDownload = true
		c.OnAnswer = func(k string) { mu.Lock(); kinds = append(kinds, k); mu.Unlock() }
	})
	e.restartClient()
	e.srv.Inject(hostsim.KindTMKActivate, hostsim.Fault{Action: hostsim.NoAnswer})
	st := &provisioningtest.Store{}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	_, err := e.flow(t, luhnCard(), st, &installer{dieAt: map[int]bool{1: true}}).Run(ctx)
	if err == nil || e.c.TMKState() != provisioning.TMKPending {
		t.Fatalf("first run: %v, state %s", err, e.c.TMKState())
	}
	e.restartClient()
	cp, err := e.flow(t, luhnCard(), st, &installer{}).Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if cp.Step != provisioning.StepLive {
		t.Fatalf("step %s", cp.Step)
	}
	mu.Lock()
	defer mu.Unlock()
	// The download, its activation unanswered, the activation again after
	// the restart, and only then the first sign-on.
	var got []string
	for _, k := range kinds {
		if k == hostsim.KindTMKKey || k == hostsim.KindTMKActivate || k == hostsim.KindSignOn {
			got = append(got, k)
		}
	}
	want := []string{hostsim.KindTMKKey, hostsim.KindTMKActivate, hostsim.KindTMKActivate, hostsim.KindSignOn}
	for i, k := range want {
		if i >= len(got) || got[i] != k {
			t.Fatalf("messages %v, want %v first", got, want)
		}
	}
}
