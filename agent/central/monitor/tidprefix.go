package monitor

import (
	"fmt"
	"strings"

	"github.com/posagent/posagent/agent/central/mqtt"
)

// A TID prefix splits a fleet between live-MQTT monitors, but only after the
// broker has sent each of them everything: MQTT wildcards match whole topic
// levels, so no filter means "pos/v1/ then a TID starting with 1000". Every
// monitor still subscribes pos/v1/+/…, receives every terminal's traffic and
// drops what is not its own. It divides the folding and the screen, not the
// broker's fan-out or the network. Queue mode (AMQPSource) is the path that
// scales: the consistent-hash exchange sends each terminal to one queue, and
// each queue to one monitor.

// checkTIDPrefix refuses a prefix that cannot be part of a topic level, or
// one given with a single TID.
func checkTIDPrefix(tid, prefix string) error {
	if prefix == "" {
		return nil
	}
	if tid != "" {
		return fmt.Errorf("monitor: a TID prefix (%q) and a TID (%q) together", prefix, tid)
	}
	if strings.ContainsAny(prefix, "/+#") {
		return fmt.Errorf("monitor: TID prefix %q cannot be part of a topic level", prefix)
	}
	return nil
}

// hasTIDPrefix reports whether topic (pos/v1/{tid}/…) is of a terminal whose
// TID starts with prefix; every topic has the empty prefix.
func hasTIDPrefix(topic, prefix string) bool {
	if prefix == "" {
		return true
	}
	rest, ok := strings.CutPrefix(topic, mqtt.TopicPrefix)
	if !ok {
		return false
	}
	tid, _, _ := strings.Cut(rest, "/")
	return strings.HasPrefix(tid, prefix)
}
