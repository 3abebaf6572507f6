package config_test

import (
	"errors"
	"fmt"

	"github.com/posagent/posagent/agent/config"
)

// Errors name the key by its YAML path and, from Parse, the line; they never
// repeat the value.
func ExampleParse() {
	_, err := config.Parse([]byte("terminal:\n  mid: \"12345\"\n"))
	fmt.Println(err)

	var ce *config.Error
	if errors.As(err, &ce) {
		fmt.Println(ce.Key)
	}
	// Output:
	// config: line 2: terminal.mid: must be 15 digits
	// terminal.mid
}

// The demo starts from Default and fills in what depends on the run.
func ExampleDefault() {
	c := config.Default()
	c.StateDir = "/tmp/posagent-demo"
	c.MQTT.URL = "tcp://127.0.0.1:1883"
	fmt.Println(c.ValidateForRun(), c.TestSale.Minor)
	// Output: <nil> 1
}
