package command

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/posagent/posagent/agent/report"
	"github.com/posagent/posagent/provisioning"
)

const tid = "10000001"

func TestDecode(t *testing.T) {
	for _, c := range []struct {
		in       string
		wantID   string
		wantCode string
		wantStep provisioning.Step
	}{
		{`{"id":"c1","name":"retry-step","args":{"step":"sign-on"}}`, "c1", "", provisioning.StepSignOn},
		{`{"id":"c2","name":"rerun-test-sale"}`, "c2", "", ""},
		{`{"id":"c3","name":"report-now","args":{}}`, "c3", "", ""},
		{`{"id":"c3","name":"report-now","args":null}`, "c3", "", ""},
		{`{"id":"c4","name":"format-disk"}`, "c4", CodeUnknown, ""},
		{`{"id":"c5","name":"retry-step","args":{"step":"live"}}`, "c5", CodeBadArgs, ""},
		{`{"id":"c5","name":"retry-step"}`, "c5", CodeBadArgs, ""},
		{`{"id":"c6","name":"retry-step","args":"sign-on"}`, "c6", CodeBadArgs, ""},
		{`{"id":"c6","name":"retry-step","args":{"step":"sign-on","x":1}}`, "c6", CodeBadArgs, ""},
		{`{"id":"c6","name":"report-now","args":{"now":true}}`, "c6", CodeBadArgs, ""},
		{`{"id":"bad id!","name":"report-now"}`, "", CodeMalformed, ""},
		{`{"id":"","name":"report-now"}`, "", CodeMalformed, ""},
		{`{"name":"report-now"}`, "", CodeMalformed, ""},
		{`{"id":"c7","name":"report-now"} trailing`, "", CodeMalformed, ""},
		{`{"id":"c8","name":"report-now","extra":1}`, "c8", CodeMalformed, ""},
		{`{"id":"c8","name":7}`, "c8", CodeMalformed, ""},
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
			t.Errorf("Decode(%.60s) = %+v, %v; want id %q code %q step %q", c.in, got, err, c.wantID, c.wantCode, c.wantStep)
		}
	}
}

// FuzzDecode: any bytes give a command or a coded error, never a panic, and a
// decoded command is always one the Handler can take.
func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"id":"c1","name":"retry-step","args":{"step":"sign-on"}}`))
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
		if !idPattern.MatchString(c.ID) {
			t.Fatalf("accepted id %q", c.ID)
		}
		switch c.Name {
		case NameRetryStep:
			if !retryable[c.Step] {
				t.Fatalf("retry of %q accepted", c.Step)
			}
		case NameRerunTestSale, NameReportNow:
		default:
			t.Fatalf("accepted name %q", c.Name)
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

var _ Handler = (*fakeHandler)(nil)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func in(payload string) report.Inbound {
	return report.Inbound{Topic: report.CommandTopic(tid), Payload: []byte(payload)}
}

func TestHandle(t *testing.T) {
	h := &fakeHandler{}
	s := &Server{TID: tid, Handler: h, Log: quiet()}
	ctx := context.Background()

	if r := s.Handle(ctx, in(`{"id":"a","name":"retry-step","args":{"step":"bind-card"}}`)); !r.OK || r.ID != "a" || r.Error != nil {
		t.Errorf("retry reply = %+v", r)
	}
	// The same id again (a QoS 1 redelivery): same answer, not run twice.
	if r := s.Handle(ctx, in(`{"id":"a","name":"retry-step","args":{"step":"bind-card"}}`)); !r.OK {
		t.Errorf("duplicate reply = %+v", r)
	}
	if len(h.calls) != 1 || h.calls[0] != "retry bind-card" {
		t.Errorf("calls = %v", h.calls)
	}
	if r := s.Handle(ctx, in(`{"id":"b","name":"nope"}`)); r.OK || r.Error.Code != CodeUnknown || r.ID != "b" {
		t.Errorf("unknown reply = %+v", r)
	}
	if r := s.Handle(ctx, in(`garbage`)); r.OK || r.Error.Code != CodeMalformed {
		t.Errorf("garbage reply = %+v", r)
	}
	ret := in(`{"id":"c","name":"report-now"}`)
	ret.Retained = true
	if r := s.Handle(ctx, ret); r.OK || r.Error.Code != CodeRetained {
		t.Errorf("retained reply = %+v", r)
	}
	other := report.Inbound{Topic: report.CommandTopic("10000002"), Payload: []byte(`{"id":"d","name":"report-now"}`)}
	if r := s.Handle(ctx, other); r.OK {
		t.Errorf("other terminal's command = %+v", r)
	}
	h.err = errors.New("printer /dev/ttyS1 jammed")
	r := s.Handle(ctx, in(`{"id":"e","name":"rerun-test-sale"}`))
	if r.OK || r.Error.Code != CodeFailed || strings.Contains(r.Error.Message, "ttyS1") {
		t.Errorf("failed reply = %+v", r)
	}
	h.err = &Error{Code: "E_CMD_NO_FAILED_STEP", Message: "no step is waiting for a retry"}
	if r := s.Handle(ctx, in(`{"id":"f","name":"retry-step","args":{"step":"sign-on"}}`)); r.Error == nil || r.Error.Code != "E_CMD_NO_FAILED_STEP" {
		t.Errorf("handler's own error = %+v", r)
	}
	h.err, h.panic = nil, true
	if r := s.Handle(ctx, in(`{"id":"g","name":"report-now"}`)); r.OK || r.Error.Code != CodeFailed {
		t.Errorf("panic reply = %+v", r)
	}
	if n := len(h.calls); n != 4 {
		t.Errorf("handler called %d times, want 4 (%v)", n, h.calls)
	}
}

func ExampleDecode() {
	c, err := Decode([]byte(`{"id":"42","name":"retry-step","args":{"step":"sign-on"}}`))
	fmt.Println(c.Name, c.Step, err == nil)
	_, err = Decode([]byte(`{"id":"43","name":"retry-step","args":{"step":"live"}}`))
	fmt.Println(err.Code)
	// Output:
	// retry-step sign-on true
	// E_CMD_BAD_ARGS
}
