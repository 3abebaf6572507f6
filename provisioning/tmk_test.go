package provisioning_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/posagent/posagent/provisioning"
)

// tmkHost is the fake host with a remote TMK download in front of it.
type tmkHost struct {
	*fakeHost
	state    provisioning.TMKState
	fetchErr error  // FetchTMK fails with it (and keeps nothing)
	activate string // 351's response code; "" is 00
	sent     []string
}

var _ provisioning.TMKSource = (*tmkHost)(nil)

func (h *tmkHost) TMKState() provisioning.TMKState { return h.state }

func (h *tmkHost) FetchTMK(_ context.Context, r provisioning.AdminRequest) (provisioning.Ack, error) {
	h.sent = append(h.sent, "352")
	if h.fetchErr != nil {
		return provisioning.Ack{RC: "00"}, h.fetchErr
	}
	h.state = provisioning.TMKPending
	return provisioning.Ack{RC: "00"}, nil
}

func (h *tmkHost) ActivateTMK(_ context.Context, r provisioning.AdminRequest) (provisioning.Ack, error) {
	h.sent = append(h.sent, "351")
	if h.activate != "" && h.activate != "00" {
		h.state = provisioning.TMKMissing
		return provisioning.Ack{RC: h.activate}, nil
	}
	h.state = provisioning.TMKHeld
	return provisioning.Ack{RC: "00"}, nil
}

func (h *tmkHost) SignOn(ctx context.Context, r provisioning.SignOnRequest) (provisioning.SignOnResult, error) {
	if h.state != provisioning.TMKHeld {
		return provisioning.SignOnResult{}, errors.New("tmk host: a sign-on without a TMK")
	}
	h.sent = append(h.sent, "sign-on")
	return h.fakeHost.SignOn(ctx, r)
}

type checkErr struct{}

func (checkErr) Error() string       { return "the TMK does not match its check value" }
func (checkErr) FailureCode() string { return "E_TMK_CHECK" }

// TestFlowRemoteTMK: the flow downloads and activates the TMK before its
// first sign-on, resumes a pending one with the activation, and stops with
// a named failure when the check value or the host says no.
func TestFlowRemoteTMK(t *testing.T) {
	for _, tc := range []struct {
		name  string
		host  tmkHost
		code  string
		first []string
	}{
		{"download", tmkHost{state: provisioning.TMKMissing}, "", []string{"352", "351", "sign-on"}},
		{"pending after a power cut", tmkHost{state: provisioning.TMKPending}, "", []string{"351", "sign-on"}},
		{"held", tmkHost{state: provisioning.TMKHeld}, "", []string{"sign-on"}},
		{"wrong check value", tmkHost{state: provisioning.TMKMissing, fetchErr: checkErr{}}, "E_TMK_CHECK", []string{"352"}},
		{"activation refused", tmkHost{state: provisioning.TMKMissing, activate: "A7"}, "E_TMK_DECLINED", []string{"352", "351"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig()
			h := tc.host
			h.fakeHost = r.host
			f := r.flow()
			f.Host = &h
			if tc.code != "" {
				r.ui.answers = []string{"abort"}
			}
			cp, err := f.Run(context.Background())
			if tc.code == "" {
				if err != nil || cp.Step != provisioning.StepLive {
					t.Fatalf("Run = %v at %s", err, cp.Step)
				}
			} else if cp.Failure == nil || cp.Failure.Code != tc.code || strings.Contains(cp.Failure.Message, "%!") {
				t.Fatalf("Run = %v, failure %+v", err, cp.Failure)
			}
			for i, m := range tc.first {
				if i >= len(h.sent) || h.sent[i] != m {
					t.Fatalf("sent %v, want %v first", h.sent, tc.first)
				}
			}
			if tc.code != "" && len(h.sent) != len(tc.first) {
				t.Fatalf("sent %v after the failure", h.sent)
			}
		})
	}
}
