//go:build !firmware

package agent

import (
	"log/slog"

	"github.com/posagent/posagent/agent/central/broker"
)

// embeddedBroker is what the demo needs of a broker it starts itself.
// startEmbeddedBroker starts mochi-mqtt on a loopback port for the demo.
// Firmware builds (-tags firmware) leave it out: the broker is a third of
// the binary, and a terminal always reports to central's broker.
func startEmbeddedBroker(log *slog.Logger) (embeddedBroker, error) {
	return broker.Start("127.0.0.1:0", log)
}
