package mqtt_test

import (
	"os/exec"
	"strings"
	"testing"
)

const (
	module  = "github.com/posagent/posagent"
	pahoMod = "github.com/eclipse/paho.mqtt.golang"
)

// The dependency rule of the central packages: nothing outside agent/central
// imports paho, not even in tests; inside it, only this package (the
// terminal's session, with its test helpers under it) and monitor (the
// central side's watcher) import it outside tests. Everything else of the
// terminal reaches MQTT through a Client, or a small interface of its own
// that Client implements.
func TestOnlyTheSessionImportsPaho(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command to list the packages with")
	}
	allowed := func(pkg string) bool {
		return pkg == module+"/agent/central/mqtt" || strings.HasPrefix(pkg, module+"/agent/central/mqtt/") ||
			pkg == module+"/agent/central/monitor"
	}
	central := func(pkg string) bool { return strings.HasPrefix(pkg, module+"/agent/central/") }
	paho := func(imports string) bool {
		for _, imp := range strings.Fields(imports) {
			if imp == pahoMod || strings.HasPrefix(imp, pahoMod+"/") {
				return true
			}
		}
		return false
	}
	// The firmware build leaves the demo's broker out: its files must obey
	// the rule too.
	for _, tags := range []string{"", "firmware"} {
		out, err := exec.Command(goTool, "list", "-tags", tags, "-f",
			`{{.ImportPath}}|{{join .Imports " "}}|{{join .TestImports " "}} {{join .XTestImports " "}}`, module+"/...").Output()
		if err != nil {
			t.Fatalf("go list -tags %q: %v", tags, err)
		}
		n := 0
		for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			f := strings.SplitN(line, "|", 3)
			if len(f) != 3 {
				t.Fatalf("go list line %q", line)
			}
			n++
			pkg, imports, tests := f[0], f[1], f[2]
			switch {
			case paho(imports) && !allowed(pkg):
				t.Errorf("%s imports paho (tags %q): use agent/central/mqtt", pkg, tags)
			case paho(tests) && !central(pkg):
				t.Errorf("%s's tests import paho (tags %q): use agent/central/mqtt/mqtttest", pkg, tags)
			}
		}
		if n < 10 {
			t.Fatalf("go list -tags %q listed %d packages: not the whole module", tags, n)
		}
	}
}
