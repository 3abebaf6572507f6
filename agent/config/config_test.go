package config

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// examplePath is the commented example shipped at the repo root.
const examplePath = "../../testdata/posagent.example.yaml"

// Values the base file of the table tests carries, so every case can check
// that none of them leaks into an error.
const (
	secretPassword = "Pa55-s3cret-XYZ"
	demoCheck      = "16669b73825af85f9eaa5dbc759d4aa358bd1e1a79d1d33559b52fadce61d318"
	// The unkeyed hash and salt of the demo card, as configs had them.
	demoHash = "8120485adfe7b441934f50373d6b14c3534be8d67e0a9ba50c78e41227df9e62"
	demoSalt = "b1319be83fc55dc1f5f2e956433da823"
)

func readExample(t testing.TB) string {
	t.Helper()
	b, err := os.ReadFile(examplePath)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// edit returns base with each path (a.b.c) set to the YAML snippet that
// follows it; the snippet "<absent>" removes the key. It edits the node tree
// so cases state only the key they break.
func edit(t testing.TB, base string, kv ...string) string {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(base), &doc); err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(kv); i += 2 {
		var val *yaml.Node
		if kv[i+1] != "<absent>" {
			var v yaml.Node
			if err := yaml.Unmarshal([]byte(kv[i+1]), &v); err != nil {
				t.Fatalf("snippet %q: %v", kv[i+1], err)
			}
			if len(v.Content) == 0 {
				val = &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Value: ""}
			} else {
				val = v.Content[0]
			}
		}
		setPath(doc.Content[0], strings.Split(kv[i], "."), val)
	}
	out, err := yaml.Marshal(&doc)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

func setPath(m *yaml.Node, parts []string, val *yaml.Node) {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value != parts[0] {
			continue
		}
		switch {
		case len(parts) > 1:
			setPath(m.Content[i+1], parts[1:], val)
		case val == nil:
			m.Content = slices.Delete(m.Content, i, i+2)
		default:
			m.Content[i+1] = val
		}
		return
	}
	if val == nil {
		return
	}
	key := &yaml.Node{Kind: yaml.ScalarNode, Value: parts[0]}
	if len(parts) == 1 {
		m.Content = append(m.Content, key, val)
		return
	}
	sub := &yaml.Node{Kind: yaml.MappingNode}
	m.Content = append(m.Content, key, sub)
	setPath(sub, parts[1:], val)
}

func TestExampleFile(t *testing.T) {
	c, err := Load(examplePath)
	if err != nil {
		t.Fatalf("Load(example): %v", err)
	}
	if err := c.ValidateForRun(); err != nil {
		t.Fatalf("ValidateForRun(example): %v", err)
	}
	// The example documents the demo: apart from the state_dir it names and
	// its explicit empty sim.cards, it is Default().
	want := Default()
	want.StateDir = "/var/lib/posagent"
	want.Sim.Cards = []string{}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("example differs from Default():\n got %+v\nwant %+v", c, want)
	}
}

// TestExampleHasEveryKey keeps the example complete as keys are added.
func TestExampleHasEveryKey(t *testing.T) {
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(readExample(t)), &doc); err != nil {
		t.Fatal(err)
	}
	var inFile []string
	var walk func(prefix string, n *yaml.Node)
	walk = func(prefix string, n *yaml.Node) {
		for i := 0; i+1 < len(n.Content); i += 2 {
			p := join(prefix, n.Content[i].Value)
			inFile = append(inFile, p)
			if n.Content[i+1].Kind == yaml.MappingNode {
				walk(p, n.Content[i+1])
			}
		}
	}
	walk("", doc.Content[0])
	var inStruct []string
	var fields func(prefix string, t reflect.Type)
	fields = func(prefix string, t reflect.Type) {
		for name, i := range yamlFields(t) {
			p := join(prefix, name)
			inStruct = append(inStruct, p)
			if ft := t.Field(i).Type; ft.Kind() == reflect.Struct && ft != durationType {
				fields(p, ft)
			}
		}
	}
	fields("", reflect.TypeFor[Config]())
	slices.Sort(inFile)
	slices.Sort(inStruct)
	if !slices.Equal(inFile, inStruct) {
		t.Errorf("example keys:\n%v\nstruct keys:\n%v", inFile, inStruct)
	}
}

func TestValidationErrorHasLine(t *testing.T) {
	src := edit(t, readExample(t), "host.tpdu", `"12"`)
	_, err := Parse([]byte(src))
	var ce *Error
	if !errors.As(err, &ce) || ce.Key != "host.tpdu" {
		t.Fatalf("err = %v", err)
	}
	want := 1 + slices.IndexFunc(strings.Split(src, "\n"), func(l string) bool {
		return strings.Contains(l, "tpdu:")
	})
	if ce.Line != want {
		t.Errorf("Line = %d, want %d", ce.Line, want)
	}
}

func TestWholeFile(t *testing.T) {
	cases := []struct {
		name, src, key string
	}{
		{"empty", "", "terminal.mid"},
		{"comments only", "# nothing\n", "terminal.mid"},
		{"null", "~\n", "terminal.mid"},
		{"scalar", "hello\n", ""},
		{"list", "- a\n", ""},
		{"two documents", readExample(t) + "---\nstate_dir: /x\n", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.src))
			var ce *Error
			if !errors.As(err, &ce) || ce.Key != tc.key {
				t.Errorf("err = %v, want *Error with Key %q", err, tc.key)
			}
		})
	}
}

func TestLoadMissingFileNamesPath(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nope", "posagent.yaml")
	_, err := Load(path)
	if err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("err = %v, want it to name %s", err, path)
	}
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("errors.Is(err, fs.ErrNotExist) = false for %v", err)
	}
}

func TestLoadDirectoryNamesPath(t *testing.T) {
	dir := t.TempDir()
	if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), dir) {
		t.Errorf("err = %v, want it to name %s", err, dir)
	}
}

func TestErrorString(t *testing.T) {
	for _, tc := range []struct {
		e    Error
		want string
	}{
		{Error{Key: "terminal.mid", Msg: "must be 15 digits"}, "config: terminal.mid: must be 15 digits"},
		{Error{Key: "terminal.mid", Msg: "must be 15 digits", Line: 3}, "config: line 3: terminal.mid: must be 15 digits"},
		{Error{Msg: "did not find expected key", Line: 7}, "config: line 7: did not find expected key"},
	} {
		if got := tc.e.Error(); got != tc.want {
			t.Errorf("%#v.Error() = %q, want %q", tc.e, got, tc.want)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(readExample(f)))
	f.Add([]byte("terminal: {mid: \"1\"}\n"))
	f.Add([]byte("a: &x [1]\nb: *x\n"))
	f.Add([]byte("host:\n  timeout: 30\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data)
		if err != nil {
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("Parse error is %T, want *Error: %v", err, err)
			}
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("Parse accepted a config Validate rejects: %v", err)
		}
	})
}
