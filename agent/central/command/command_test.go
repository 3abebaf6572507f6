package command

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/posagent/posagent/agent/central/mqtt"
	"github.com/posagent/posagent/provisioning"
)

// full wraps the fields of a command in a valid envelope for this terminal,
// unsigned: Decode does not check signatures.
func full(fields string) string {
	return `{` + fields + `,"tid":"10000001","nonce":"` + nonce0 + `","issued_at":"2026-11-27T09:00:00Z","expires_at":"2026-11-27T09:05:00Z","kid":"central-2026a"}`
}

func TestDecode(t *testing.T) {
	for _, c := range []struct {
		in       string
		wantID   string
		wantCode string
		wantStep provisioning.Step
	}{
		{full(`"id":"c1","name":"retry-step","args":{"step":"sign-on"}`), "c1", "", provisioning.StepSignOn},
		{full(`"id":"c2","name":"rerun-test-sale"`), "c2", "", ""},
		{full(`"id":"c3","name":"report-now","args":{}`), "c3", "", ""},
		{full(`"id":"c3","name":"report-now","args":null`), "c3", CodeMalformed, ""},
		{full(`"id":"c4","name":"format-disk"`), "c4", CodeUnknown, ""},
		{full(`"id":"c5","name":"retry-step","args":{"step":"live"}`), "c5", CodeBadArgs, ""},
		{full(`"id":"c5","name":"retry-step"`), "c5", CodeBadArgs, ""},
		{full(`"id":"c6","name":"retry-step","args":"sign-on"`), "c6", CodeBadArgs, ""},
		{full(`"id":"c6","name":"retry-step","args":{"step":"sign-on","x":1}`), "c6", CodeBadArgs, ""},
		{full(`"id":"c6","name":"retry-step","args":{"Step":"sign-on"}`), "c6", CodeBadArgs, ""},
		{full(`"id":"c6","name":"retry-step","args":{"step":"sign-on","step":"void"}`), "c6", CodeMalformed, ""},
		{full(`"id":"c6","name":"report-now","args":{"now":true}`), "c6", CodeBadArgs, ""},
		{full(`"id":"u1","name":"clear-unresolved","args":{"kind":"sale","stan":12,"batch":"000001"}`), "u1", "", ""},
		{full(`"id":"u2","name":"clear-unresolved","args":{"kind":"refund","stan":12,"batch":"000001"}`), "u2", CodeBadArgs, ""},
		{full(`"id":"u3","name":"clear-unresolved","args":{"kind":"void","stan":0,"batch":"000001"}`), "u3", CodeBadArgs, ""},
		{full(`"id":"u4","name":"clear-unresolved","args":{"kind":"void","stan":1000000,"batch":"000001"}`), "u4", CodeBadArgs, ""},
		{full(`"id":"u5","name":"clear-unresolved","args":{"kind":"void","stan":"12","batch":"000001"}`), "u5", CodeBadArgs, ""},
		{full(`"id":"u6","name":"clear-unresolved","args":{"kind":"void","stan":12,"batch":"1"}`), "u6", CodeBadArgs, ""},
		{full(`"id":"u7","name":"clear-unresolved","args":{"kind":"void","stan":12}`), "u7", CodeBadArgs, ""},
		{full(`"id":"bad id!","name":"report-now"`), "", CodeMalformed, ""},
		{full(`"id":"","name":"report-now"`), "", CodeMalformed, ""},
		{full(`"name":"report-now"`), "", CodeMalformed, ""},
		{full(`"id":"c7","name":"report-now"`) + ` trailing`, "c7", CodeMalformed, ""},
		{full(`"id":"c8","name":"report-now","extra":1`), "c8", CodeMalformed, ""},
		{full(`"id":"c8","ID":"c9","name":"report-now"`), "c8", CodeMalformed, ""},
		{full(`"id":"c8","name":7`), "c8", CodeMalformed, ""},
		{`{"id":"c9","name":"report-now"}`, "c9", CodeMalformed, ""}, // the unsigned format: no tid, nonce, window
		{strings.Replace(full(`"id":"c9","name":"report-now"`), "09:05:00", "09:10:01", 1), "c9", CodeMalformed, ""},
		{strings.Replace(full(`"id":"c9","name":"report-now"`), "09:05:00", "08:59:00", 1), "c9", CodeMalformed, ""},
		{strings.Replace(full(`"id":"c9","name":"report-now"`), nonce0, "00", 1), "c9", CodeMalformed, ""},
		{strings.Replace(full(`"id":"c9","name":"report-now"`), "09:00:00Z", "17:00:00+08:00", 1), "c9", CodeMalformed, ""},
		{`[1,2,3]`, "", CodeMalformed, ""},
		{``, "", CodeMalformed, ""},
		{`{"id":"c9","name":"report-now","pad":"` + strings.Repeat("x", MaxSize) + `"}`, "", CodeTooLarge, ""},
	} {
		got, err := Decode([]byte(c.in))
		code := ""
		if err != nil {
			code = err.Code
		}
		if code != c.wantCode || got.ID != c.wantID || got.Step != c.wantStep {
			t.Errorf("Decode(%.80s) = %+v, %v; want id %q code %q step %q", c.in, got, err, c.wantID, c.wantCode, c.wantStep)
		}
	}
	c, err := Decode([]byte(full(`"id":"u1","name":"clear-unresolved","args":{"kind":"void","stan":12,"batch":"000123"}`)))
	if err != nil || c.Kind != "void" || c.STAN != 12 || c.Batch != "000123" || c.TID != tid || c.KID != kid {
		t.Errorf("clear-unresolved = %+v, %v", c, err)
	}
}

// The canonical form is pinned: central's signer is checked against it.
func TestCanonicalGolden(t *testing.T) {
	e := Envelope{ID: "c-1", Name: "retry-step", Args: []byte(`{"step":"sign-on"}`), TID: tid, Nonce: nonce0,
		IssuedAt: t0, ExpiresAt: t0.Add(5 * time.Minute), KID: kid}
	want := "posagent-command-v1\n" +
		"\x00\x00\x00\x03c-1" + "\x00\x00\x00\x0aretry-step" + "\x00\x00\x00\x12{\"step\":\"sign-on\"}" +
		"\x00\x00\x00\x0810000001" + "\x00\x00\x00\x20" + nonce0 +
		"\x00\x00\x00\x142026-11-27T09:00:00Z" + "\x00\x00\x00\x142026-11-27T09:05:00Z" + "\x00\x00\x00\x0dcentral-2026a"
	if got := string(e.Canonical()); got != want {
		t.Errorf("canonical =\n%q\nwant\n%q", got, want)
	}
	e.Args = nil
	if got := string(e.Canonical()); !strings.Contains(got, "retry-step\x00\x00\x00\x00\x00\x00\x00\x0810000001") {
		t.Errorf("absent args are not an empty field: %q", got)
	}
}

// FuzzDecode: any bytes give a command or a coded error, never a panic, and a
// decoded command is always one the Handler can take.
func FuzzDecode(f *testing.F) {
	f.Add([]byte(full(`"id":"c1","name":"retry-step","args":{"step":"sign-on"}`)))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := Decode(b)
		if err != nil {
			if !strings.HasPrefix(err.Code, "E_CMD_") || err.Message == "" {
				t.Fatalf("error without code: %+v", err)
			}
			if c.ID != "" && !idPattern.MatchString(c.ID) {
				t.Fatalf("unsafe id %q in a refusal", c.ID)
			}
			return
		}
		checkTakeable(t, c)
	})
}

// checkTakeable fails unless c is a command the Handler can be given.
func checkTakeable(t *testing.T, c Command) {
	t.Helper()
	if !idPattern.MatchString(c.ID) || !noncePattern.MatchString(c.Nonce) || c.ExpiresAt.Sub(c.IssuedAt) > MaxValidity {
		t.Fatalf("accepted %+v", c)
	}
	switch c.Name {
	case NameRetryStep:
		if !retryable[c.Step] {
			t.Fatalf("retry of %q accepted", c.Step)
		}
	case NameClearUnresolved:
		if (c.Kind != "sale" && c.Kind != "void") || c.STAN < 1 || c.STAN > 999999 || !batchPattern.MatchString(c.Batch) {
			t.Fatalf("clear-unresolved %+v accepted", c)
		}
	case NameRerunTestSale, NameReportNow:
	default:
		t.Fatalf("accepted name %q", c.Name)
	}
}

// FuzzVerify: through the whole verifier (signature, window, nonce record),
// any bytes are refused with a code or give a command for this terminal,
// signed by the configured key, within its window, never accepted twice.
func FuzzVerify(f *testing.F) {
	e := envelope(f, "c1", NameRetryStep, `{"step":"sign-on"}`)
	e.Nonce = nonce0
	f.Add(signEnv(f, e, testKey))
	f.Fuzz(func(t *testing.T, b []byte) {
		v := verifierIn(t, t.TempDir(), t0.Add(time.Minute))
		c, err := v.Accept(b)
		if err != nil {
			var ce *Error
			if !errors.As(err, &ce) || !strings.HasPrefix(ce.Code, "E_CMD_") || ce.Message == "" {
				t.Fatalf("uncoded error %v", err)
			}
			return
		}
		checkTakeable(t, c)
		if c.TID != tid || c.KID != kid || !c.ExpiresAt.After(t0.Add(time.Minute-DefaultSkew)) {
			t.Fatalf("accepted %+v", c)
		}
		if _, err := v.Accept(b); err == nil {
			t.Fatal("accepted twice")
		}
	})
}

type fakeHandler struct {
	mu    sync.Mutex
	calls []string
	err   error
	panic bool
}

func (h *fakeHandler) record(s string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.calls = append(h.calls, s)
	if h.panic {
		panic("boom")
	}
	return h.err
}

func (h *fakeHandler) RetryStep(_ context.Context, s provisioning.Step) error {
	return h.record("retry " + string(s))
}
func (h *fakeHandler) RerunTestSale(context.Context) error { return h.record("rerun") }
func (h *fakeHandler) ReportNow(context.Context) error     { return h.record("report") }
func (h *fakeHandler) ClearUnresolved(_ context.Context, kind string, stan int, batch string) error {
	return h.record(fmt.Sprintf("clear %s %d %s", kind, stan, batch))
}

var _ Handler = (*fakeHandler)(nil)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func in(payload string) mqtt.Inbound {
	return mqtt.Inbound{Topic: mqtt.CommandTopic(tid), Payload: []byte(payload)}
}

func TestHandle(t *testing.T) {
	h := &fakeHandler{}
	s := newServer(t, nil, h)
	ctx := context.Background()
	signed := func(id, name, args string) string { return string(signEnv(t, envelope(t, id, name, args), testKey)) }

	retryEnv := envelope(t, "a", NameRetryStep, `{"step":"bind-card"}`)
	retry := string(signEnv(t, retryEnv, testKey))
	if r := s.Handle(ctx, in(retry)); !r.OK || r.ID != "a" || r.Error != nil {
		t.Errorf("retry reply = %+v", r)
	}
	// The same bytes again (a QoS 1 redelivery, central's resend): not run
	// twice, answered with the first reply.
	if r := s.Handle(ctx, in(retry)); !r.OK || r.ID != "a" || r.Error != nil {
		t.Errorf("duplicate reply = %+v", r)
	}
	// The same nonce in other bytes (another id, so signed anew): a replay.
	again := retryEnv
	again.ID = "a2"
	if r := s.Handle(ctx, in(string(signEnv(t, again, testKey)))); r.OK || r.Error == nil || r.Error.Code != CodeReplayed || r.ID != "a2" {
		t.Errorf("same nonce, other bytes = %+v", r)
	}
	if len(h.calls) != 1 || h.calls[0] != "retry bind-card" {
		t.Errorf("calls = %v", h.calls)
	}
	if r := s.Handle(ctx, in(string(mustResign(t, envelope(t, "b", "nope", ""))))); r.OK || r.Error.Code != CodeUnknown || r.ID != "b" {
		t.Errorf("unknown reply = %+v", r)
	}
	if r := s.Handle(ctx, in(`garbage`)); r.OK || r.Error.Code != CodeMalformed {
		t.Errorf("garbage reply = %+v", r)
	}
	ret := in(signed("c", NameReportNow, ""))
	ret.Retained = true
	if r := s.Handle(ctx, ret); r.OK || r.Error.Code != CodeRetained {
		t.Errorf("retained reply = %+v", r)
	}
	other := mqtt.Inbound{Topic: mqtt.CommandTopic("10000002"), Payload: []byte(signed("d", NameReportNow, ""))}
	if r := s.Handle(ctx, other); r.OK {
		t.Errorf("other terminal's command = %+v", r)
	}
	if r := s.Handle(ctx, in(signed("u", NameClearUnresolved, `{"kind":"sale","stan":7,"batch":"000002"}`))); !r.OK {
		t.Errorf("clear-unresolved reply = %+v", r)
	}
	h.err = errors.New("printer /dev/ttyS1 jammed")
	r := s.Handle(ctx, in(signed("e", NameRerunTestSale, "")))
	if r.OK || r.Error.Code != CodeFailed || strings.Contains(r.Error.Message, "ttyS1") {
		t.Errorf("failed reply = %+v", r)
	}
	h.err = &Error{Code: "E_CMD_NO_FAILED_STEP", Message: "no step is waiting for a retry"}
	if r := s.Handle(ctx, in(signed("f", NameRetryStep, `{"step":"sign-on"}`))); r.Error == nil || r.Error.Code != "E_CMD_NO_FAILED_STEP" {
		t.Errorf("handler's own error = %+v", r)
	}
	h.err, h.panic = nil, true
	if r := s.Handle(ctx, in(signed("g", NameReportNow, ""))); r.OK || r.Error.Code != CodeFailed {
		t.Errorf("panic reply = %+v", r)
	}
	if n := len(h.calls); n != 5 || h.calls[1] != "clear sale 7 000002" {
		t.Errorf("handler called %d times, want 5 (%v)", n, h.calls)
	}
	if r := (&Server{TID: tid, Handler: h, Log: quiet()}).Handle(ctx, in(signed("h", NameReportNow, ""))); r.Error == nil || r.Error.Code != CodeDisabled {
		t.Errorf("server without a verifier = %+v", r)
	}
}

func ExampleSign() {
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	now := time.Now()
	payload, _ := Sign(Envelope{
		ID: "42", Name: NameRetryStep, Args: []byte(`{ "step": "sign-on" }`),
		TID: "10000001", Nonce: "00112233445566778899aabbccddeeff", KID: "central-2026a",
		IssuedAt: now, ExpiresAt: now.Add(5 * time.Minute),
	}, key)
	c, err := Decode(payload)
	fmt.Println(c.Name, c.Step, c.KID, err == nil)
	_, serr := Sign(Envelope{ID: "43", Name: NameRetryStep, Args: []byte(`{"step":"live"}`), TID: "10000001",
		Nonce: "00112233445566778899aabbccddeeff", KID: "central-2026a", IssuedAt: now, ExpiresAt: now.Add(time.Minute)}, key)
	fmt.Println(serr)
	// Output:
	// retry-step sign-on central-2026a true
	// command: E_CMD_BAD_ARGS: args.step is not a step that can be retried
}

// A resend of the same signed bytes gets the reply they got, whatever it
// was (a handler's refusal too), without running the handler again; the
// server remembers the last rememberedReplies of them, and a resend of an
// older one, or one after a restart, is refused as a replay.
func TestResendGetsTheSameReply(t *testing.T) {
	h := &fakeHandler{err: &Error{Code: "E_CMD_NO_FAILED_STEP", Message: "no step is waiting for a retry"}}
	s := newServer(t, nil, h)
	ctx := context.Background()
	refused := string(signEnv(t, envelope(t, "refused", NameRetryStep, `{"step":"sign-on"}`), testKey))
	first := s.Handle(ctx, in(refused))
	if first.OK || first.Error == nil || first.Error.Code != "E_CMD_NO_FAILED_STEP" {
		t.Fatalf("first reply = %+v", first)
	}
	h.err = nil
	if r := s.Handle(ctx, in(refused)); r.OK || r.Error == nil || *r.Error != *first.Error || r.ID != "refused" {
		t.Errorf("resent: reply = %+v, want the first one %+v", r, first)
	}
	oldest := signedPayload(t, "oldest", NameReportNow)
	if r := s.Handle(ctx, in(oldest)); !r.OK {
		t.Fatalf("oldest = %+v", r)
	}
	for i := range rememberedReplies {
		if r := s.Handle(ctx, in(signedPayload(t, fmt.Sprint("n", i), NameReportNow))); !r.OK {
			t.Fatalf("command %d = %+v", i, r)
		}
	}
	if n := len(h.calls); n != rememberedReplies+2 {
		t.Fatalf("handler called %d times, want %d", n, rememberedReplies+2)
	}
	if r := s.Handle(ctx, in(oldest)); r.OK || r.Error == nil || r.Error.Code != CodeReplayed {
		t.Errorf("resend of a command no longer remembered = %+v, want %s", r, CodeReplayed)
	}
	last := signedPayload(t, "last", NameReportNow)
	if r := s.Handle(ctx, in(last)); !r.OK {
		t.Fatalf("last = %+v", r)
	}
	if r := s.Handle(ctx, in(last)); !r.OK || r.ID != "last" {
		t.Errorf("resend of the last = %+v", r)
	}
	if r := restarted(t, s).Handle(ctx, in(last)); r.OK || r.Error == nil || r.Error.Code != CodeReplayed {
		t.Errorf("resend after a restart = %+v, want %s", r, CodeReplayed)
	}
	if n := len(h.calls); n != rememberedReplies+3 {
		t.Errorf("handler called %d times, want %d: a resend ran it again", n, rememberedReplies+3)
	}
}
