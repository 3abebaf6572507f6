package mqtttest

import (
	"crypto/tls"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// Login is how a Client connects.
type Login struct {
	URL, ClientID, User, Password string
	TLS                           *tls.Config // for an ssl:// URL; nil for the system roots
}

// Client is a raw MQTT client for tests that play central, a monitor or a
// forger: unlike mqtt.Client it subscribes and publishes wherever the broker
// lets it, so that tests outside agent/central check a broker's ACL without
// importing paho themselves.
type Client struct{ c paho.Client }

// Dial connects with a clean session, or fails the test; the test's cleanup
// disconnects.
func Dial(t testing.TB, l Login) *Client {
	t.Helper()
	co := paho.NewClientOptions().AddBroker(l.URL).SetClientID(l.ClientID).
		SetUsername(l.User).SetPassword(l.Password).SetCleanSession(true)
	if l.TLS != nil {
		co.SetTLSConfig(l.TLS)
	}
	c := paho.NewClient(co)
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("mqtttest: %s connect: %v", l.User, tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(50) })
	return &Client{c: c}
}

// Subscribe subscribes topic at QoS 1 and waits for the SUBACK; fn runs in
// the client's delivery goroutine for every message.
func (c *Client) Subscribe(t testing.TB, topic string, fn func(topic string, payload []byte, retained bool)) {
	t.Helper()
	tok := c.c.Subscribe(topic, 1, func(_ paho.Client, m paho.Message) { fn(m.Topic(), m.Payload(), m.Retained()) })
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("mqtttest: subscribe %s: %v", topic, tok.Error())
	}
}

// Publish publishes at QoS 1 and waits for the PUBACK. MQTT 3.1.1 cannot
// refuse a publish: a broker acknowledges one its ACL drops, so the PUBACK
// orders the publish before whatever the test does next.
func (c *Client) Publish(t testing.TB, topic string, retained bool, payload []byte) {
	t.Helper()
	if tok := c.c.Publish(topic, 1, retained, payload); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("mqtttest: publish %s: %v", topic, tok.Error())
	}
}
