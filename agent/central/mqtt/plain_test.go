package mqtt_test

import (
	"errors"
	"testing"

	"github.com/posagent/posagent/agent/central/mqtt"
)

// Tickets and commands are never taken over a plain link: whoever sits on
// the path could read and replay them. The client refuses to subscribe
// their topics unless the URL is TLS.
func TestPlainLinkRefusesTicketAndCommandTopics(t *testing.T) {
	plain, err := mqtt.New(mqtt.Options{URL: "tcp://127.0.0.1:1883", TID: tid})
	if err != nil {
		t.Fatal(err)
	}
	for _, topic := range []string{mqtt.TicketTopic(tid), mqtt.CommandTopic(tid)} {
		if err := plain.Subscribe(topic, func(mqtt.Inbound) {}); !errors.Is(err, mqtt.ErrPlainLink) {
			t.Errorf("Subscribe(%s) over tcp:// = %v, want mqtt.ErrPlainLink", topic, err)
		}
	}
	if err := plain.Subscribe(mqtt.TopicPrefix+tid+"/other", func(mqtt.Inbound) {}); err != nil {
		t.Errorf("another own topic over tcp:// = %v", err)
	}
	tls, err := mqtt.New(mqtt.Options{URL: "ssl://127.0.0.1:8883", TID: tid})
	if err != nil {
		t.Fatal(err)
	}
	for _, topic := range []string{mqtt.TicketTopic(tid), mqtt.CommandTopic(tid)} {
		if err := tls.Subscribe(topic, func(mqtt.Inbound) {}); err != nil {
			t.Errorf("Subscribe(%s) over ssl:// = %v", topic, err)
		}
	}
}
