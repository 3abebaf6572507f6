//go:build cgo

package main

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/posagent/posagent/agent/testkit/bench"
	"github.com/posagent/posagent/agent/testkit/rig"
)

func TestCardRead(t *testing.T) {
	bench.NeedPCSC(t)
	for _, tc := range []struct {
		profile, pan, name, aid, typ string
		unionpay                     bool
	}{
		{"debit", "622202*********0128", "ZHANG/SAN", "A000000333010101", "debit", true},
		{"credit", "625094******7898", "ZHANG/SAN", "A000000333010102", "credit", true},
		{"foreign", "411111******1111", "ZHANG/SAN", "A0000000031010", "", false},
	} {
		t.Run(tc.profile, func(t *testing.T) {
			rig.PlugCard(t, tc.profile)
			var out, errs bytes.Buffer
			code := run([]string{"card", "read", "--json", "--reader", "Virtual PCD 00 00", "--timeout", "20s"}, &out, &errs)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errs.String())
			}
			var got cardSummary
			if err := json.Unmarshal(out.Bytes(), &got); err != nil {
				t.Fatalf("%v\n%s", err, out.String())
			}
			if got.UnionPy != tc.unionpay || got.Reader != "Virtual PCD 00 00" || got.APDUs == 0 || !got.Track2 {
				t.Errorf("summary %+v", got)
			}
			if got.PAN != tc.pan || got.AID != tc.aid || got.Type != tc.typ {
				t.Errorf("summary %+v, want pan %s aid %s type %s", got, tc.pan, tc.aid, tc.typ)
			}
			if got.Name != tc.name {
				t.Errorf("name %q, want %q", got.Name, tc.name)
			}
			if strings.Count(got.PAN, "*") < 5 {
				t.Errorf("PAN not masked: %q", got.PAN)
			}
			// These cards claim no ODA method: not performed, and the TVR
			// says so in its first bit, named.
			if got.ODA != "not performed" || !strings.HasPrefix(got.TVR, "80") || len(got.TSI) != 4 ||
				!strings.Contains(got.TVRBits, "offline data authentication was not performed") || got.TSIBits == "" {
				t.Errorf("ODA %q TVR %s (%s) TSI %s (%s)", got.ODA, got.TVR, got.TVRBits, got.TSI, got.TSIBits)
			}
		})
	}
}

// TestCardReadODA: the ODA outcome of a DDA card, whose chain posctl cannot
// check without the acquirer's CA keys (said in the note, and in the text
// output), and of a contactless qPBOC card read through PPSE.
func TestCardReadODA(t *testing.T) {
	bench.NeedPCSC(t)
	rig.PlugCard(t, "oda/dda")
	var out, errs bytes.Buffer
	if code := run([]string{"card", "read", "--reader", "Virtual PCD 00 00", "--timeout", "20s"}, &out, &errs); code != 0 {
		t.Fatalf("exit %d: %s", code, errs.String())
	}
	text := out.String()
	for _, want := range []string{"oda:     DDA failed\n", "(" + noCAPKsNote + ")", "tvr:     08", "tsi:     ",
		"offline data authentication was performed"} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q:\n%s", want, text)
		}
	}
}

func TestCardReadContactless(t *testing.T) {
	bench.NeedPCSC(t)
	rig.PlugCard(t, "oda/qpboc")
	var out, errs bytes.Buffer
	if code := run([]string{"card", "read", "--json", "--contactless", "--reader", "Virtual PCD 00 00", "--timeout", "20s"}, &out, &errs); code != 0 {
		t.Fatalf("exit %d: %s", code, errs.String())
	}
	var got cardSummary
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if got.ODA != "not performed (contactless, online cryptogram)" || got.ODANote != "" || got.TVR != "0000000000" || got.TVRBits != "no bit set" {
		t.Errorf("summary %+v", got)
	}
}

// TestCardReadWithCAPKs: given the test CA's key file (the keys hostsim
// serves), the DDA card's chain and signature are checked for real; tapped
// with --offline, the qPBOC card approves offline and its fDDA is verified
// — and a card signing with a key its certificate does not hold is
// declined offline for "fDDA failed".
func TestCardReadWithCAPKs(t *testing.T) {
	bench.NeedPCSC(t)
	capks := filepath.Join("..", "..", "agent", "sim", "testca", "capk.yaml")
	for _, tc := range []struct {
		card string
		args []string
		code int
		want []string
	}{
		{"oda/dda", nil, 0, []string{"oda:     DDA passed\n", "tvr:     00", "offline data authentication was performed"}},
		{"oda/qpboc", []string{"--contactless", "--offline"}, 0, []string{"oda:     fDDA passed\n", "tvr:     00", "offline data authentication was performed"}},
		{"oda/qpboc-bad-signature", []string{"--contactless", "--offline"}, 1, []string{"fDDA failed"}},
	} {
		t.Run(tc.card, func(t *testing.T) {
			rig.PlugCard(t, tc.card)
			var out, errs bytes.Buffer
			args := append([]string{"card", "read", "--reader", "Virtual PCD 00 00", "--timeout", "20s", "--capks", capks}, tc.args...)
			if code := run(args, &out, &errs); code != tc.code {
				t.Fatalf("exit %d, want %d: %s%s", code, tc.code, out.String(), errs.String())
			}
			text := out.String() + errs.String()
			for _, want := range tc.want {
				if !strings.Contains(text, want) {
					t.Errorf("output lacks %q:\n%s", want, text)
				}
			}
			if strings.Contains(text, noCAPKsNote) {
				t.Errorf("the no-CA-keys note with --capks:\n%s", text)
			}
		})
	}
	var out, errs bytes.Buffer
	if code := run([]string{"card", "read", "--offline"}, &out, &errs); code != 2 {
		t.Errorf("--offline without --contactless: exit %d", code)
	}
	if code := run([]string{"card", "read", "--capks", "card_test.go"}, &out, &errs); code != 2 || !strings.Contains(errs.String(), "CA key file") {
		t.Errorf("a file that is no CA key list: exit %d: %s", code, errs.String())
	}
}

func TestCardReadNoCard(t *testing.T) {
	bench.NeedPCSC(t)
	var out, errs bytes.Buffer
	code := run([]string{"card", "read", "--reader", "Virtual PCD 00 01", "--timeout", "500ms"}, &out, &errs)
	if code != 1 || !strings.Contains(errs.String(), "no card before the timeout") {
		t.Errorf("exit %d: %s", code, errs.String())
	}
}

func TestCardReadUsage(t *testing.T) {
	for _, args := range [][]string{{"card"}, {"card", "write"}, {"card", "read", "extra"}, {"card", "read", "--timeout", "0s"}} {
		var out, errs bytes.Buffer
		if code := run(args, &out, &errs); code != 2 || !strings.Contains(errs.String(), "usage") {
			t.Errorf("%v: exit %d: %s", args, code, errs.String())
		}
	}
}
