package pan

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

const testPAN = "6222021234567890128"

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in      string
		wantErr error
	}{
		{"6222 0212 3456 7890 128", nil},
		{"62220212345", ErrFormat},
		{"62220212345678901234", ErrFormat},
		{"6222021234567890x28", ErrFormat},
		{"", ErrFormat},
	} {
		_, err := Parse(tc.in)
		if err != tc.wantErr {
			t.Errorf("Parse(%q) err = %v, want %v", tc.in, err, tc.wantErr)
		}
	}
}

func TestLuhn(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want bool
	}{
		{"4111111111111111", true},
		{"4111111111111112", false},
		{"6222021234567890128", true},
		{"6222021234567890127", false},
		{"79927398713", true},
		{"0", false},
		{"12a4", false},
	} {
		if got := LuhnValid(tc.in); got != tc.want {
			t.Errorf("LuhnValid(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestNeverPrintsFullNumber(t *testing.T) {
	p := MustParse(testPAN)
	const want = "622202*********0128"
	var logBuf bytes.Buffer
	slog.New(slog.NewJSONHandler(&logBuf, nil)).Info("card", "pan", p)
	js, err := json.Marshal(struct{ P PAN }{p})
	if err != nil {
		t.Fatal(err)
	}
	outputs := map[string]string{
		"%v":   fmt.Sprintf("%v", p),
		"%s":   fmt.Sprintf("%s|", p),
		"%+v":  fmt.Sprintf("%+v", struct{ P PAN }{p}),
		"%#v":  fmt.Sprintf("%#v", p),
		"slog": logBuf.String(),
		"json": string(js),
	}
	for how, out := range outputs {
		if strings.Contains(out, testPAN) {
			t.Errorf("%s leaks the full PAN: %s", how, out)
		}
		if !strings.Contains(out, want) {
			t.Errorf("%s = %s, want it to contain %s", how, out, want)
		}
	}
	if p.Reveal() != testPAN {
		t.Errorf("Reveal = %q", p.Reveal())
	}
}

func TestMaskShort(t *testing.T) {
	if got := Mask("1234567890"); got != "**********" {
		t.Errorf("Mask(10 digits) = %q", got)
	}
	if got := Mask("62220212345"); got != "622202*2345" {
		t.Errorf("Mask(11 digits) = %q", got)
	}
}

func FuzzLuhnAndMask(f *testing.F) {
	for _, s := range []string{testPAN, "4111111111111111", "", "1", "abc", "62 22"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := Parse(s)
		if err != nil {
			return
		}
		m := p.Masked()
		if len(m) != p.Len() {
			t.Fatalf("mask changed length: %q", m)
		}
		if mid := m[6 : len(m)-4]; strings.Trim(mid, "*") != "" {
			t.Fatalf("mask shows middle digits: %q", m)
		}
		_ = p.LuhnValid()
	})
}
