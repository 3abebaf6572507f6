package mqtt

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"sync"
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
	s, err := dial(ctx, o, "", nil)
	if err != nil {
		return err
	}
	defer s.close()
	return s.wait(ctx, o, s.c.Publish(o.Topic, 1, o.Retained, o.Payload), "publish to")
}

// Resend is how RequestResending repeats a request it has no answer to.
type Resend struct {
	// URLs are the brokers (a cluster's nodes) to publish through, in turn:
	// the next one when the one in use cannot be reached, drops the
	// connection or acknowledges nothing. Empty means SendOptions.URL only.
	URLs []string
	// Every is how long to wait for the answer before publishing the same
	// payload again. Required (> 0).
	Every time.Duration
}

// RequestResending is Send that also subscribes replyTopic before
// publishing and waits, within ctx, for the first message there that match
// accepts (the answer to this request, say a command reply with its id), and
// returns it. It publishes the same payload again every r.Every until the
// answer arrives or ctx ends, moving to the next of
// r.URLs when a broker fails. It returns the answer and how many times the
// payload was acknowledged by a broker: an answer after more than one may
// be the receiver's answer to a resend. A refused login ends it at once
// (the same credentials are refused by every node of a cluster); other
// failures keep it going, and the last one is in the error when ctx ends.
func RequestResending(ctx context.Context, o SendOptions, r Resend, replyTopic string, match func([]byte) bool) ([]byte, int, error) {
	if r.Every <= 0 {
		return nil, 0, errors.New("mqtt: Resend.Every must be more than 0")
	}
	urls := r.URLs
	if len(urls) == 0 {
		urls = []string{o.URL}
	}
	sent := 0
	var last error
	for i := 0; ; i++ {
		o.URL = urls[i%len(urls)]
		s, err := dial(ctx, o, replyTopic, match)
		if err == nil {
			var b []byte
			b, err = s.exchange(ctx, o, r.Every, &sent)
			s.close()
			if b != nil {
				return b, sent, nil
			}
		}
		if errors.Is(err, ErrLoginRefused) {
			return nil, sent, err
		}
		if ctx.Err() != nil {
			if last == nil {
				return nil, sent, fmt.Errorf("mqtt: no answer on %s after %d sends: %w", replyTopic, sent, ctx.Err())
			}
			return nil, sent, fmt.Errorf("mqtt: no answer on %s after %d sends (last failure: %v): %w", replyTopic, sent, last, ctx.Err())
		}
		last = err
		// Every broker failed in turn: wait before the next round rather
		// than spin on refused connections.
		if (i+1)%len(urls) == 0 {
			select {
			case <-time.After(r.Every):
			case <-ctx.Done():
			}
		}
	}
}

// session is one connection of a central tool: clean, no auto-reconnect
// (a lost connection is reported on lost; the caller decides), and, for a
// request, subscribed to the reply topic.
type session struct {
	c       paho.Client
	answers chan []byte
	lost    chan struct{}
}

func dial(ctx context.Context, o SendOptions, replyTopic string, match func([]byte) bool) (*session, error) {
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
	s := &session{answers: make(chan []byte, 1), lost: make(chan struct{})}
	var once sync.Once
	co := paho.NewClientOptions().AddBroker(o.URL).SetClientID("posctl-send-" + hex.EncodeToString(id[:])).
		SetUsername(o.Username).SetPassword(o.Password).SetCleanSession(true).SetConnectTimeout(10 * time.Second).
		SetProtocolVersion(ProtocolVersion).SetAutoReconnect(false).SetConnectionLostHandler(func(paho.Client, error) { once.Do(func() { close(s.lost) }) })
	if tlsCfg != nil {
		co.SetTLSConfig(tlsCfg)
	}
	s.c = paho.NewClient(co)
	if err := s.wait(ctx, o, s.c.Connect(), "connect"); err != nil {
		return nil, err
	}
	if replyTopic != "" {
		// QoS 0, as the terminal's own subscriptions: a QoS 1 one buys
		// nothing for a clean session that waits on one live connection
		// (if it drops, the request fails either way), and on RabbitMQ
		// 3.10 it would be a durable queue on this node for each request.
		tok := s.c.Subscribe(replyTopic, 0, func(_ paho.Client, m paho.Message) {
			if match(m.Payload()) {
				select {
				case s.answers <- m.Payload():
				default:
				}
			}
		})
		if err := s.wait(ctx, o, tok, "subscribe at"); err != nil {
			s.close()
			return nil, err
		}
	}
	return s, nil
}

// wait waits for tok within ctx, and names the broker (redacted) in its error.
func (s *session) wait(ctx context.Context, o SendOptions, tok paho.Token, what string) error {
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

// exchange publishes o's payload, and again every every, until an answer
// arrives (returned), the connection fails or ctx ends (the error). sent
// counts the publishes a broker acknowledged.
func (s *session) exchange(ctx context.Context, o SendOptions, every time.Duration, sent *int) ([]byte, error) {
	t := time.NewTimer(every)
	defer t.Stop()
	for {
		pctx, cancel := context.WithTimeout(ctx, every)
		err := s.wait(pctx, o, s.c.Publish(o.Topic, 1, o.Retained, o.Payload), "publish to")
		cancel()
		if err != nil {
			select {
			case b := <-s.answers: // the answer to an earlier send
				return b, nil
			default:
			}
			return nil, err
		}
		*sent++
		t.Reset(every)
		select {
		case b := <-s.answers:
			return b, nil
		case <-s.lost:
			select {
			case b := <-s.answers:
				return b, nil
			default:
			}
			return nil, fmt.Errorf("mqtt: lost the connection to %s", redact(o.URL))
		case <-t.C:
		case <-ctx.Done():
			return nil, fmt.Errorf("mqtt: no answer on %s via %s: %w", o.Topic, redact(o.URL), ctx.Err())
		}
	}
}

func (s *session) close() { s.c.Disconnect(250) }
