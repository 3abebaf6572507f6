// Package golden compares a test's output with a file committed under the
// package's testdata, byte for byte. Run the package's tests with -update
// (go test ./agent/receipt -update) and the files are rewritten from the
// current output instead; review the diff before committing it.
//
// The -update flag is registered in every test binary that imports this
// package, so it works per package; `go test ./... -update` fails in the
// packages that have no golden files, as any unknown flag does.
package golden

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"unicode"
	"unicode/utf8"
)

var update = flag.Bool("update", false, "rewrite golden files from the current output")

// Check fails t unless got is exactly the content of the file at path. With
// -update it writes got to path (creating the directory) and passes.
func Check[T ~string | ~[]byte](t testing.TB, path string, got T) {
	t.Helper()
	g := []byte(got)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, g, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test -update creates it)", err)
	}
	if !bytes.Equal(g, want) {
		t.Errorf("%s differs (go test -update rewrites it)\n%s", path, Diff(g, want))
	}
}

// Diff describes how got differs from want: the first line that differs,
// then both in full, as text when they are text and quoted when they hold
// control bytes (ESC/POS, say).
func Diff(got, want []byte) string {
	gl, wl := lines(got), lines(want)
	n := 0
	for n < len(gl) && n < len(wl) && bytes.Equal(gl[n], wl[n]) {
		n++
	}
	line := func(l [][]byte) string {
		if n < len(l) {
			return fmt.Sprintf("%q", l[n])
		}
		return "(end)"
	}
	head := fmt.Sprintf("first difference at line %d:\n got %s\nwant %s\n", n+1, line(gl), line(wl))
	if isText(got) && isText(want) {
		return head + "--- got\n" + string(got) + "--- want\n" + string(want)
	}
	return head + fmt.Sprintf(" got %q\nwant %q", got, want)
}

// lines splits b after each newline; a last line without one is a line too.
func lines(b []byte) [][]byte {
	l := bytes.SplitAfter(b, []byte("\n"))
	if len(l[len(l)-1]) == 0 {
		l = l[:len(l)-1]
	}
	return l
}

// isText is valid UTF-8 without control characters other than tab and newline.
func isText(b []byte) bool {
	if !utf8.Valid(b) {
		return false
	}
	for _, r := range string(b) {
		if unicode.IsControl(r) && r != '\n' && r != '\t' {
			return false
		}
	}
	return true
}
