package mqtt_test

import (
	"fmt"

	"github.com/posagent/posagent/agent/central/mqtt"
)

func ExampleStatusTopic() {
	fmt.Println(mqtt.StateTopic("10000001"))
	fmt.Println(mqtt.StatusTopic("10000001"))
	fmt.Println(mqtt.EventsTopic("10000001"))
	// Output:
	// pos/v1/10000001/state
	// pos/v1/10000001/status
	// pos/v1/10000001/events
}
