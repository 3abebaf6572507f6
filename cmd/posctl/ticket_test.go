package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/posagent/posagent/agent/central/mqtt"
	"github.com/posagent/posagent/agent/central/ticket"
	"github.com/posagent/posagent/agent/central/trust"
	"github.com/posagent/posagent/provisioning"
)

func ticketArgs(key string, extra ...string) []string {
	return append([]string{"ticket", "--key", key, "--kid", "central-2026a", "--tid", "10000001", "--mid", "898310048160001",
		"--name", "上海测试商户", "--legal-person", "张三", "--account-check", strings.Repeat("ab", 32)}, extra...)
}

// ring is the terminals' key ring for the public key file pub as kid
// central-2026a.
func ring(t *testing.T, pub string) *trust.KeyRing {
	t.Helper()
	key, err := trust.LoadPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	r, err := trust.NewKeyRing([]trust.Key{{ID: "central-2026a", Public: key}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func floor(t *testing.T) *trust.Floor {
	t.Helper()
	f, err := trust.OpenFloor(filepath.Join(t.TempDir(), "time-floor.json"))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func keygen(t *testing.T) (priv, pub string) {
	t.Helper()
	prefix := filepath.Join(t.TempDir(), "central")
	var out, errb bytes.Buffer
	if code := run([]string{"ticket", "keygen", "--out", prefix}, &out, &errb); code != 0 {
		t.Fatalf("keygen = %d: %s", code, errb.String())
	}
	if code := run([]string{"ticket", "keygen", "--out", prefix}, &out, &errb); code != 1 {
		t.Errorf("keygen over an existing key = %d, want 1", code)
	}
	if st, err := os.Stat(prefix + ".key"); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("private key mode: %v %v", st, err)
	}
	return prefix + ".key", prefix + ".pub"
}

func TestTicketSignsAVerifiableTicket(t *testing.T) {
	priv, pub := keygen(t)
	var out, errb bytes.Buffer
	if code := run(ticketArgs(priv, "--card-type", "credit", "--amount", "2"), &out, &errb); code != 0 {
		t.Fatalf("ticket = %d: %s", code, errb.String())
	}
	v := &ticket.Verifier{Keys: ring(t, pub), TID: "10000001", StatePath: filepath.Join(t.TempDir(), "state"), Floor: floor(t)}
	tk, err := v.Check(bytes.TrimSpace(out.Bytes()))
	if err != nil {
		t.Fatalf("verify: %v\n%s", err, out.String())
	}
	if tk.CardType != provisioning.Credit || tk.TestAmount != 2 || tk.MerchantName != "上海测试商户" || tk.ExpiresAt.Sub(tk.IssuedAt) != 72*time.Hour ||
		tk.KID != "central-2026a" || tk.AccountCheck != strings.Repeat("ab", 32) {
		t.Errorf("ticket = %+v", tk)
	}

	for _, c := range []struct {
		args []string
		want int
	}{
		{[]string{"ticket", "--tid", "10000001"}, 2},            // no key and the rest
		{ticketArgs(priv, "--card-type", "gold"), 2},            // the agent would refuse it
		{ticketArgs(priv, "--kid", "a b"), 2},                   // not a kid
		{ticketArgs(priv, "--account-check", "AB"), 2},          // not 64 lowercase hex
		{ticketArgs(priv, "--account-hash", "ab"), 2},           // the old flags are gone
		{ticketArgs(priv, "--valid", "-1h"), 2},                 // already expired
		{ticketArgs(pub), 1},                                    // a public key is no signing key
		{ticketArgs(priv, "--publish", "tcp://127.0.0.1:1"), 1}, // nothing listens there
		{[]string{"ticket", "keygen"}, 2},                       // no --out
	} {
		var o, e bytes.Buffer
		if code := run(c.args, &o, &e); code != c.want {
			t.Errorf("%v = %d, want %d (%s)", c.args[1:], code, c.want, e.String())
		}
	}
}

// posctl ticket --publish through a TLS mosquitto with the fleet ACL, as
// central; the terminal's Source accepts what arrives.
func TestTicketPublishReachesTheTerminal(t *testing.T) {
	m, passFile := centralMosquitto(t)
	priv, pub := keygen(t)
	var out, errb bytes.Buffer
	if code := run(ticketArgs(priv, "--publish", m.TLSURL, "--ca", m.PKI.CAFile, "--user", "central", "--password-file", passFile), &out, &errb); code != 0 {
		t.Fatalf("publish = %d: %s", code, errb.String())
	}
	if !strings.Contains(out.String(), "published to pos/v1/10000001/ticket (retained)") {
		t.Errorf("output %q", out.String())
	}

	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	r, err := mqtt.New(mqtt.Options{URL: m.TLSURL, CAFile: m.PKI.CAFile, TID: "10000001", Username: "10000001", Password: "pw-t", Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	src := &ticket.Source{Verifier: &ticket.Verifier{Keys: ring(t, pub), TID: "10000001", StatePath: filepath.Join(t.TempDir(), "state"), Floor: floor(t)}, Log: quiet}
	if err := src.Listen(r); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer r.Close(ctx)
	mr, err := src.Parameters(ctx, provisioning.Terminal{TID: "10000001"})
	if err != nil || mr.MID != "898310048160001" || mr.LegalPerson != "张三" {
		t.Fatalf("Parameters = %+v, %v", mr, err)
	}

	// Wrong password: a clear refusal, exit 1, no password in the message.
	if err := os.WriteFile(passFile, []byte("nope\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	errb.Reset()
	if code := run(ticketArgs(priv, "--publish", m.TLSURL, "--ca", m.PKI.CAFile, "--user", "central", "--password-file", passFile), &out, &errb); code != 1 ||
		!strings.Contains(errb.String(), "refused the login") || strings.Contains(errb.String(), "nope") {
		t.Errorf("wrong password = %d: %s", code, errb.String())
	}
}
