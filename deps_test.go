package posagent_test

import (
	"os"
	"os/exec"
	"sort"
	"strings"
	"testing"
)

// The layering as a failing test, in the manner of tailscale's
// tstest/deptest: what a package may import is checked on the import graph
// `go list` reports, for the builds that matter.

const module = "github.com/posagent/posagent"

// listDeps is `go list -deps` of pkgs with env and build tags (and their
// tests' imports with withTests): every package in the build, and what each
// imports directly. A package as its tests build it ("p [p.test]") and its
// external test package (p_test) count as p.
func listDeps(t *testing.T, tags string, withTests bool, env []string, pkgs ...string) map[string][]string {
	t.Helper()
	args := []string{"list", "-deps", "-f", "{{.ImportPath}}|{{range .Imports}} {{.}}{{end}}"}
	if tags != "" {
		args = append(args, "-tags", tags)
	}
	if withTests {
		args = append(args, "-test")
	}
	cmd := exec.Command("go", append(args, pkgs...)...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	graph := map[string][]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		pkg, imports, _ := strings.Cut(line, "|")
		pkg, _, _ = strings.Cut(pkg, " ")
		pkg = strings.TrimSuffix(pkg, ".test") // the generated test main
		pkg = strings.TrimSuffix(pkg, "_test") // an external test package is its package's
		graph[pkg] = append(graph[pkg], strings.Fields(imports)...)
	}
	return graph
}

func under(pkg, dir string) bool { return pkg == dir || strings.HasPrefix(pkg, dir+"/") }

// importers lists the packages of graph that import a package matching bad.
func importers(graph map[string][]string, bad func(string) bool, allowed func(string) bool) []string {
	var out []string
	for p, imps := range graph {
		if !under(p, module) || allowed(p) {
			continue
		}
		for _, i := range imps {
			if bad(i) {
				out = append(out, p+" imports "+i)
			}
		}
	}
	sort.Strings(out)
	return out
}

func TestLayering(t *testing.T) {
	// Tests included: a driver's test that links the agent is the same
	// knowledge in the wrong place.
	all := listDeps(t, "", true, []string{"CGO_ENABLED=0"}, "./...")
	for _, rule := range []struct {
		what    string
		bad     func(string) bool
		allowed func(string) bool
	}{
		{"drivers know nothing above them (provisioning/pan, the self-masking card number, aside)",
			func(i string) bool {
				return under(i, module+"/agent") || under(i, module+"/provisioning") && i != module+"/provisioning/pan"
			},
			func(p string) bool { return !under(p, module+"/drivers") }},
		{"only agent/central speaks MQTT (paho)",
			func(i string) bool { return under(i, "github.com/eclipse/paho.mqtt.golang") },
			func(p string) bool { return under(p, module+"/agent/central") }},
		{"only central's monitor (queue mode) and the test kits speak AMQP",
			func(i string) bool { return under(i, "github.com/rabbitmq/amqp091-go") },
			func(p string) bool {
				return under(p, module+"/agent/central/monitor") || under(p, module+"/agent/testkit")
			}},
		{"only central's monitor speaks Prometheus (client_golang)",
			func(i string) bool { return under(i, "github.com/prometheus") },
			func(p string) bool { return under(p, module+"/agent/central/monitor") }},
		{"only drivers touch PC/SC, serial lines and GPIO",
			func(i string) bool {
				return under(i, "github.com/ebfe/scard") || under(i, "github.com/tarm/serial") || under(i, "periph.io/x")
			},
			func(p string) bool { return under(p, module+"/drivers") }},
		{"the flow sees ports, never a device, a protocol or the agent",
			func(i string) bool {
				return under(i, module+"/agent") || under(i, module+"/drivers")
			},
			func(p string) bool { return !under(p, module+"/provisioning") }},
	} {
		if bad := importers(all, rule.bad, rule.allowed); len(bad) > 0 {
			t.Errorf("%s; but:\n  %s", rule.what, strings.Join(bad, "\n  "))
		}
	}
}

// centralOnly are the modules of central's side (its Prometheus metrics, its
// AMQP queue consumer) that nothing flashed into a terminal may link.
var centralOnly = []string{"github.com/prometheus", "github.com/rabbitmq/amqp091-go"}

// firmwareEnv is the firmware build's target, pure Go as go list needs it.
var firmwareEnv = []string{"CGO_ENABLED=0", "GOOS=linux", "GOARCH=arm", "GOARM=7"}

// The firmware build of the daemon links no simulator, demo, test kit or
// central's own tools: what is flashed is what runs the terminal.
func TestFirmwareLinksNoSimulatorDemoOrTestKit(t *testing.T) {
	graph := listDeps(t, "firmware", false, firmwareEnv, "./cmd/posagent")
	var bad []string
	for p := range graph {
		for _, dir := range []string{"agent/sim", "agent/demo", "agent/testkit", "agent/central/monitor", "agent/central/broker"} {
			if under(p, module+"/"+dir) {
				bad = append(bad, p)
			}
		}
		if under(p, "github.com/mochi-mqtt") || under(p, "golang.org/x/image") || under(p, "github.com/rabbitmq") {
			bad = append(bad, p)
		}
		for _, m := range centralOnly {
			if under(p, m) {
				bad = append(bad, p)
			}
		}
	}
	sort.Strings(bad)
	if len(bad) > 0 {
		t.Errorf("the firmware build of cmd/posagent links:\n  %s", strings.Join(bad, "\n  "))
	}
}

// posctl's firmware build is the field tool on the terminal: it watches, reads
// cards and injects keys, but serves no metrics and consumes no queue (2.8 MB of
// client_golang on armv7 that no one there would scrape).
func TestPosctlFirmwareLinksNoCentralOnlyModule(t *testing.T) {
	graph := listDeps(t, "firmware", false, firmwareEnv, "./cmd/posctl")
	var bad []string
	for p := range graph {
		for _, m := range centralOnly {
			if under(p, m) {
				bad = append(bad, p)
			}
		}
	}
	sort.Strings(bad)
	if len(bad) > 0 {
		t.Errorf("the firmware build of cmd/posctl links:\n  %s", strings.Join(bad, "\n  "))
	}
}
