package golden

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheckEqual(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.golden")
	if err := os.WriteFile(path, []byte("a\nb\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	Check(t, path, "a\nb\n")
	Check(t, path, []byte("a\nb\n"))
}

func TestDiff(t *testing.T) {
	for _, tc := range []struct {
		name, got, want string
		has             []string
	}{
		{"text", "a\nb\nc\n", "a\nB\nc\n", []string{"line 2", `got "b\n"`, `want "B\n"`, "--- got\na\nb\nc\n--- want\na\nB\nc\n"}},
		{"shorter", "a\n", "a\nb\n", []string{"line 2", "got (end)", `want "b\n"`}},
		{"bytes", "\x1b@a\n", "\x1b@b\n", []string{"line 1", `got "\x1b@a\n"`, `want "\x1b@b\n"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := Diff([]byte(tc.got), []byte(tc.want))
			for _, h := range tc.has {
				if !strings.Contains(d, h) {
					t.Errorf("Diff lacks %q:\n%s", h, d)
				}
			}
			if tc.name == "bytes" && strings.Contains(d, "--- got") {
				t.Errorf("control bytes shown raw:\n%s", d)
			}
		})
	}
}
