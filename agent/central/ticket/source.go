package ticket

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/posagent/posagent/agent/central/mqtt"
	"github.com/posagent/posagent/provisioning"
)

// Subscriber is the part of the terminal's MQTT session (*mqtt.Client) a
// Source needs: delivery of the terminal's ticket topic, again after every
// reconnect.
type Subscriber interface {
	Subscribe(topic string, fn func(mqtt.Inbound)) error
}

var _ Subscriber = (*mqtt.Client)(nil)

// maxPending bounds the tickets kept while the parameters step is not running:
// central sends one (retained); a flood is someone else, and only the newest
// few can matter.
const maxPending = 8

// Source is a provisioning.ParameterSource that waits for a valid install
// ticket. Tickets are offered to it (Listen wires the session's ticket topic)
// and kept until Parameters runs; each refused one is logged, shown to the
// installer and reported to monitoring, and the wait goes on.
type Source struct {
	Verifier *Verifier
	// Reporter, when set, receives a status per refused ticket: step
	// parameters, state running (the step is still waiting), the refusal's
	// code and message in error. Central sees why its ticket did not take.
	Reporter provisioning.Reporter
	// UI, when set, shows the installer the refusal while the wait goes on.
	UI provisioning.Prompter
	// Log receives refusals; nil means slog.Default().
	Log *slog.Logger
	// Clock stamps the refusal reports; nil means the system clock.
	Clock provisioning.Clock

	mu      sync.Mutex
	pending [][]byte
	// current is the last accepted payload, tried first by the next
	// Parameters call: a retry of the step gets no new delivery from the
	// broker (the retained ticket came once, at subscribe).
	current []byte
	wake    chan struct{}
}

var _ provisioning.ParameterSource = (*Source)(nil)

// Listen subscribes the terminal's ticket topic and offers every message.
func (s *Source) Listen(sub Subscriber) error {
	return sub.Subscribe(mqtt.TicketTopic(s.Verifier.TID), func(m mqtt.Inbound) { s.Offer(m.Payload) })
}

// Offer hands a ticket payload to the source. It never blocks (it is called
// from the MQTT delivery goroutine); beyond maxPending the oldest is dropped.
// Only the first MaxSize+1 bytes are kept: enough for Parse to refuse an
// oversized one as E_TICKET_TOO_LARGE, and the pending list stays bounded
// whatever the broker lets through.
func (s *Source) Offer(payload []byte) {
	if len(payload) > MaxSize+1 {
		payload = payload[:MaxSize+1]
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pending = append(s.pending, append([]byte(nil), payload...))
	if len(s.pending) > maxPending {
		s.pending = s.pending[len(s.pending)-maxPending:]
	}
	s.signalLocked()
}

func (s *Source) signalLocked() {
	if s.wake == nil {
		s.wake = make(chan struct{})
	}
	close(s.wake)
	s.wake = make(chan struct{})
}

// Parameters waits for a ticket that passes Accept and returns its merchant
// record. Refused tickets are reported and skipped. It returns only a valid
// record, an error of the replay state (disk), or ctx's error.
func (s *Source) Parameters(ctx context.Context, _ provisioning.Terminal) (provisioning.Merchant, error) {
	log := s.Log
	if log == nil {
		log = slog.Default()
	}
	for {
		s.mu.Lock()
		var next []byte
		if s.current != nil {
			next, s.current = s.current, nil
		} else if len(s.pending) > 0 {
			next, s.pending = s.pending[0], s.pending[1:]
		}
		if s.wake == nil {
			s.wake = make(chan struct{})
		}
		wake := s.wake
		s.mu.Unlock()

		if next == nil {
			select {
			case <-wake:
				continue
			case <-ctx.Done():
				return provisioning.Merchant{}, fmt.Errorf("ticket: waiting for an install ticket: %w", ctx.Err())
			}
		}
		t, err := s.Verifier.Accept(next)
		var te *Error
		switch {
		case err == nil:
			s.mu.Lock()
			s.current = next
			s.mu.Unlock()
			log.Info("ticket: install ticket accepted", "kid", t.KID, "issued_at", t.IssuedAt, "expires_at", t.ExpiresAt)
			return t.Merchant(), nil
		case errors.As(err, &te):
			s.refused(ctx, log, te)
		default:
			// The replay state cannot be read or written: accepting without it
			// would forget replays, so the step fails for the installer.
			return provisioning.Merchant{}, err
		}
	}
}

// refused tells everyone who should know, without the ticket's content.
func (s *Source) refused(ctx context.Context, log *slog.Logger, e *Error) {
	log.Warn("ticket: install ticket refused; waiting for another", "code", e.Code, "reason", e.Message)
	if s.UI != nil {
		_ = s.UI.Show(ctx, provisioning.Screen{Title: "参数 PARAMETERS", Lines: []string{
			"安装票据被拒 Ticket refused", e.Code, "等待新票据 Waiting for a new one"}})
	}
	if s.Reporter != nil {
		now := time.Now()
		if s.Clock != nil {
			now = s.Clock.Now()
		}
		s.Reporter.Report(ctx, provisioning.Status{
			Step: provisioning.StepParameters, State: provisioning.StateRunning,
			Error:   &provisioning.Failure{Step: provisioning.StepParameters, Code: e.Code, Message: e.Message},
			Message: "install ticket refused: " + e.Code, Time: now.UTC(),
		})
	}
}
