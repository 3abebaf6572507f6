// Package reporttest starts simulated terminals for tests of the packages
// that read what terminals report (monitor, posctl): per terminal an MQTT
// session (agent/central/mqtt) and a report.Reporter on it, started and
// closed with the test.
package reporttest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/posagent/posagent/agent/central/mqtt"
	"github.com/posagent/posagent/agent/central/report"
)

// Terminal is a started reporter on its own started session.
type Terminal struct {
	*report.Reporter
	Link *mqtt.Client
}

// Close closes the reporter (which flushes) and then the session (which
// publishes the retained shutdown state), in the agent's order.
func (t *Terminal) Close(ctx context.Context) error {
	return errors.Join(t.Reporter.Close(ctx), t.Link.Close(ctx))
}

// Start starts a session with o and a reporter on it (an in-memory queue),
// and closes both when the test ends.
func Start(t testing.TB, o mqtt.Options) *Terminal {
	t.Helper()
	link, err := mqtt.New(o)
	if err != nil {
		t.Fatal(err)
	}
	r, err := report.New(report.Options{Link: link, Logger: o.Logger})
	if err != nil {
		t.Fatal(err)
	}
	term := &Terminal{Reporter: r, Link: link}
	if err := link.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = term.Close(ctx)
	})
	return term
}
