package command

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// The published schema's retry-step names the steps Decode accepts, no
// more and no fewer: central validating against it must not send a retry
// the terminal refuses, nor be kept from one it takes.
func TestSchemaRetryStepsAreRetryable(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "..", "docs", "mqtt.schema.json"))
	if err != nil {
		t.Fatal(err)
	}
	var schema struct {
		Defs struct {
			Command struct {
				AllOf []struct {
					If struct {
						Properties struct {
							Name struct {
								Const string `json:"const"`
							} `json:"name"`
						} `json:"properties"`
					} `json:"if"`
					Then struct {
						Properties struct {
							Args struct {
								Properties struct {
									Step struct {
										Enum []string `json:"enum"`
									} `json:"step"`
								} `json:"properties"`
							} `json:"args"`
						} `json:"properties"`
					} `json:"then"`
				} `json:"allOf"`
			} `json:"Command"`
		} `json:"$defs"`
	}
	if err := json.Unmarshal(b, &schema); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range schema.Defs.Command.AllOf {
		if c.If.Properties.Name.Const == NameRetryStep {
			got = c.Then.Properties.Args.Properties.Step.Enum
		}
	}
	var want []string
	for s := range retryable {
		want = append(want, string(s))
	}
	slices.Sort(got)
	slices.Sort(want)
	if len(want) == 0 || !slices.Equal(got, want) {
		t.Errorf("schema retry-step steps %v, Decode takes %v", got, want)
	}
}
