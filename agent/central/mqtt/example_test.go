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

// A terminal's first broker is picked by its TID (FNV-1a), so a fleet of
// consecutive TIDs spreads over a cluster's nodes.
func ExampleStartIndex() {
	urls := []string{"ssl://mqtt1.example.cn:8883", "ssl://mqtt2.example.cn:8883", "ssl://mqtt3.example.cn:8883"}
	for _, tid := range []string{"10000001", "10000002", "10000003"} {
		fmt.Println(tid, urls[mqtt.StartIndex(tid, len(urls))])
	}
	fmt.Println(mqtt.HeartbeatTopic("10000001"))
	// Output:
	// 10000001 ssl://mqtt2.example.cn:8883
	// 10000002 ssl://mqtt1.example.cn:8883
	// 10000003 ssl://mqtt3.example.cn:8883
	// pos/v1/10000001/heartbeat
}
