package mqtt

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// SendOptions is one publish by a central tool (posctl ticket), not by a
// terminal: no Will, no outbox, a random client ID.
type SendOptions struct {
	URL, Username, Password   string
	CAFile, CertFile, KeyFile string
	Topic                     string
	Retained                  bool
	Payload                   []byte
}

// Send connects, publishes at QoS 1, waits for the PUBACK and disconnects.
// A refused login wraps ErrLoginRefused. Note that MQTT 3.1.1 acknowledges a
// publish the broker's ACL dropped: PUBACK means received, not delivered.
func Send(ctx context.Context, o SendOptions) error {
	_, err := send(ctx, o, "", nil)
	return err
}

// Request is Send that also subscribes replyTopic before publishing and then
// waits, within ctx, for the first message there that match accepts (the
// answer to this request, say a command reply with its id), and returns it.
func Request(ctx context.Context, o SendOptions, replyTopic string, match func([]byte) bool) ([]byte, error) {
	return send(ctx, o, replyTopic, match)
}

func send(ctx context.Context, o SendOptions, replyTopic string, match func([]byte) bool) ([]byte, error) {
	u, err := url.Parse(o.URL)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("mqtt: broker URL %q: want scheme://host:port", redact(o.URL))
	}
	if u.User != nil {
		return nil, errors.New("mqtt: put credentials in the user name and password, not in the URL")
	}
	tlsCfg, err := tlsConfig(u.Scheme, o.CAFile, o.CertFile, o.KeyFile)
	if err != nil {
		return nil, err
	}
	var id [4]byte
	_, _ = rand.Read(id[:])
	co := paho.NewClientOptions().AddBroker(o.URL).SetClientID("posctl-send-" + hex.EncodeToString(id[:])).
		SetUsername(o.Username).SetPassword(o.Password).SetCleanSession(true).SetConnectTimeout(10 * time.Second)
	if tlsCfg != nil {
		co.SetTLSConfig(tlsCfg)
	}
	c := paho.NewClient(co)
	wait := func(tok paho.Token, what string) error {
		select {
		case <-tok.Done():
		case <-ctx.Done():
			return fmt.Errorf("mqtt: %s %s: %w", what, redact(o.URL), ctx.Err())
		}
		if err := tok.Error(); err != nil {
			return fmt.Errorf("mqtt: %s %s: %w", what, redact(o.URL), loginErr(err))
		}
		return nil
	}
	if err := wait(c.Connect(), "connect"); err != nil {
		return nil, err
	}
	defer c.Disconnect(250)
	answers := make(chan []byte, 1)
	if replyTopic != "" {
		// QoS 0, as the terminal's own subscriptions: a QoS 1 one buys
		// nothing for a clean session that waits on one live connection
		// (if it drops, the request fails either way), and on RabbitMQ
		// 3.10 it would be a durable queue on this node for each request.
		tok := c.Subscribe(replyTopic, 0, func(_ paho.Client, m paho.Message) {
			if match(m.Payload()) {
				select {
				case answers <- m.Payload():
				default:
				}
			}
		})
		if err := wait(tok, "subscribe at"); err != nil {
			return nil, err
		}
	}
	if err := wait(c.Publish(o.Topic, 1, o.Retained, o.Payload), "publish to"); err != nil || replyTopic == "" {
		return nil, err
	}
	select {
	case b := <-answers:
		return b, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("mqtt: no answer on %s: %w", replyTopic, ctx.Err())
	}
}
