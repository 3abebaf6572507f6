package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

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
