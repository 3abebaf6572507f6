package drivers

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/posagent/posagent"

// allowed are the packages above drivers a driver may import: the card
// number type that masks itself, so a magstripe track never carries a
// printable PAN.
var allowed = map[string]bool{module + "/provisioning/pan": true}

// forbidden says whether a driver must not import pkg: anything of the
// composition root and its packages (agent/...), of the install flow
// (provisioning/...) or of the commands.
func forbidden(pkg string) bool {
	for _, top := range []string{"/agent", "/provisioning", "/cmd"} {
		p := module + top
		if (pkg == p || strings.HasPrefix(pkg, p+"/")) && !allowed[pkg] {
			return true
		}
	}
	return false
}

// TestDriversImportNothingAbove checks drivers/doc.go's rule: a driver knows
// its device, not what the terminal does with it. It lists the dependencies
// of every package under drivers/ as the demo and as the ARM firmware build
// them, and of drivers/printer's tests too (a printer's tests print pages,
// not receipts).
func TestDriversImportNothingAbove(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command:", err)
	}
	for _, tc := range []struct {
		name string
		env  []string
		args []string
	}{
		{"host", nil, []string{"./..."}},
		{"firmware linux/arm", []string{"GOOS=linux", "GOARCH=arm", "GOARM=7", "CGO_ENABLED=0"}, []string{"-tags", "firmware", "./..."}},
		{"printer tests", nil, []string{"-test", "./printer/..."}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"list", "-deps", "-f", `{{.ImportPath}}|{{join .Imports " "}}`}, tc.args...)
			cmd := exec.Command("go", args...)
			cmd.Env = append(os.Environ(), tc.env...)
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("go %s: %v", strings.Join(args, " "), err)
			}
			// Every package linked is checked, not only the drivers' own
			// imports: an allowed package must not bring in the rest.
			importers := map[string][]string{}
			var listed []string
			for line := range strings.Lines(strings.TrimSpace(string(out))) {
				pkg, imports, _ := strings.Cut(strings.TrimSpace(line), "|")
				pkg, _, _ = strings.Cut(pkg, " ") // "p [p.test]": p as its test links it
				listed = append(listed, pkg)
				for _, imp := range strings.Fields(imports) {
					importers[imp] = append(importers[imp], strings.TrimPrefix(pkg, module+"/"))
				}
			}
			if len(listed) == 0 {
				t.Fatal("go list listed nothing")
			}
			for _, pkg := range listed {
				if forbidden(pkg) {
					t.Errorf("%s is linked into drivers: imported by %s", strings.TrimPrefix(pkg, module+"/"), strings.Join(importers[pkg], ", "))
				}
			}
		})
	}
}
