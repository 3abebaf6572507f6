package report

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/posagent/posagent/provisioning"
)

// The published schema names every step the procedure table has, and no
// other: a monitor validating against it must accept each step a terminal
// reports.
func TestSchemaStepsAreTheProcedure(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "..", "docs", "mqtt.schema.json"))
	if err != nil {
		t.Fatal(err)
	}
	var schema struct {
		Defs struct {
			Step struct {
				Enum []string `json:"enum"`
			} `json:"Step"`
		} `json:"$defs"`
	}
	if err := json.Unmarshal(b, &schema); err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, s := range provisioning.Procedure() {
		want = append(want, string(s.Step))
	}
	got := schema.Defs.Step.Enum
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("docs/mqtt.schema.json Step enum %v, procedure table %v", got, want)
	}
}
