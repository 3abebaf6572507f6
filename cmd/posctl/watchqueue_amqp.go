//go:build !firmware

package main

import (
	"context"
	"io"
	"log/slog"

	"github.com/posagent/posagent/agent/central/monitor"
)

// watchQueues runs queue mode on urls (credentials in them), folding into
// o.Fleet (--metrics) when set; reconnects are logged to stderr.
func watchQueues(ctx context.Context, urls []string, q *queueFlags, o monitor.Options, stderr io.Writer) error {
	a := monitor.AMQPOptions{URLs: urls, Prefix: q.prefix, Shards: q.shards,
		Logger: slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))}
	return monitor.WatchQueues(ctx, a, monitor.QueueOptions{JSON: o.JSON, Table: o.Table, Out: o.Out, Now: o.Now, Fleet: o.Fleet})
}
