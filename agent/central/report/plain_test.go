package report

import (
	"errors"
	"testing"
)

// Tickets and commands are never taken over a plain link: whoever sits on
// the path could read and replay them. The reporter refuses to subscribe
// their topics unless the URL is TLS.
func TestPlainLinkRefusesTicketAndCommandTopics(t *testing.T) {
	plain, err := New(Options{URL: "tcp://127.0.0.1:1883", TID: tid})
	if err != nil {
		t.Fatal(err)
	}
	for _, topic := range []string{TicketTopic(tid), CommandTopic(tid)} {
		if err := plain.Subscribe(topic, func(Inbound) {}); !errors.Is(err, ErrPlainLink) {
			t.Errorf("Subscribe(%s) over tcp:// = %v, want ErrPlainLink", topic, err)
		}
	}
	if err := plain.Subscribe(TopicPrefix+tid+"/other", func(Inbound) {}); err != nil {
		t.Errorf("another own topic over tcp:// = %v", err)
	}
	tls, err := New(Options{URL: "ssl://127.0.0.1:8883", TID: tid})
	if err != nil {
		t.Fatal(err)
	}
	for _, topic := range []string{TicketTopic(tid), CommandTopic(tid)} {
		if err := tls.Subscribe(topic, func(Inbound) {}); err != nil {
			t.Errorf("Subscribe(%s) over ssl:// = %v", topic, err)
		}
	}
}
