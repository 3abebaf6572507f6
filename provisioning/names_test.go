package provisioning_test

import (
	"fmt"
	"testing"
	"unicode/utf8"

	"github.com/posagent/posagent/provisioning"
)

func TestNormalizeName(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"Zhang San", "ZHANG SAN"},
		{"ZHANG/SAN", "ZHANG SAN"},
		{"  zhang   san  ", "ZHANG SAN"},
		{"zhang\tsan\n", "ZHANG SAN"},
		{"SMITH/JOHN.MR", "SMITH JOHN MR"},
		{"Smith, John", "SMITH JOHN"},
		{"ZHANG/SAN\x00\x00\x00", "ZHANG SAN"}, // NUL padding from a chip
		{"ZHANG / SAN", "ZHANG SAN"},           // separator between spaces: one space
		{"/ZHANG/", "ZHANG"},                   // leading and trailing separators
		{"ＺＨＡＮＧ　ＳＡＮ", "ZHANG SAN"},             // full-width letters, ideographic space
		{"ｚｈａｎｇ／ｓａｎ", "ZHANG SAN"},             // full-width lower case and slash
		{"ＺＨＡＮＧ．ＳＡＮ，ＪＲ", "ZHANG SAN JR"},       // full-width '.' and ','
		{"！～", "!~"},                           // both ends of the full-width block
		{"张三", "张三"},                           // Han
		{"张 三", "张三"},                          // spaces dropped in Han names
		{"张　三", "张三"},                          // ideographic space too
		{"买买提·艾力", "买买提艾力"},                    // middle dot U+00B7
		{"买买提・艾力", "买买提艾力"},                    // katakana middle dot U+30FB
		{"Zhang\u200bSan", "ZHANGSAN"},         // zero-width space dropped
		{"José", "JOSÉ"},                       // non-ASCII letters are upper-cased, kept
		{"  \u3000 / . , · ", ""},              // separators only
		{"\xff", "\uFFFD"},                     // invalid UTF-8 becomes the replacement character
		{"张三 ZHANG", "张三ZHANG"},                // any Han character makes the name Chinese
	}
	for _, tc := range tests {
		if got := provisioning.NormalizeName(tc.in); got != tc.want {
			t.Errorf("NormalizeName(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestNamesMatch(t *testing.T) {
	tests := []struct {
		card, registered string
		want             bool
	}{
		{"ZHANG/SAN", "Zhang San", true},
		{"ZHANG/SAN", "SAN ZHANG", true},
		{"SAN ZHANG", "Zhang San", true},
		{"ZHANG/SAN", "zhang   san", true},
		{"ＺＨＡＮＧ／ＳＡＮ", "Zhang San", true},
		{"ZHANG SAN", "ｓａｎ　ｚｈａｎｇ", true},
		{"OUYANG/XIAO MING", "Xiao Ming Ouyang", true},
		{"张 三", "张三", true},
		{"张三", "张　三", true},
		{"买买提·艾力", "买买提 艾力", true},
		{"ZHANG/SAN", "ZHANG/SANFENG", false},
		{"ZHANG/SAN", "ZHANG", false},
		{"ZHANG/SAN", "ZHANG SAN SAN", false}, // same words, not the same count
		{"ZHANG ZHANG/SAN", "ZHANG SAN SAN", false},
		{"ZHANG/SAN", "LI SI", false},
		{"ZHANG/SAN", "张三", false}, // pinyin and Han are not compared
		{"三张", "张三", false},        // Han names are not reordered
		{"", "", false},
		{"/", "/", false},
		{"ZHANG/SAN", "", false},
		{"", "Zhang San", false},
	}
	for _, tc := range tests {
		if got := provisioning.NamesMatch(tc.card, tc.registered); got != tc.want {
			t.Errorf("NamesMatch(%q, %q) = %v, want %v", tc.card, tc.registered, got, tc.want)
		}
	}
}

func ExampleNamesMatch() {
	fmt.Println(provisioning.NamesMatch("ZHANG/SAN", "Zhang San")) // EMV writes SURNAME/GIVEN
	fmt.Println(provisioning.NamesMatch("ZHANG/SAN", "San Zhang")) // given name first
	fmt.Println(provisioning.NamesMatch("ＺＨＡＮＧ　ＳＡＮ", "zhang san")) // full-width input
	fmt.Println(provisioning.NamesMatch("张 三", "张三"))              // spaces in a Chinese name
	fmt.Println(provisioning.NamesMatch("ZHANG/SAN", "张三"))        // no transliteration
	fmt.Println(provisioning.NamesMatch("LI/SI", "Zhang San"))
	// Output:
	// true
	// true
	// true
	// true
	// false
	// false
}

// FuzzNormalizeName checks that NormalizeName never panics, is idempotent
// (what it returns is already normalized), returns valid UTF-8 without
// surrounding or doubled spaces, and that every name matches itself unless it
// normalizes to nothing.
func FuzzNormalizeName(f *testing.F) {
	for _, s := range []string{
		"ZHANG/SAN", "Zhang San", "ＺＨＡＮＧ　ＳＡＮ", "张 三", "买买提·艾力",
		"SMITH/JOHN.MR", "", " / ", "\xff\xfe", "ǆ ß ı ſ K", "Zhang\u200bSan",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n := provisioning.NormalizeName(s)
		if again := provisioning.NormalizeName(n); again != n {
			t.Fatalf("not idempotent: %q -> %q -> %q", s, n, again)
		}
		if !utf8.ValidString(n) {
			t.Fatalf("NormalizeName(%q) = %q is not UTF-8", s, n)
		}
		if len(n) > 0 && (n[0] == ' ' || n[len(n)-1] == ' ') {
			t.Fatalf("NormalizeName(%q) = %q is not trimmed", s, n)
		}
		for i := 1; i < len(n); i++ {
			if n[i] == ' ' && n[i-1] == ' ' {
				t.Fatalf("NormalizeName(%q) = %q has a run of spaces", s, n)
			}
		}
		if got := provisioning.NamesMatch(s, s); got != (n != "") {
			t.Fatalf("NamesMatch(%q, itself) = %v", s, got)
		}
	})
}
