package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/url"
	"strings"

	"github.com/posagent/posagent/agent/central/monitor"
)

// queueFlags are posctl watch's queue mode flags (--amqp …): the monitor
// reads RabbitMQ's shard queues instead of subscribing live (docs/mqtt.md,
// "Central on a cluster").
type queueFlags struct {
	urls   urlList
	prefix string
	shards int
}

func (q *queueFlags) register(fs *flag.FlagSet) {
	fs.Var(&q.urls, "amqp", "queue mode: a RabbitMQ node, amqp://host:5672/ (repeat for each node; reconnects to the next)")
	fs.StringVar(&q.prefix, "queue-prefix", monitor.DefaultQueuePrefix, "queue mode: name of the shard exchange and its queues (NAME.0 …)")
	fs.IntVar(&q.shards, "shards", monitor.DefaultShards, "queue mode: number of shard queues (every monitor of a prefix must use the same)")
}

// conflicts names a flag combination that makes no sense, "" if none.
func (q *queueFlags) conflicts(o monitor.Options) string {
	if o.TID != "" && o.TIDPrefix != "" {
		return "--tid and --tid-prefix together: one terminal or a share of the fleet"
	}
	if len(q.urls) == 0 {
		return ""
	}
	switch {
	case o.URL != "":
		return "--mqtt and --amqp together: pick live MQTT or queue mode"
	case o.Once:
		// A drained queue is gone for the next monitor: there is no
		// snapshot to print and leave.
		return "--once has no meaning in queue mode (queues hold no retained snapshot)"
	case o.TID != "" || o.TIDPrefix != "":
		// Filtering would acknowledge and so discard the other terminals'
		// messages of this monitor's queues.
		return "--tid and --tid-prefix have no meaning in queue mode (the shards split the fleet)"
	case q.shards < 1:
		return "--shards must be at least 1"
	}
	return ""
}

// watch runs queue mode with the credentials of --user/--password-file put
// into each URL (never printed: errors redact URLs).
func (q *queueFlags) watch(ctx context.Context, o monitor.Options, stderr io.Writer) int {
	urls := make([]string, 0, len(q.urls))
	for _, raw := range q.urls {
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "amqp" && u.Scheme != "amqps") || u.Host == "" {
			fmt.Fprintf(stderr, "posctl watch: --amqp wants amqp://host:port/ or amqps://…, not %q\n", redactURL(raw))
			return 2
		}
		if o.Username != "" {
			u.User = url.UserPassword(o.Username, o.Password)
		}
		urls = append(urls, u.String())
	}
	if err := watchQueues(ctx, urls, q, o, stderr); err != nil {
		fmt.Fprintf(stderr, "posctl: %v\n", err)
		return 1
	}
	return 0
}

// urlList is a repeatable string flag.
type urlList []string

func (l *urlList) String() string { return strings.Join(*l, ",") }
func (l *urlList) Set(v string) error {
	*l = append(*l, v)
	return nil
}

// redactURL hides a password in a URL for messages.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}
