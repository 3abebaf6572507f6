package ticket

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/posagent/posagent/agent/central/mqtt"
	"github.com/posagent/posagent/agent/central/trust"
	"github.com/posagent/posagent/provisioning"
)

const (
	tid = "10000001"
	mid = "898310048160001"
	kid = "central-2026a"
)

var t0 = time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)

func keys(t *testing.T) (ed25519.PublicKey, ed25519.PrivateKey) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return pub, priv
}

func sample(nonce string, issued time.Time) Ticket {
	return Ticket{
		KID: kid, TID: tid, MID: mid, MerchantName: "上海测试商户", LegalPerson: "张三",
		AccountCheck: strings.Repeat("ab", 32), CardType: provisioning.Debit, TestAmount: 1,
		IssuedAt: issued, ExpiresAt: issued.Add(72 * time.Hour), Nonce: nonce,
	}
}

func nonce(i byte) string { return strings.Repeat("0", 30) + string("0123456789abcdef"[i%16]) + "f" }

func sign(t *testing.T, tk Ticket, k ed25519.PrivateKey) []byte {
	t.Helper()
	b, err := Sign(tk, k)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func ring(t testing.TB, pub ed25519.PublicKey) *trust.KeyRing {
	t.Helper()
	r, err := trust.NewKeyRing([]trust.Key{{ID: kid, Public: pub}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func floor(t testing.TB, dir string) *trust.Floor {
	t.Helper()
	f, err := trust.OpenFloor(filepath.Join(dir, "time-floor.json"))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func verifier(t *testing.T, pub ed25519.PublicKey, now time.Time) *Verifier {
	dir := t.TempDir()
	return &Verifier{Keys: ring(t, pub), TID: tid, StatePath: filepath.Join(dir, "ticket-state.json"),
		Floor: floor(t, dir), Now: func() time.Time { return now }}
}

// again is a new Verifier on v's files, as after a restart, with clock now.
func again(t *testing.T, v *Verifier, now time.Time) *Verifier {
	dir := filepath.Dir(v.StatePath)
	return &Verifier{Keys: v.Keys, TID: tid, StatePath: v.StatePath, Floor: floor(t, dir), Now: func() time.Time { return now }}
}

// mutate re-encodes a signed payload with one change, keeping the signature.
func mutate(t *testing.T, payload []byte, f func(*Ticket)) []byte {
	t.Helper()
	var tk Ticket
	if err := json.Unmarshal(payload, &tk); err != nil {
		t.Fatal(err)
	}
	f(&tk)
	b, _ := json.Marshal(tk)
	return b
}

// mutateRaw replaces one field's JSON text in a signed payload.
func mutateRaw(t *testing.T, payload []byte, field, raw string) []byte {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(payload, &m); err != nil {
		t.Fatal(err)
	}
	m[field] = json.RawMessage(raw)
	b, _ := json.Marshal(m)
	return b
}

func TestRefusals(t *testing.T) {
	pub, priv := keys(t)
	_, other := keys(t)
	now := t0.Add(time.Hour)
	good := sign(t, sample(nonce(1), t0), priv)
	for _, c := range []struct {
		name    string
		payload []byte
		want    error
	}{
		{"unsigned", mutate(t, good, func(tk *Ticket) { tk.Sig = "" }), ErrUnsigned},
		{"signed by another key", sign(t, sample(nonce(1), t0), other), ErrBadSignature},
		{"altered after signing", mutate(t, good, func(tk *Ticket) { tk.AccountCheck = strings.Repeat("cd", 32) }), ErrBadSignature},
		{"relabelled with another kid", mutate(t, good, func(tk *Ticket) { tk.KID = "central-2026b" }), ErrUnknownKey},
		{"signature not base64", mutate(t, good, func(tk *Ticket) { tk.Sig = "!!" }), ErrBadSignature},
		{"truncated signature", mutate(t, good, func(tk *Ticket) { tk.Sig = tk.Sig[:40] }), ErrBadSignature},
		{"expired", sign(t, func() Ticket { tk := sample(nonce(1), t0.Add(-100*time.Hour)); return tk }(), priv), ErrExpired},
		{"not yet valid", sign(t, sample(nonce(1), now.Add(time.Hour)), priv), ErrNotYetValid},
		{"other terminal", sign(t, func() Ticket { tk := sample(nonce(1), t0); tk.TID = "10000002"; return tk }(), priv), ErrOtherTerminal},
		{"not JSON", []byte("ticket please"), ErrMalformed},
		{"unknown field", bytes.Replace(good, []byte(`{"v":2,`), []byte(`{"v":2,"extra":"x",`), 1), ErrMalformed},
		{"wrong type", bytes.Replace(good, []byte(`"test_amount":1`), []byte(`"test_amount":"1"`), 1), ErrMalformed},
		{"version 3", mutate(t, good, func(tk *Ticket) { tk.V = 3 }), ErrBadSignature}, // v is signed
		{"version 1 (account hash)", []byte(`{"v":1,"tid":"10000001","account_hash":"ab","account_salt":"5a","sig":"x"}`), ErrMalformed},
		{"too large", append(bytes.Repeat([]byte(" "), MaxSize), good...), ErrTooLarge},
		{"duplicate key", bytes.Replace(good, []byte(`{`), []byte(`{"mid":"000000000000000",`), 1), ErrMalformed},
		{"key in another case", bytes.Replace(good, []byte(`"mid":`), []byte(`"MID":`), 1), ErrMalformed},
		{"both cases", bytes.Replace(good, []byte(`{`), []byte(`{"Mid":"000000000000000",`), 1), ErrMalformed},
		{"time with an offset", mutateRaw(t, good, "issued_at", `"2026-11-27T17:00:00+08:00"`), ErrMalformed},
		{"test amount above the cap", sign(t, func() Ticket { tk := sample(nonce(1), t0); tk.TestAmount = 101; return tk }(), priv), ErrAmount},
		{"empty object", []byte(`{}`), ErrUnsigned},
	} {
		t.Run(c.name, func(t *testing.T) {
			v := verifier(t, pub, now)
			_, err := v.Accept(c.payload)
			if !errors.Is(err, c.want) {
				t.Fatalf("Accept = %v, want %v", err, c.want.(*Error).Code)
			}
			var te *Error
			if !errors.As(err, &te) || !strings.HasPrefix(te.Code, "E_TICKET_") {
				t.Errorf("error %v is not a coded *Error", err)
			}
			if strings.Contains(err.Error(), "上海") || strings.Contains(err.Error(), "abab") {
				t.Errorf("error %q leaks ticket content", err)
			}
			if _, err := os.Stat(v.StatePath); err == nil {
				t.Error("a refused ticket was recorded")
			}
		})
	}
}

func TestAcceptAndReplay(t *testing.T) {
	pub, priv := keys(t)
	now := t0.Add(time.Hour)
	v := verifier(t, pub, now)
	first := sign(t, sample(nonce(1), t0), priv)
	tk, err := v.Accept(first)
	if err != nil {
		t.Fatal(err)
	}
	if m := tk.Merchant(); m.MID != mid || m.Name != "上海测试商户" || m.CardType != provisioning.Debit || m.TestAmount != 1 ||
		m.AccountCheck != strings.Repeat("ab", 32) {
		t.Errorf("merchant = %+v", m)
	}
	// A new Verifier on the same file: the state survived.
	v2 := again(t, v, now)
	if _, err := v2.Accept(first); err != nil {
		t.Errorf("the very ticket accepted last, again = %v, want accepted (step re-run)", err)
	}
	for _, c := range []struct {
		name string
		tk   Ticket
		want error
	}{
		{"same issued_at, new nonce", sample(nonce(2), t0), ErrSuperseded},
		{"older", sample(nonce(3), t0.Add(-time.Minute)), ErrSuperseded},
		{"newer but same nonce", sample(nonce(1), t0.Add(time.Minute)), ErrReplayed},
	} {
		if _, err := v2.Accept(sign(t, c.tk, priv)); !errors.Is(err, c.want) {
			t.Errorf("%s: Accept = %v, want %s", c.name, err, c.want.(*Error).Code)
		}
	}
	newer := sign(t, sample(nonce(4), t0.Add(time.Minute)), priv)
	if _, err := v2.Accept(newer); err != nil {
		t.Fatalf("newer ticket: %v", err)
	}
	if _, err := v2.Accept(first); !errors.Is(err, ErrSuperseded) {
		t.Errorf("first ticket after a newer one = %v, want E_TICKET_SUPERSEDED", err)
	}
}

func TestCorruptReplayStateIsAnError(t *testing.T) {
	pub, priv := keys(t)
	v := verifier(t, pub, t0.Add(time.Hour))
	if err := os.WriteFile(v.StatePath, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := v.Accept(sign(t, sample(nonce(1), t0), priv))
	if !errors.Is(err, ErrCorruptState) {
		t.Fatalf("Accept with an empty state file = %v, want ErrCorruptState", err)
	}
}

func TestSignRefusesNonsense(t *testing.T) {
	_, priv := keys(t)
	tk := sample(nonce(1), t0)
	tk.CardType = "gold"
	if _, err := Sign(tk, priv); !errors.Is(err, ErrMalformed) {
		t.Errorf("Sign(card type gold) = %v", err)
	}
	if _, err := Sign(sample(nonce(1), t0), priv[:10]); err == nil {
		t.Error("Sign with a short key: no error")
	}
}

// The canonical form is pinned: other implementations (central's signer) are
// checked against these bytes.
func TestCanonicalGolden(t *testing.T) {
	tk := sample("00112233445566778899aabbccddeeff", t0)
	tk.V = 2
	got := tk.Canonical()
	want := "posagent-ticket-v2\n" +
		"\x00\x00\x00\x012" + "\x00\x00\x00\x0dcentral-2026a" + "\x00\x00\x00\x0810000001" + "\x00\x00\x00\x0f898310048160001" +
		"\x00\x00\x00\x12上海测试商户" + "\x00\x00\x00\x06张三" + "\x00\x00\x00\x00" +
		"\x00\x00\x00\x40" + strings.Repeat("ab", 32) +
		"\x00\x00\x00\x05debit" + "\x00\x00\x00\x011" +
		"\x00\x00\x00\x142026-11-27T09:00:00Z" + "\x00\x00\x00\x142026-11-30T09:00:00Z" +
		"\x00\x00\x00\x2000112233445566778899aabbccddeeff"
	if string(got) != want {
		t.Errorf("canonical =\n%q\nwant\n%q", got, want)
	}
}

func TestKeysRoundTrip(t *testing.T) {
	privPEM, pubPEM, err := trust.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	priv, err := trust.ParsePrivateKey(privPEM)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := trust.ParsePublicKey(pubPEM)
	if err != nil {
		t.Fatal(err)
	}
	v := verifier(t, pub, t0.Add(time.Hour))
	if _, err := v.Accept(sign(t, sample(nonce(1), t0), priv)); err != nil {
		t.Fatal(err)
	}
}

// recorder is a provisioning.Reporter and Prompter that keeps what it got.
type recorder struct {
	mu      sync.Mutex
	reports []provisioning.Status
	screens []provisioning.Screen
	ch      chan struct{}
}

func (r *recorder) Report(_ context.Context, s provisioning.Status) {
	r.mu.Lock()
	r.reports = append(r.reports, s)
	r.mu.Unlock()
	r.ch <- struct{}{}
}

func (r *recorder) Show(_ context.Context, s provisioning.Screen) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.screens = append(r.screens, s)
	return nil
}

func (r *recorder) Ask(context.Context, provisioning.Screen, ...provisioning.Option) (string, error) {
	return "", errors.New("not asked")
}

var (
	_ provisioning.Reporter = (*recorder)(nil)
	_ provisioning.Prompter = (*recorder)(nil)
)

// fakeSub delivers to the Source what a test publishes.
type fakeSub struct{ fn func(mqtt.Inbound) }

func (f *fakeSub) Subscribe(topic string, fn func(mqtt.Inbound)) error {
	if topic != mqtt.TicketTopic(tid) {
		return errors.New("wrong topic " + topic)
	}
	f.fn = fn
	return nil
}

func TestSourceReportsRefusalsAndWaits(t *testing.T) {
	pub, priv := keys(t)
	_, forger := keys(t)
	rec := &recorder{ch: make(chan struct{}, 8)}
	src := &Source{Verifier: verifier(t, pub, t0.Add(time.Hour)), Reporter: rec, UI: rec}
	sub := &fakeSub{}
	if err := src.Listen(sub); err != nil {
		t.Fatal(err)
	}
	sub.fn(mqtt.Inbound{Payload: sign(t, sample(nonce(1), t0), forger)}) // before the step runs
	type result struct {
		m   provisioning.Merchant
		err error
	}
	done := make(chan result, 1)
	go func() {
		m, err := src.Parameters(context.Background(), provisioning.Terminal{TID: tid, MID: mid})
		done <- result{m, err}
	}()
	select { // the forged one, refused and reported; the step is still waiting
	case <-rec.ch:
	case <-time.After(10 * time.Second):
		t.Fatal("refusal not reported")
	}
	select {
	case r := <-done:
		t.Fatalf("Parameters returned after a forged ticket: %+v", r)
	default:
	}
	sub.fn(mqtt.Inbound{Payload: sign(t, sample(nonce(2), t0), priv)})
	var r result
	select {
	case r = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Parameters did not return after a valid ticket")
	}
	if r.err != nil || r.m.MID != mid {
		t.Fatalf("Parameters = %+v, %v", r.m, r.err)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.reports) != 1 || rec.reports[0].Error == nil || rec.reports[0].Error.Code != CodeBadSignature ||
		rec.reports[0].Step != provisioning.StepParameters || rec.reports[0].State != provisioning.StateRunning {
		t.Errorf("reports = %+v", rec.reports)
	}
	if len(rec.screens) != 1 || !strings.Contains(strings.Join(rec.screens[0].Lines, " "), CodeBadSignature) {
		t.Errorf("screens = %+v", rec.screens)
	}
	// A retry of the step gets the accepted record again without a new delivery.
	m, err := src.Parameters(context.Background(), provisioning.Terminal{TID: tid})
	if err != nil || m.MID != mid {
		t.Errorf("second Parameters = %+v, %v", m, err)
	}
}

func TestSourceEndsWithContext(t *testing.T) {
	pub, _ := keys(t)
	src := &Source{Verifier: verifier(t, pub, t0)}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := src.Parameters(ctx, provisioning.Terminal{}); !errors.Is(err, context.Canceled) {
		t.Errorf("Parameters = %v, want context.Canceled", err)
	}
}

func ExampleSign() {
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	payload, _ := Sign(Ticket{
		TID: "10000001", MID: "898310048160001", MerchantName: "Shop", LegalPerson: "Zhang San",
		KID: "central-2026a", AccountCheck: strings.Repeat("ab", 32), CardType: provisioning.Debit, TestAmount: 1,
		IssuedAt: t0, ExpiresAt: t0.Add(72 * time.Hour), Nonce: "00112233445566778899aabbccddeeff",
	}, priv)
	tk, _ := Parse(payload)
	sig, _ := base64.StdEncoding.DecodeString(tk.Sig)
	fmt.Println(tk.V, tk.TID, len(sig), ed25519.Verify(priv.Public().(ed25519.PublicKey), tk.Canonical(), sig))
	// Output: 2 10000001 64 true
}
