package mqtt_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/posagent/posagent/agent/central/mqtt"
)

// The heartbeat's fields are the schema's (docs/mqtt.schema.json,
// $defs.Heartbeat), every one required, and the topic is the one docs/mqtt.md
// gives.
func TestHeartbeatMatchesTheSchema(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "..", "docs", "mqtt.schema.json"))
	if err != nil {
		t.Fatal(err)
	}
	var schema struct {
		Defs map[string]struct {
			Required   []string                   `json:"required"`
			Properties map[string]json.RawMessage `json:"properties"`
		} `json:"$defs"`
	}
	if err := json.Unmarshal(b, &schema); err != nil {
		t.Fatal(err)
	}
	def, ok := schema.Defs["Heartbeat"]
	if !ok {
		t.Fatal("no $defs.Heartbeat in the schema")
	}
	p, err := json.Marshal(mqtt.Heartbeat{TID: "10000001"})
	if err != nil {
		t.Fatal(err)
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(p, &fields); err != nil {
		t.Fatal(err)
	}
	var got, props []string
	for k := range fields {
		got = append(got, k)
	}
	for k := range def.Properties {
		props = append(props, k)
	}
	slices.Sort(got)
	slices.Sort(props)
	req := slices.Sorted(slices.Values(def.Required))
	if !slices.Equal(got, props) || !slices.Equal(got, req) {
		t.Errorf("payload fields %v, schema properties %v, required %v", got, props, req)
	}
	if topic := mqtt.HeartbeatTopic("10000001"); topic != "pos/v1/10000001/heartbeat" {
		t.Errorf("HeartbeatTopic = %s", topic)
	}
}
