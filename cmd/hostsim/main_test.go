package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moov-io/iso8583"

	"github.com/posagent/posagent/agent/acquirer"
	"github.com/posagent/posagent/provisioning"
)

// TestRunServesSignOn starts the command on port 0, signs on through it and
// stops it with the context, as a SIGTERM would.
func TestRunServesSignOn(t *testing.T) {
	const tmk = "0123456789ABCDEFFEDCBA9876543210"
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	var stderr bytes.Buffer
	var code int
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		code = run(ctx, []string{"--listen", "127.0.0.1:0", "--ledger", filepath.Join(t.TempDir(), "l.jsonl"),
			"--tmk", tmk, "--fault", "echo=duplicate", "--cards", filepath.Join("..", "..", "testdata", "cards")}, pw, &stderr)
		pw.Close()
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatalf("no address: %v", err)
	}
	go io.Copy(io.Discard, pr)
	addr := strings.TrimSpace(strings.TrimPrefix(line, "listening on"))
	ks := &acquirer.MemKeyStore{}
	k, _ := acquirer.ParseKey(tmk)
	if err := ks.SaveKeys(acquirer.Keys{TMK: k}); err != nil {
		t.Fatal(err)
	}
	c, err := acquirer.NewClient(acquirer.Config{Addr: addr, ExchangeTimeout: 10 * time.Second}, ks)
	if err != nil {
		t.Fatal(err)
	}
	term := provisioning.Terminal{TID: "12345678", MID: "898100012340001"}
	if err := c.Echo(ctx, term); err != nil {
		t.Fatal(err)
	}
	res, err := c.SignOn(ctx, provisioning.SignOnRequest{Terminal: term, STAN: 1})
	if err != nil || !res.KeysOK {
		t.Fatalf("%+v %v", res, err)
	}
	cancel()
	wg.Wait()
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	if strings.Contains(strings.ToUpper(stderr.String()), tmk) {
		t.Fatal("the TMK is in the log")
	}
}

func TestRunRejectsBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"--ledger", "x"},
		{"--tmk", "0123"},
		{"--tmk", "0123456789ABCDEF"},
		{"--tmk", "0123456789ABCDEF", "--ledger", "x", "--fault", "sale=explode"},
		{"--tmk", "0123456789ABCDEF", "--ledger", "x", "--mac", "crc32"},
		{"--tmk", "0123456789ABCDEF", "--ledger", "x", "--cards", t.TempDir()},
		{"--tmk", "0123456789ABCDEF", "--ledger", "x", "--arqc-decline-rc", "5"},
		{"--tmk", "0123456789ABCDEF", "--ledger", "x", "--codes", "nowhere"},
		{"--tmk", "0123456789ABCDEF", "--ledger", "x", "--demand", "sale=x"},
		{"--tmk", "0123456789ABCDEF", "--ledger", "x", "--capk", t.TempDir()},
		{"--tmk", "0123456789ABCDEF", "--ledger", "x", "--app-version-tag", "zz"},
		{"--tmk", "0123456789ABCDEF", "--ledger", "x", "--last-page-flag", "33"},
		{"--tmk", "0123456789ABCDEF", "--ledger", filepath.Join(t.TempDir(), "l"), "--key-layout", "odd"},
		{"--tmk", "0123456789ABCDEF", "--ledger", filepath.Join(t.TempDir(), "l"), "--netting", "odd"},
		{"--tmk", "0123456789ABCDEF", "--ledger", filepath.Join(t.TempDir(), "l"), "--batch", "12"},
	} {
		var out, errb bytes.Buffer
		if code := run(context.Background(), args, &out, &errb); code != 2 {
			t.Errorf("%v: exit %d", args, code)
		}
		if strings.Contains(errb.String(), "0123456789ABCDEF") {
			t.Errorf("%v: key echoed: %s", args, errb.String())
		}
	}
}

// TestRunInstallOptions: the install procedure's flags reach the host: the
// first sign-on's answer asks for the IC keys (header digit 4) and delivers a
// single-length MAK in the 16-byte slot, and the key query lists the
// keys of agent/sim/testca.
func TestRunInstallOptions(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	var stderr bytes.Buffer
	done := make(chan int, 1) // a run that fails at once must not block on it
	go func() {
		done <- run(ctx, []string{"--ledger", filepath.Join(t.TempDir(), "l.jsonl"), "--tmk", "0123456789ABCDEFFEDCBA9876543210",
			"--capk", filepath.Join("..", "..", "agent", "sim", "testca"), "--capk-page", "2", "--demand", "sign-on#1=4",
			"--key-layout", "single-mak", "--codes", "ic-end-351"}, pw, &stderr)
		pw.Close()
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatalf("no address: %v (%s)", err, stderr.String())
	}
	go io.Copy(io.Discard, pr)
	addr := strings.TrimSpace(strings.TrimPrefix(line, "listening on"))
	exchange := func(mti, code string, f62 []byte) (*iso8583.Message, acquirer.Header) {
		t.Helper()
		m := acquirer.NewMessage(mti)
		for id, v := range map[int]string{11: "000001", 41: "12345678", 42: "898100012340001", 60: "00000001" + code} {
			if err := acquirer.Set(m, id, v); err != nil {
				t.Fatal(err)
			}
		}
		if f62 != nil {
			_ = acquirer.SetBytes(m, 62, f62)
		}
		b, err := acquirer.Pack(m)
		if err != nil {
			t.Fatal(err)
		}
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		if err := acquirer.WriteFrame(c, acquirer.Frame{TPDU: acquirer.DefaultTPDU, Header: acquirer.DefaultHeader, Message: b}); err != nil {
			t.Fatal(err)
		}
		f, err := acquirer.ReadFrame(c, 0)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := acquirer.Unpack(f.Message)
		if err != nil {
			t.Fatal(err)
		}
		return resp, f.Header
	}
	resp, h := exchange("0800", "004", nil)
	f62 := acquirer.GetBytes(resp, 62)
	if acquirer.Get(resp, 39) != "00" || h[2]&0x0F != 4 || len(f62) != 60 || !bytes.Equal(f62[28:36], make([]byte, 8)) {
		t.Fatalf("sign-on %s, header %X, 62 %d bytes", acquirer.Get(resp, 39), h, len(f62))
	}
	resp, _ = exchange("0820", "372", []byte("100"))
	if f62 := acquirer.GetBytes(resp, 62); len(f62) == 0 || f62[0] != '2' {
		t.Fatalf("query: %q", f62)
	}
	if resp, _ := exchange("0800", "351", nil); acquirer.Get(resp, 60) != "00000001351" {
		t.Fatalf("IC end under ic-end-351: 60 %s", acquirer.Get(resp, 60))
	}
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
}
