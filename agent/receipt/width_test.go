package receipt

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestWidth(t *testing.T) {
	for _, tc := range []struct {
		s    string
		want int
	}{
		{"", 0},
		{"abc", 3},
		{"银联", 4},
		{"POS签购单", 9},
		{"，：（）", 8}, // fullwidth punctuation
		{"ｱ", 1},    // halfwidth katakana
		{"한국", 4},
		{"e\u0301", 1},  // combining acute
		{"a\u200bb", 2}, // zero-width space
		{"\t\x1b", 0},
		{"𠀀", 2}, // CJK Extension B
		{"\xff", 1},
	} {
		if got := Width(tc.s); got != tc.want {
			t.Errorf("Width(%q) = %d, want %d", tc.s, got, tc.want)
		}
	}
}

func TestWrap(t *testing.T) {
	for _, tc := range []struct {
		s     string
		width int
		want  []string
	}{
		{"", 10, []string{""}},
		{"hello world", 20, []string{"hello world"}},
		{"hello world", 5, []string{"hello", "world"}},
		{"hello   world", 7, []string{"hello", "world"}},
		{"  indented text", 20, []string{"  indented text"}},
		{"abcdefghij", 4, []string{"abcd", "efgh", "ij"}},
		{"银联商务有限公司", 6, []string{"银联商", "务有限", "公司"}},
		{"银联商务有限公司", 7, []string{"银联商", "务有限", "公司"}}, // never half a character
		{"交易,同意", 4, []string{"交", "易,", "同意"}},       // no line starts with a comma
		{"（括号）", 4, []string{"（括", "号）"}},
		{"POS签购单", 5, []string{"POS签", "购单"}},
		{"a\nb", 5, []string{"a", "b"}},
		{"a\tb", 5, []string{"a b"}},
		{"银", 1, []string{"银"}}, // too narrow: the rune still gets its own line
	} {
		got := Wrap(tc.s, tc.width)
		if strings.Join(got, "|") != strings.Join(tc.want, "|") {
			t.Errorf("Wrap(%q, %d) = %q, want %q", tc.s, tc.width, got, tc.want)
		}
	}
}

func TestWrapFitsAndKeepsText(t *testing.T) {
	texts := []string{
		ackCN, ackEN, markTest,
		"上海浦东新区张江高科技园区便利店 ZHANGJIANG MART",
		"IAD: 07010103A0A802010A01000000000074D8D1C6",
		"混合text和中文，全角标点（括号）以及　表意空格",
	}
	for _, s := range texts {
		for w := 2; w <= 42; w++ {
			lines := Wrap(s, w)
			for _, l := range lines {
				if Width(l) > w {
					t.Errorf("Wrap(%q, %d): %q is %d wide", s, w, l, Width(l))
				}
				if !utf8.ValidString(l) {
					t.Errorf("Wrap(%q, %d): %q is not valid UTF-8", s, w, l)
				}
			}
			// Only spaces may be lost at breaks.
			strip := strings.NewReplacer(" ", "", "\u3000", "")
			if strip.Replace(strings.Join(lines, "")) != strip.Replace(s) {
				t.Errorf("Wrap(%q, %d) lost text: %q", s, w, lines)
			}
		}
	}
}

func FuzzWrap(f *testing.F) {
	f.Add("本人确认以上交易,同意将其计入本卡账户", 24)
	f.Add("I ACKNOWLEDGE SATISFACTORY RECEIPT", 7)
	f.Add("\xff\xfe银", 3)
	f.Fuzz(func(t *testing.T, s string, w int) {
		if w < 2 || w > 200 {
			return
		}
		for _, l := range Wrap(s, w) {
			if Width(l) > w {
				t.Fatalf("Wrap(%q, %d): %q is %d wide", s, w, l, Width(l))
			}
			if !utf8.ValidString(l) {
				t.Fatalf("Wrap(%q, %d): invalid UTF-8 %q", s, w, l)
			}
		}
	})
}
