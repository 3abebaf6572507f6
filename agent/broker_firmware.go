//go:build firmware

package agent

import (
	"errors"
	"log/slog"
)

// ErrNoEmbeddedBroker is the demo's answer in a firmware build without --mqtt.
var ErrNoEmbeddedBroker = errors.New("this firmware build has no embedded MQTT broker: run the demo with --mqtt URL")

func startEmbeddedBroker(*slog.Logger) (embeddedBroker, error) { return nil, ErrNoEmbeddedBroker }
