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

	"github.com/posagent/posagent/agent/report"
	"github.com/posagent/posagent/agent/testbench"
	"github.com/posagent/posagent/agent/ticket"
	"github.com/posagent/posagent/provisioning"
)

func ticketArgs(key string, extra ...string) []string {
	return append([]string{"ticket", "--key", key, "--tid", "10000001", "--mid", "898310048160001",
		"--name", "上海测试商户", "--legal-person", "张三",
		"--account-hash", strings.Repeat("ab", 32), "--account-salt", strings.Repeat("5a", 16)}, extra...)
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
	key, err := ticket.LoadPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	v := &ticket.Verifier{Key: key, TID: "10000001", StatePath: filepath.Join(t.TempDir(), "state")}
	tk, err := v.Check(bytes.TrimSpace(out.Bytes()))
	if err != nil {
		t.Fatalf("verify: %v\n%s", err, out.String())
	}
	if tk.CardType != provisioning.Credit || tk.TestAmount != 2 || tk.MerchantName != "上海测试商户" || tk.ExpiresAt.Sub(tk.IssuedAt) != 72*time.Hour {
		t.Errorf("ticket = %+v", tk)
	}

	for _, c := range []struct {
		args []string
		want int
	}{
		{[]string{"ticket", "--tid", "10000001"}, 2},            // no key and the rest
		{ticketArgs(priv, "--card-type", "gold"), 2},            // the agent would refuse it
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

// posctl ticket --publish through a mosquitto with the fleet ACL, as central;
// the terminal's Source accepts what arrives.
func TestTicketPublishReachesTheTerminal(t *testing.T) {
	m := testbench.StartMosquittoWith(t, testbench.MosquittoConfig{
		Users: map[string]string{"10000001": "pw-t", "central": "pw-central"},
		ACL:   testbench.FleetACL,
	})
	priv, pub := keygen(t)
	passFile := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(passFile, []byte("pw-central\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	if code := run(ticketArgs(priv, "--publish", m.URL, "--user", "central", "--password-file", passFile), &out, &errb); code != 0 {
		t.Fatalf("publish = %d: %s", code, errb.String())
	}
	if !strings.Contains(out.String(), "published to pos/v1/10000001/ticket (retained)") {
		t.Errorf("output %q", out.String())
	}

	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	r, err := report.New(report.Options{URL: m.URL, TID: "10000001", Username: "10000001", Password: "pw-t", Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	key, err := ticket.LoadPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	src := &ticket.Source{Verifier: &ticket.Verifier{Key: key, TID: "10000001", StatePath: filepath.Join(t.TempDir(), "state")}, Log: quiet}
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
	if code := run(ticketArgs(priv, "--publish", m.URL, "--user", "central", "--password-file", passFile), &out, &errb); code != 1 ||
		!strings.Contains(errb.String(), "refused the login") || strings.Contains(errb.String(), "nope") {
		t.Errorf("wrong password = %d: %s", code, errb.String())
	}
}
