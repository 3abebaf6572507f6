package config

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// removedKeys are keys earlier versions read, refused with what replaced
// them rather than as merely unknown.
var removedKeys = map[string]string{
	"merchant.account_hash": accountHashRemoved,
	"merchant.account_salt": accountHashRemoved,
}

const accountHashRemoved = "no longer read: an unkeyed hash of the card number can be reversed from the masked card; " +
	"use merchant.account_check, the keyed check value from the acquirer (posctl account-check)"

// walker copies a YAML node tree into a struct by its yaml tags, rejecting
// unknown keys, duplicates and wrong shapes by YAML path. It records the line
// of every key it sees so Parse can point Validate's errors at the file.
type walker struct {
	lines map[string]int
	// zero holds the durations written as zero ("0s"), as opposed to left
	// out or empty: for the one key where zero is not "the default".
	zero map[string]bool
}

var durationType = reflect.TypeFor[time.Duration]()

func (w *walker) document(doc *yaml.Node, c *Config) error {
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		return nil
	}
	n := doc.Content[0]
	if isNull(n) {
		return nil
	}
	if resolve(n).Kind != yaml.MappingNode {
		return &Error{Msg: "the file must be a mapping of keys (terminal:, merchant:, ...)", Line: n.Line}
	}
	return w.value("", n, reflect.ValueOf(c).Elem())
}

// value decodes n into v. path is the YAML path of n; messages describe the
// shape expected and found, never the value.
func (w *walker) value(path string, n *yaml.Node, v reflect.Value) error {
	n = resolve(n)
	bad := func(want string) error {
		return &Error{Key: path, Msg: fmt.Sprintf("must be %s, not %s", want, shape(n)), Line: n.Line}
	}
	switch {
	case v.Type() == durationType:
		if isNull(n) {
			return nil
		}
		if n.Kind != yaml.ScalarNode {
			return bad("a duration such as 30s")
		}
		s := n.Value
		if s == "" {
			return nil // as if left out: the default applies
		}
		if allDigits(strings.TrimPrefix(s, "-")) {
			// yaml.v3 would read a bare number as nanoseconds.
			return &Error{Key: path, Msg: "needs a unit, such as 30s or 5m", Line: n.Line}
		}
		d, err := time.ParseDuration(s)
		if err != nil {
			return &Error{Key: path, Msg: "must be a duration such as 30s or 5m", Line: n.Line}
		}
		if d == 0 {
			w.zero[path] = true
		}
		v.SetInt(int64(d))
	case v.Kind() == reflect.Bool:
		if isNull(n) {
			return nil
		}
		// Only the two words: YAML 1.1's yes/no/on/off are a classic trap.
		if n.Kind != yaml.ScalarNode || (n.Value != "true" && n.Value != "false") {
			return bad("true or false")
		}
		v.SetBool(n.Value == "true")
	case v.Kind() == reflect.Int:
		if isNull(n) {
			return nil
		}
		if n.Kind != yaml.ScalarNode || !allDigits(n.Value) || len(n.Value) > 9 {
			return bad("a whole number")
		}
		i, _ := strconv.Atoi(n.Value)
		v.SetInt(int64(i))
	case v.Kind() == reflect.String:
		if isNull(n) {
			return nil
		}
		if n.Kind != yaml.ScalarNode {
			return bad("a single value")
		}
		// The text as written, so "0898..." keeps its zero and "0.10" its
		// trailing zero, whatever type YAML would resolve it to.
		v.SetString(n.Value)
	case v.Kind() == reflect.Slice && v.Type().Elem().Kind() == reflect.String:
		if isNull(n) {
			return nil
		}
		if n.Kind != yaml.SequenceNode {
			return bad("a list")
		}
		out := make([]string, len(n.Content))
		for i, item := range n.Content {
			p := fmt.Sprintf("%s[%d]", path, i)
			w.lines[p] = item.Line
			if err := w.value(p, item, reflect.ValueOf(&out[i]).Elem()); err != nil {
				return err
			}
		}
		v.Set(reflect.ValueOf(out))
	case v.Kind() == reflect.Slice && v.Type().Elem().Kind() == reflect.Struct:
		if isNull(n) {
			return nil
		}
		if n.Kind != yaml.SequenceNode {
			return bad("a list")
		}
		out := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, item := range n.Content {
			p := fmt.Sprintf("%s[%d]", path, i)
			w.lines[p] = item.Line
			if err := w.value(p, item, out.Index(i)); err != nil {
				return err
			}
		}
		v.Set(out)
	case v.Kind() == reflect.Struct:
		if isNull(n) {
			return nil
		}
		if n.Kind != yaml.MappingNode {
			return bad("a mapping of keys")
		}
		return w.mapping(path, n, v)
	default:
		// Only reachable if a field of a new type is added to Config
		// without teaching the walker about it.
		return &Error{Key: path, Msg: fmt.Sprintf("internal: cannot decode into %v", v.Type())}
	}
	return nil
}

func (w *walker) mapping(path string, n *yaml.Node, v reflect.Value) error {
	fields := yamlFields(v.Type())
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			return &Error{Key: path, Msg: "keys must be plain names", Line: k.Line}
		}
		p := join(path, k.Value)
		if seen[k.Value] {
			return &Error{Key: p, Msg: fmt.Sprintf("duplicate key (first at line %d)", w.lines[p]), Line: k.Line}
		}
		seen[k.Value] = true
		w.lines[p] = k.Line
		idx, ok := fields[k.Value]
		if !ok && p == "ticket" {
			return &Error{Key: p, Msg: "replaced by the central section (central.tickets, central.keys with a kid): see testdata/posagent.example.yaml", Line: k.Line}
		}
		if !ok {
			if msg, removed := removedKeys[p]; removed {
				return &Error{Key: p, Msg: msg, Line: k.Line}
			}
			return &Error{Key: p, Msg: "unknown key", Line: k.Line}
		}
		if err := w.value(p, val, v.Field(idx)); err != nil {
			return err
		}
	}
	return nil
}

// yamlFields maps yaml key to field index, skipping `yaml:"-"` and untagged
// fields: every key the file may hold is spelt out in a tag.
func yamlFields(t reflect.Type) map[string]int {
	m := make(map[string]int, t.NumField())
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		if name != "" && name != "-" {
			m[name] = i
		}
	}
	return m
}

// parentKey is the section holding key ("devices.printer_line" for
// "devices.printer_line.device"), "" at the top.
func parentKey(key string) string {
	if i := strings.LastIndexAny(key, ".["); i > 0 {
		return key[:i]
	}
	return ""
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// resolve follows an alias (*anchor) to its target.
func resolve(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	n = resolve(n)
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

func shape(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return "a single value"
	default:
		return "this"
	}
}
