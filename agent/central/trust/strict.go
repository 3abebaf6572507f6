package trust

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"reflect"
	"regexp"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// JSONError is a payload DecodeStrict refused. Msg names the rule and, when
// the key is one the target knows, the key; never a value, and never a key
// the sender made up (it would be echoed into logs and replies).
type JSONError struct{ Msg string }

func (e *JSONError) Error() string { return e.Msg }

// maxDepth bounds nesting: signed payloads are flat objects with at most one
// level of args.
const maxDepth = 4

var (
	timeType   = reflect.TypeFor[time.Time]()
	stampRegex = regexp.MustCompile(`^"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z"$`)
)

// DecodeStrict decodes payload, one JSON object, into v, a pointer to a
// struct whose json tags name every key it may hold. Unlike encoding/json it
// refuses:
//
//   - invalid UTF-8 (encoding/json would replace it silently);
//   - a key that appears twice at any depth (encoding/json keeps the last,
//     another parser the first: two readers, two meanings);
//   - two keys of one object that differ only by case, and at the top level
//     any key that is not exactly one of v's (encoding/json matches
//     case-insensitively, and folds "ſ" to "s" and the Kelvin sign to "k");
//   - unknown keys, null values at the top level, nesting deeper than 4;
//   - a time.Time field not written as StampLayout (one spelling per
//     instant);
//   - anything after the object.
//
// Key order and white space are free: signatures cover the canonical
// encoding, not the JSON text.
func DecodeStrict(payload []byte, v any) error {
	t := reflect.TypeOf(v)
	if t == nil || t.Kind() != reflect.Pointer || t.Elem().Kind() != reflect.Struct {
		return errors.New("trust: DecodeStrict needs a pointer to a struct")
	}
	fields := jsonFields(t.Elem())
	if !utf8.Valid(payload) {
		return &JSONError{Msg: "not valid UTF-8"}
	}
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil || tok != json.Delim('{') {
		return &JSONError{Msg: "not a JSON object"}
	}
	if err := object(dec, 1, fields, payload); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return &JSONError{Msg: "trailing data after the object"}
	}
	d := json.NewDecoder(bytes.NewReader(payload))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		var ute *json.UnmarshalTypeError
		if errors.As(err, &ute) && ute.Field != "" {
			return &JSONError{Msg: "field " + ute.Field + " has the wrong type"}
		}
		return &JSONError{Msg: "not a valid object"}
	}
	return nil
}

// jsonFields maps each json key of a struct to its field type.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	m := map[string]reflect.Type{}
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name != "" && name != "-" && f.IsExported() {
			m[name] = f.Type
		}
	}
	return m
}

// object checks the members of an object whose '{' was just read. top holds
// the allowed keys of the top-level object; nil for nested objects, which
// their own decoder checks for exact names (command args).
func object(dec *json.Decoder, depth int, top map[string]reflect.Type, payload []byte) error {
	if depth > maxDepth {
		return &JSONError{Msg: "nested too deeply"}
	}
	seen := map[string]string{} // folded key -> key
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return &JSONError{Msg: "not valid JSON"}
		}
		key := tok.(string) // object keys are always strings
		name := func() string {
			if _, ok := top[key]; ok {
				return " " + key
			}
			return ""
		}
		if top != nil {
			if _, ok := top[key]; !ok {
				if k, ok := knownFold(top, key); ok {
					return &JSONError{Msg: "key differs from " + k + " only by case"}
				}
				return &JSONError{Msg: "unknown key"}
			}
		}
		f := fold(key)
		if prev, dup := seen[f]; dup {
			if prev == key {
				return &JSONError{Msg: "duplicate key" + name()}
			}
			return &JSONError{Msg: "two keys differ only by case" + name()}
		}
		seen[f] = key
		start := dec.InputOffset()
		tok, err = dec.Token()
		if err != nil {
			return &JSONError{Msg: "not valid JSON"}
		}
		if top != nil && tok == nil {
			return &JSONError{Msg: "field " + key + " is null"}
		}
		if top != nil && top[key] == timeType {
			raw := bytes.TrimLeft(payload[start:dec.InputOffset()], " \t\r\n:")
			if !stampRegex.Match(raw) {
				return &JSONError{Msg: "field " + key + " is not YYYY-MM-DDTHH:MM:SSZ"}
			}
		}
		if err := value(dec, tok, depth); err != nil {
			return err
		}
	}
	if _, err := dec.Token(); err != nil { // the closing '}'
		return &JSONError{Msg: "not valid JSON"}
	}
	return nil
}

// value consumes the rest of a value whose first token is tok.
func value(dec *json.Decoder, tok json.Token, depth int) error {
	switch tok {
	case json.Delim('{'):
		return object(dec, depth+1, nil, nil)
	case json.Delim('['):
		if depth+1 > maxDepth {
			return &JSONError{Msg: "nested too deeply"}
		}
		for dec.More() {
			t, err := dec.Token()
			if err != nil {
				return &JSONError{Msg: "not valid JSON"}
			}
			if err := value(dec, t, depth+1); err != nil {
				return err
			}
		}
		if _, err := dec.Token(); err != nil {
			return &JSONError{Msg: "not valid JSON"}
		}
	}
	return nil
}

func knownFold(known map[string]reflect.Type, key string) (string, bool) {
	f := fold(key)
	for k := range known {
		if fold(k) == f {
			return k, true
		}
	}
	return "", false
}

// fold is the case folding encoding/json matches keys with (a rune's upper
// case of its lower case, so "İ" is "I"), and more: then to its simple-fold
// orbit's smallest member, so "K", "k" and the Kelvin sign, or "S", "s" and
// "ſ", all fold alike.
func fold(s string) string {
	var b strings.Builder
	for _, r := range s {
		r = unicode.ToUpper(unicode.ToLower(r))
		min := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			if f < min {
				min = f
			}
		}
		b.WriteRune(min)
	}
	return b.String()
}
