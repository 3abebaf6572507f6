// Package monitor is the central side of the MQTT schema in docs/mqtt.md: it
// shows what monitoring sees of a fleet of terminals (posctl watch, the demo) and
// reads back a terminal's retained status.
//
// It only reads: it never publishes, so watching cannot disturb a terminal's
// retained state.
package monitor

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/posagent/posagent/agent/central/mqtt"
	"github.com/posagent/posagent/agent/central/report"
	"github.com/posagent/posagent/provisioning"
)

// Options configures Watch.
type Options struct {
	// URL is the broker ("tcp://host:1883", "ssl://host:8883" with the system
	// roots); Username and Password log in (the password is never printed).
	URL, Username, Password string
	// TID limits the watch to one terminal; "" watches every terminal.
	TID string
	// TIDPrefix, with TID "", keeps only the terminals whose TID starts with
	// it, so several monitors can split a fleet. The broker still sends
	// every terminal's messages to each of them (an MQTT filter cannot match
	// part of a topic level): it divides the printing and folding, not the
	// broker's fan-out (see tidprefix.go).
	TIDPrefix string
	// JSON prints one JSON object per message instead of a text line.
	JSON bool
	// Once prints the retained snapshot (the last state and status of each
	// terminal) and returns, instead of following live messages.
	Once bool
	// Table prints the fleet table (TID, MID, step, state, online, age, last
	// error) instead of one line per message: once after the snapshot with
	// Once, else again after every change.
	Table bool
	// Out receives the lines; nil means os.Stdout.
	Out io.Writer
	// Now is the clock for the table's age column; nil means time.Now.
	Now func() time.Time
	// Fleet is what the messages are folded into (the session rule, the
	// table); nil means a new Fleet. A *Metrics also counts them for
	// Prometheus (posctl watch --metrics).
	Fleet Folder
}

// Folder folds the schema's messages into a fleet view: a *Fleet, or a
// *Metrics, which also counts them and guards its fleet against scrapes.
type Folder interface {
	Apply(topic string, payload []byte) (stale bool)
	Table(w io.Writer, now time.Time) error
}

// retainedFolder is a Folder that tells a retained replay from live news
// (*Fleet, *Metrics): Watch hands it retained messages through ApplyRetained.
type retainedFolder interface {
	ApplyRetained(topic string, payload []byte) (stale bool)
}

// Quiet is how long Once waits after the last retained message before it
// decides the snapshot is complete. The broker sends retained messages right
// after it acknowledges the subscription, so a second is generous on a LAN and
// tolerable over a slow link.
const Quiet = time.Second

// ErrNoStatus is returned by Latest when no status arrived before ctx ended.
var ErrNoStatus = errors.New("monitor: no retained status")

// Watch subscribes to the state, status and events topics of o.TID (or of every
// terminal) and prints one line per message to o.Out until ctx ends, when it
// returns nil. In text mode a live status message is not printed: the event
// with the same seq already was. With o.Once it prints only the retained snapshot and returns nil.
// It fails if the first connection or subscription fails; later losses are
// reconnected and resubscribed.
func Watch(ctx context.Context, o Options) error {
	out := o.Out
	if out == nil {
		out = os.Stdout
	}
	if err := checkTIDPrefix(o.TID, o.TIDPrefix); err != nil {
		return err
	}
	tid := o.TID
	if tid == "" {
		tid = "+"
	} else if strings.ContainsAny(tid, "/+#") {
		return fmt.Errorf("monitor: TID %q cannot be a topic level", tid)
	}
	filters := map[string]byte{
		mqtt.StateTopic(tid):  1,
		mqtt.StatusTopic(tid): 1,
		mqtt.EventsTopic(tid): 1,
		// QoS 0 as published: a lost heartbeat is what SilentAfter allows for.
		mqtt.HeartbeatTopic(tid): 0,
	}

	// The paho router calls the handler; printing happens here, in Watch's
	// goroutine, so writes to out are serialised and a write error ends Watch.
	msgs := make(chan paho.Message, 256)
	quit := make(chan struct{})
	handler := func(_ paho.Client, m paho.Message) {
		select {
		case msgs <- m:
		case <-quit:
		}
	}
	subscribed := make(chan error, 1)
	co := clientOptions(o.URL, o.Username, o.Password).
		SetAutoReconnect(true).
		SetOnConnectHandler(func(c paho.Client) {
			// A clean session forgets subscriptions: subscribe on every connect.
			tok := c.SubscribeMultiple(filters, handler)
			go func() {
				err := subackErr(tok)
				select {
				case subscribed <- err:
				default: // only the first result matters to Watch
				}
			}()
		})
	client, err := connect(ctx, co, o.URL)
	if err != nil {
		return err
	}
	defer func() {
		// quit first: the router may be blocked handing us a message, and
		// Disconnect waits for the router.
		close(quit)
		client.Disconnect(100)
	}()

	now := o.Now
	if now == nil {
		now = time.Now
	}
	select {
	case err := <-subscribed:
		if err != nil {
			return fmt.Errorf("monitor: subscribe: %w", err)
		}
	case <-ctx.Done():
		return nil
	}

	// fleet applies the session rule: a late Will of an older session is
	// marked stale and never shown as the terminal going offline.
	var fleet Folder = NewFleetClock(now)
	if o.Fleet != nil {
		fleet = o.Fleet
	}
	apply := fleet.Apply
	retainedApply := apply
	if r, ok := fleet.(retainedFolder); ok {
		retainedApply = r.ApplyRetained
	}
	show := func(m paho.Message) error {
		fold := apply
		if m.Retained() {
			fold = retainedApply
		}
		stale := fold(m.Topic(), m.Payload())
		switch {
		case o.Table:
			return nil // the caller prints the table
		case stale && o.JSON:
			return writeLine(out, staleJSON(m))
		case stale:
			return writeLine(out, staleText(m))
		case path.Base(m.Topic()) == "heartbeat" && !o.JSON:
			return nil // a line every interval per terminal is noise: silence is announced instead
		}
		return printMessage(out, o.JSON, m)
	}

	var quiet <-chan time.Time
	if o.Once {
		t := time.NewTimer(Quiet)
		defer t.Stop()
		quiet = t.C
		for {
			select {
			case m := <-msgs:
				if !m.Retained() || !hasTIDPrefix(m.Topic(), o.TIDPrefix) {
					continue // live traffic during the snapshot window
				}
				if err := show(m); err != nil {
					return err
				}
				t.Reset(Quiet)
			case <-quiet:
				if o.Table {
					return fleet.Table(out, now())
				}
				return nil
			case <-ctx.Done():
				return nil
			}
		}
	}
	// shown is the highest event sequence number printed per terminal topic
	// prefix (pos/v1/{tid}).
	shown := map[string]uint64{}
	silence := time.NewTicker(time.Second)
	defer silence.Stop()
	for {
		select {
		case <-silence.C:
			if err := announceSilence(out, fleet, now(), o.JSON, o.Table); err != nil {
				return err
			}
		case m := <-msgs:
			if !hasTIDPrefix(m.Topic(), o.TIDPrefix) {
				continue
			}
			prefix, kind := path.Split(m.Topic())
			seq := seqOf(m)
			// Every live status is also an event: in text mode show it once, as
			// the event. The retained status is the snapshot a late watcher
			// needs; one that repeats an event already shown (a status retained
			// while the subscription was still being set up arrives flagged
			// retained) is skipped by its sequence number.
			if kind == "status" && !o.JSON && !o.Table {
				if !m.Retained() || (seq != 0 && seq <= shown[prefix]) {
					continue
				}
			}
			if kind == "events" && seq > shown[prefix] {
				shown[prefix] = seq
			}
			if err := show(m); err != nil {
				return err
			}
			if o.Table {
				if err := writeLine(out, ""); err != nil {
					return err
				}
				if err := fleet.Table(out, now()); err != nil {
					return err
				}
			}
		case <-ctx.Done():
			return nil
		}
	}
}

// seqOf is a status or event message's sequence number, 0 when it has none.
func seqOf(m paho.Message) uint64 {
	var msg struct {
		Seq uint64 `json:"seq"`
	}
	_ = json.Unmarshal(m.Payload(), &msg)
	return msg.Seq
}

// Latest reads the retained status of terminal tid: it connects, subscribes to
// its status topic and returns the first status that arrives. Credentials, if
// the broker needs them, go in the URL ("tcp://user:pass@host:1883"). It returns
// an error wrapping ErrNoStatus if none arrives before ctx ends.
func Latest(ctx context.Context, url, tid string) (provisioning.Status, error) {
	if tid == "" || strings.ContainsAny(tid, "/+#") {
		return provisioning.Status{}, fmt.Errorf("monitor: TID %q cannot be a topic level", tid)
	}
	got := make(chan []byte, 1)
	client, err := connect(ctx, clientOptions(url, "", ""), url)
	if err != nil {
		return provisioning.Status{}, err
	}
	defer client.Disconnect(100)
	tok := client.Subscribe(mqtt.StatusTopic(tid), 1, func(_ paho.Client, m paho.Message) {
		select {
		case got <- m.Payload():
		default: // one is enough
		}
	})
	select {
	case <-tok.Done():
		if err := subackErr(tok); err != nil {
			return provisioning.Status{}, fmt.Errorf("monitor: subscribe: %w", err)
		}
	case <-ctx.Done():
		return provisioning.Status{}, fmt.Errorf("monitor: subscribe: %w", ctx.Err())
	}
	select {
	case p := <-got:
		var m report.Message
		if err := json.Unmarshal(p, &m); err != nil {
			return provisioning.Status{}, fmt.Errorf("monitor: status of %s: %w", tid, err)
		}
		return m.Status, nil
	case <-ctx.Done():
		return provisioning.Status{}, fmt.Errorf("%w for %s: %w", ErrNoStatus, tid, ctx.Err())
	}
}

// clientOptions are what every monitor connection shares: a random client ID,
// so that two watchers never take each other over, and a clean session, since a
// monitor wants the retained snapshot and live traffic, not a backlog.
func clientOptions(url, user, password string) *paho.ClientOptions {
	var id [4]byte
	_, _ = rand.Read(id[:])
	return paho.NewClientOptions().
		AddBroker(url).
		SetClientID("posctl-" + hex.EncodeToString(id[:])).
		SetUsername(user).
		SetPassword(password).
		SetCleanSession(true).
		SetConnectTimeout(10 * time.Second).
		SetProtocolVersion(mqtt.ProtocolVersion)
}

// connect makes the first connection, bounded by ctx. It does not retry: a
// wrong URL or password should fail the command, not hang it.
func connect(ctx context.Context, co *paho.ClientOptions, url string) (paho.Client, error) {
	client := paho.NewClient(co)
	tok := client.Connect()
	select {
	case <-tok.Done():
		if err := tok.Error(); err != nil {
			return nil, fmt.Errorf("monitor: connect %s: %w", redact(url), err)
		}
		return client, nil
	case <-ctx.Done():
		client.Disconnect(0)
		return nil, fmt.Errorf("monitor: connect %s: %w", redact(url), ctx.Err())
	}
}

// subackErr waits for a subscription and turns a refused filter (SUBACK 0x80,
// which paho reports as a result, not an error) into an error.
func subackErr(tok paho.Token) error {
	tok.Wait()
	if err := tok.Error(); err != nil {
		return err
	}
	if st, ok := tok.(*paho.SubscribeToken); ok {
		for filter, qos := range st.Result() {
			if qos == 0x80 {
				return fmt.Errorf("broker refused %s", filter)
			}
		}
	}
	return nil
}
