package config

import (
	"errors"
	"strings"
	"testing"
)

// A password, tickets or commands need a TLS broker URL: the password would
// cross the network in clear text, and tickets and commands could be read and
// replayed by whoever is on the path. The error names mqtt.url.
func TestPlainURLRefused(t *testing.T) {
	dir := t.TempDir()
	keys := "[{kid: c-2026a, public_key_file: " + centralKey(t, dir) + "}]"
	for _, c := range []struct {
		name, why string
		kv        []string
	}{
		{"password", "mqtt.password", []string{"mqtt.username", "pos-10000001", "mqtt.password", secretPassword}},
		{"tickets", "central.tickets", []string{"central.tickets", "true", "central.keys", keys}},
		{"commands", "central.commands", []string{"central.commands", "true", "central.keys", keys}},
	} {
		for _, scheme := range []string{"tcp", "mqtt"} {
			src := edit(t, readExample(t), append([]string{"mqtt.url", scheme + "://broker.example.com:1883"}, c.kv...)...)
			_, err := Parse([]byte(src))
			var ce *Error
			if !errors.As(err, &ce) || ce.Key != "mqtt.url" || !strings.Contains(ce.Msg, c.why) || ce.Line == 0 {
				t.Errorf("%s over %s://: %v, want an error on mqtt.url naming %s", c.name, scheme, err, c.why)
			}
			if err != nil && strings.Contains(err.Error(), secretPassword) {
				t.Errorf("error echoes the password: %v", err)
			}
			src = edit(t, readExample(t), append([]string{"mqtt.url", "ssl://broker.example.com:8883"}, c.kv...)...)
			if _, err := Parse([]byte(src)); err != nil {
				t.Errorf("%s over ssl://: %v", c.name, err)
			}
		}
	}
	// Reporting alone, anonymous, may stay plain (a bench broker).
	if _, err := Parse([]byte(edit(t, readExample(t), "mqtt.url", "tcp://127.0.0.1:1883"))); err != nil {
		t.Errorf("plain reporting without a password: %v", err)
	}
}
