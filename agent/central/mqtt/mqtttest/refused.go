package mqtttest

import (
	"context"
	"log/slog"
	"sync"

	"github.com/posagent/posagent/agent/central/mqtt"
)

// RefusedLog is a log handler for a client (or a reporter) that tells when
// its first connection attempt has failed: a test that starts it against a
// broker that is down waits for that before it starts the broker.
type RefusedLog struct {
	once    *sync.Once
	refused chan struct{}
}

var _ slog.Handler = RefusedLog{}

// NewRefusedLog is a RefusedLog that has seen no failed attempt yet.
func NewRefusedLog() RefusedLog {
	return RefusedLog{once: new(sync.Once), refused: make(chan struct{})}
}

// Refused is closed at the first failed connection attempt.
func (h RefusedLog) Refused() <-chan struct{} { return h.refused }

func (h RefusedLog) Enabled(context.Context, slog.Level) bool { return true }
func (h RefusedLog) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h RefusedLog) WithGroup(string) slog.Handler            { return h }

func (h RefusedLog) Handle(_ context.Context, r slog.Record) error {
	if r.Message == mqtt.MsgUnreachable {
		h.once.Do(func() { close(h.refused) })
	}
	return nil
}
