package provisioning_test

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"unicode"

	"github.com/posagent/posagent/provisioning"
)

// goChain matches what a Go error chain looks like on a screen: a lowercase
// package or operation name, a colon, a space, lowercase text
// ("provisioning: card confirmation: ui: …").
var goChain = regexp.MustCompile(`\b[a-z][a-z0-9_.]*: [a-z]`)

var verb = regexp.MustCompile(`%[-+# 0-9.]*[a-z]`)

func hasHan(s string) bool {
	for _, r := range s {
		if unicode.Is(unicode.Han, r) {
			return true
		}
	}
	return false
}

var rejections = map[string]bool{
	provisioning.RejectBadLuhn: true, provisioning.RejectNotUnionPay: true, provisioning.RejectCardType: true,
	provisioning.RejectExpired: true, provisioning.RejectNameMismatch: true, provisioning.RejectOtherAccount: true,
	provisioning.RejectUnreadable: true, provisioning.RejectMerchantRecord: true,
}

// Every code says what happened and what to do in both languages, and both
// sentences take the same arguments.
func TestEveryCodeIsExplained(t *testing.T) {
	for _, code := range provisioning.Codes() {
		x, _ := provisioning.Explain(code)
		if !hasHan(x.Action.ZH) || x.Action.EN == "" {
			t.Errorf("%s: action %q lacks a language", code, x.Action)
		}
		if rejections[code] {
			// Binding rejections bring their own sentence (Rejection).
			if x.Message != (provisioning.Text{}) {
				t.Errorf("%s: a rejection's sentence is its own, not the catalogue's", code)
			}
			continue
		}
		if !hasHan(x.Message.ZH) || x.Message.EN == "" {
			t.Errorf("%s: message %q lacks a language", code, x.Message)
		}
		if zh, en := verb.FindAllString(x.Message.ZH, -1), verb.FindAllString(x.Message.EN, -1); strings.Join(zh, "") != strings.Join(en, "") {
			t.Errorf("%s: the sentences take different arguments: %q vs %q", code, zh, en)
		}
	}
}

// Every code the flow's source names is in the catalogue: a code without a
// sentence would reach the screen as "internal error".
func TestFlowCodesAreInTheCatalogue(t *testing.T) {
	known := map[string]bool{}
	for _, c := range provisioning.Codes() {
		known[c] = true
	}
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	used := regexp.MustCompile(`stepErr\((?:codeOf\(err, )?"(E_[A-Z_]+)"`)
	n := 0
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range used.FindAllStringSubmatch(string(b), -1) {
			n++
			if !known[m[1]] {
				t.Errorf("%s names %s, which the catalogue does not explain", f, m[1])
			}
		}
	}
	if n < 20 {
		t.Fatalf("found only %d stepErr calls: the pattern no longer matches the source", n)
	}
}

func TestFailureForKeepsTheCauseOffTheScreen(t *testing.T) {
	cause := errors.New("acquirer: sale: dial tcp 127.0.0.1:1: connect: connection refused")
	for _, tc := range []struct {
		name string
		err  error
		code string
	}{
		{"step error", &provisioning.StepError{Code: "E_HOST", Args: []any{provisioning.Text{ZH: "测试交易", EN: "test sale"}}, Err: cause}, "E_HOST"},
		{"unnamed error", cause, "E_TEST_SALE"},
		{"coded device error", &provisioning.StepError{Code: "E_PAPER_END", Err: cause}, "E_PAPER_END"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fl := provisioning.FailureFor(provisioning.StepTestSale, tc.err)
			if fl.Code != tc.code {
				t.Errorf("code %s, want %s", fl.Code, tc.code)
			}
			if fl.Cause != cause.Error() {
				t.Errorf("cause %q, want the chain", fl.Cause)
			}
			for _, s := range fl.Lines() {
				if goChain.MatchString(s) || strings.Contains(s, "127.0.0.1") {
					t.Errorf("screen line %q shows the cause", s)
				}
			}
			if !hasHan(fl.Message) || !hasHan(fl.Action) {
				t.Errorf("message %q / action %q not in Chinese and English", fl.Message, fl.Action)
			}
		})
	}
}
