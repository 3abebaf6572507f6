package main

import (
	"strings"
	"testing"
)

func TestRun(t *testing.T) {
	var out strings.Builder
	in := strings.NewReader("swipe good\npaper out\nslips\nbogus\nquit\n")
	if err := run([]string{"-dir", t.TempDir()}, in, &out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"ready", "swiped good", "paper out", "0 slips", "error: devsim: unknown command"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	if err := run(nil, strings.NewReader(""), &out); err == nil {
		t.Error("no -dir accepted")
	}
}
