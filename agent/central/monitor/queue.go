package monitor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/posagent/posagent/agent/central/mqtt"
)

// Delivery is one message a Source hands to queue mode: its MQTT topic, its
// payload, whether the queue says it was delivered before, and how to
// acknowledge it. The queue keeps a message until Ack: a consumer that dies
// before acknowledging gets it again (redelivered) on its next delivery, or a
// standby consumer does.
type Delivery struct {
	Topic       string
	Payload     []byte
	Redelivered bool
	// Ack tells the queue the message is done with. It fails when the
	// channel it came on is gone; the queue then redelivers the message,
	// which dedup recognises.
	Ack func() error
}

// Source is where queue mode's messages come from: RabbitMQ queues
// (AMQPSource) or a test's fake. Deliveries of one queue come out of Next in
// the queue's order.
type Source interface {
	// Next blocks until a delivery is available, ctx ends (ctx.Err()) or
	// the source fails for good.
	Next(ctx context.Context) (Delivery, error)
}

// QueueOptions configures a Consumer: the output options of Watch that apply
// to a queue (there is no retained snapshot, so no Once, and every terminal
// of the consumer's queues, so no TID).
type QueueOptions struct {
	JSON, Table bool
	// Out receives the lines; nil means os.Stdout.
	Out io.Writer
	// Now is the clock for arrivals, silence and the table's age column; nil
	// means time.Now.
	Now func() time.Time
	// Tick paces the silence check; nil means a one-second ticker.
	Tick <-chan time.Time
	// Fleet is what deliveries are folded into, as Options.Fleet; nil means
	// a new Fleet on Now.
	Fleet Folder
}

// Stats counts what a Consumer did with its deliveries.
type Stats struct {
	Folded     uint64 // shown and folded into the fleet
	Duplicates uint64 // redeliveries and republished events dedup dropped
	Stale      uint64 // presences and heartbeats of an older session
	AckErrors  uint64 // acks that failed (the message comes again)
}

// Consumer is queue mode's reading side: it folds each delivery into its
// Fleet, prints it, and only then acknowledges it, so a crash between the
// two shows a message twice at worst (dedup drops the second within one
// process) and never loses one.
type Consumer struct {
	o     QueueOptions
	out   io.Writer
	fleet Folder
	dedup dedup

	mu    sync.Mutex
	stats Stats
}

// NewConsumer returns a consumer with an empty fleet.
func NewConsumer(o QueueOptions) *Consumer {
	if o.Now == nil {
		o.Now = time.Now
	}
	c := &Consumer{o: o, out: o.Out, fleet: o.Fleet, dedup: newDedup()}
	if c.fleet == nil {
		c.fleet = NewFleetClock(o.Now)
	}
	if c.out == nil {
		c.out = os.Stdout
	}
	return c
}

// Stats returns the counters so far.
func (c *Consumer) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stats
}

// Run handles src's deliveries one at a time, in the order Next returns
// them, until ctx ends (nil) or src or the output fails.
func (c *Consumer) Run(ctx context.Context, src Source) error {
	tick := c.o.Tick
	if tick == nil {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		tick = t.C
	}
	type next struct {
		d   Delivery
		err error
	}
	// Next blocks; the silence check must not wait for traffic, so Next runs
	// in its own goroutine, one call at a time, and Run still handles
	// deliveries strictly in order.
	got := make(chan next)
	want := make(chan struct{}, 1)
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	go func() {
		for range want {
			d, err := src.Next(sctx)
			select {
			case got <- next{d, err}:
			case <-sctx.Done():
				return
			}
		}
	}()
	defer close(want)
	want <- struct{}{}
	for {
		select {
		case n := <-got:
			if n.err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return fmt.Errorf("monitor: queue: %w", n.err)
			}
			if err := c.Handle(n.d); err != nil {
				return err
			}
			want <- struct{}{}
		case <-tick:
			if err := c.checkSilence(); err != nil {
				return err
			}
		case <-ctx.Done():
			return nil
		}
	}
}

// Handle folds and prints one delivery, then acknowledges it. A duplicate
// (dedup) is acknowledged without being shown. Only an output error is
// returned: a failed ack is counted and left to redelivery.
func (c *Consumer) Handle(d Delivery) error {
	c.mu.Lock()
	dup := c.dedup.seen(d)
	var stale bool
	if !dup {
		stale = c.fleet.Apply(d.Topic, d.Payload)
	}
	switch {
	case dup:
		c.stats.Duplicates++
	case stale:
		c.stats.Stale++
	default:
		c.stats.Folded++
	}
	c.mu.Unlock()
	if !dup {
		if err := c.show(d, stale); err != nil {
			return err
		}
	}
	if d.Ack == nil {
		return nil
	}
	if err := d.Ack(); err != nil {
		c.mu.Lock()
		c.stats.AckErrors++
		c.mu.Unlock()
	}
	return nil
}

// show prints one folded delivery the way Watch prints a live message.
func (c *Consumer) show(d Delivery, stale bool) error {
	m := queued{topic: d.Topic, payload: d.Payload}
	kind := path.Base(d.Topic)
	switch {
	case c.o.Table:
		if err := writeLine(c.out, ""); err != nil {
			return err
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.fleet.Table(c.out, c.o.Now())
	case stale && c.o.JSON:
		return writeLine(c.out, staleJSON(m))
	case stale:
		return writeLine(c.out, staleText(m))
	case kind == "heartbeat" && !c.o.JSON:
		return nil // a line every interval per terminal is noise: silence is announced instead
	}
	return printMessage(c.out, c.o.JSON, m)
}

// checkSilence announces terminals that went silent.
func (c *Consumer) checkSilence() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return announceSilence(c.out, c.fleet, c.o.Now(), c.o.JSON, c.o.Table)
}

// silencer is a Folder that can tell who went silent (*Fleet, *Metrics).
type silencer interface {
	Silenced(now time.Time) []Row
}

// announceSilence prints a line (or the table) when terminals went silent.
func announceSilence(out io.Writer, fleet Folder, now time.Time, asJSON, table bool) error {
	s, ok := fleet.(silencer)
	if !ok {
		return nil
	}
	rows := s.Silenced(now)
	if len(rows) == 0 {
		return nil
	}
	if table {
		if err := writeLine(out, ""); err != nil {
			return err
		}
		return fleet.Table(out, now)
	}
	for _, r := range rows {
		line := silentText(r, now)
		if asJSON {
			line = silentJSON(r)
		}
		if err := writeLine(out, line); err != nil {
			return err
		}
	}
	return nil
}

// dedup recognises a message the consumer has already handled: the queue
// redelivers what was not acknowledged when a channel, connection or node
// failed, and a terminal republishes an event whose PUBACK it missed. Events
// carry seq (1, 2, 3… per terminal, in order) and heartbeats (session,
// beat), so "not newer than the newest seen" is a duplicate; a presence has
// no counter, so a redelivered one is a duplicate when its exact bytes were
// handled lately (a birth can legitimately repeat: the stale-Will repair).
type dedup struct {
	seq   map[string]uint64
	beat  map[string][2]uint64 // session, beat
	state map[string][]uint64  // hashes of the latest presences, newest last
}

// presenceMemory is how many presences per terminal dedup remembers: a
// redelivery replays at most the prefetch window, and a terminal sends a
// presence per connect, so a few suffice.
const presenceMemory = 8

func newDedup() dedup {
	return dedup{seq: map[string]uint64{}, beat: map[string][2]uint64{}, state: map[string][]uint64{}}
}

func (d *dedup) seen(m Delivery) bool {
	parts := strings.Split(m.Topic, "/")
	if len(parts) != 4 || parts[0]+"/"+parts[1]+"/" != mqtt.TopicPrefix {
		return false
	}
	tid := parts[2]
	switch parts[3] {
	case "events", "status":
		var msg struct {
			Seq  uint64 `json:"seq"`
			Boot int    `json:"boot"`
		}
		if json.Unmarshal(m.Payload, &msg) != nil || msg.Seq == 0 {
			return false // no order to judge by: show it
		}
		if msg.Seq <= d.seq[tid] && !(restarted(msg.Seq, msg.Boot) && !m.Redelivered) {
			return true
		}
		d.seq[tid] = msg.Seq
	case "heartbeat":
		var hb mqtt.Heartbeat
		if json.Unmarshal(m.Payload, &hb) != nil {
			return false
		}
		last, ok := d.beat[tid]
		if ok && hb.Session == last[0] && hb.Beat <= last[1] {
			return true
		}
		if !ok || hb.Session >= last[0] {
			d.beat[tid] = [2]uint64{hb.Session, hb.Beat}
		}
	case "state":
		h := fnv.New64a()
		h.Write(m.Payload)
		sum := h.Sum64()
		recent := d.state[tid]
		if m.Redelivered {
			for _, s := range recent {
				if s == sum {
					return true
				}
			}
		}
		recent = append(recent, sum)
		if len(recent) > presenceMemory {
			recent = recent[1:]
		}
		d.state[tid] = recent
	}
	return false
}

// restarted reports whether an event's seq and boot are those of a terminal
// whose state directory was wiped: it counts from 1 again, with boot 1, and
// its new events must not be taken for old ones. Sound for the events queue
// only, where a terminal's events come in seq order (its outbox sends one at
// a time); not for a live watch, where the status of seq N comes before the
// events 1…N it replays after an outage (so the fleet's row does not follow).
func restarted(seq uint64, boot int) bool { return seq == 1 && boot == 1 }

// queued is a Delivery seen as a paho message, so queue mode prints with
// Watch's own formatting. Nothing from a queue is retained: RabbitMQ's MQTT
// plugin does not carry the flag into AMQP.
type queued struct {
	topic   string
	payload []byte
}

func (q queued) Duplicate() bool   { return false }
func (q queued) Qos() byte         { return 1 }
func (q queued) Retained() bool    { return false }
func (q queued) Topic() string     { return q.topic }
func (q queued) MessageID() uint16 { return 0 }
func (q queued) Payload() []byte   { return q.payload }
func (q queued) Ack()              {}

var _ paho.Message = queued{}

// Queue mode's defaults (posctl watch --amqp).
const (
	DefaultQueuePrefix = "posctl.watch"
	DefaultShards      = 4
)

// ShardQueue is the name of shard i of prefix.
func ShardQueue(prefix string, i int) string { return prefix + "." + strconv.Itoa(i) }

// TopicOfRoutingKey undoes the MQTT plugin's mapping of a topic to a routing
// key, which swaps '/' and '.'.
func TopicOfRoutingKey(key string) string {
	return strings.Map(func(r rune) rune {
		switch r {
		case '.':
			return '/'
		case '/':
			return '.'
		}
		return r
	}, key)
}

// ErrSourceClosed is returned by a Source's Next after Close.
var ErrSourceClosed = errors.New("monitor: source closed")
