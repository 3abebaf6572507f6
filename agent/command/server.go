package command

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/posagent/posagent/agent/report"
	"github.com/posagent/posagent/provisioning"
)

// Handler is what the agent does for each command. Each call should start the
// action and return, not wait for the install to finish; the error goes back
// to central in the reply (wrap ErrNotNow for "not in this state").
type Handler interface {
	RetryStep(ctx context.Context, step provisioning.Step) error
	RerunTestSale(ctx context.Context) error
	ReportNow(ctx context.Context) error
}

// Transport is the part of *report.Reporter the server uses: delivery of the
// terminal's own command topic and publishing on its reply topic.
type Transport interface {
	Subscribe(topic string, fn func(report.Inbound)) error
	Publish(ctx context.Context, topic string, retained bool, payload []byte) error
}

var _ Transport = (*report.Reporter)(nil)

// queueSize bounds commands waiting for the handler; beyond it they are
// answered E_CMD_BUSY at once.
const queueSize = 16

// recentIDs is how many answered ids are remembered: QoS 1 may deliver a
// command twice, and the second delivery must get the first answer, not run
// again.
const recentIDs = 64

// Server receives commands for one terminal and answers each.
type Server struct {
	TID       string
	Handler   Handler
	Transport Transport
	// Log receives each command's id, name and outcome; nil means slog.Default().
	Log *slog.Logger

	once  sync.Once
	queue chan report.Inbound
	mu    sync.Mutex
	seen  map[string]Reply
	order []string
}

func (s *Server) init() {
	s.once.Do(func() {
		s.queue = make(chan report.Inbound, queueSize)
		s.seen = map[string]Reply{}
		if s.Log == nil {
			s.Log = slog.Default()
		}
	})
}

// Listen subscribes the terminal's own command topic: only that one, so a
// command addressed to another terminal can never reach this handler.
func (s *Server) Listen() error {
	s.init()
	return s.Transport.Subscribe(report.CommandTopic(s.TID), func(m report.Inbound) {
		select {
		case s.queue <- m:
		default:
			// Never block paho's delivery goroutine; answer from elsewhere.
			go s.reply(context.Background(), busy(m.Payload))
		}
	})
}

func busy(payload []byte) Reply {
	c, _ := Decode(payload)
	return Reply{ID: c.ID, Error: &Error{Code: CodeBusy, Message: "too many commands queued; send it again later"}}
}

// Run handles queued commands one at a time, in arrival order, until ctx ends.
func (s *Server) Run(ctx context.Context) {
	s.init()
	for {
		select {
		case m := <-s.queue:
			s.reply(ctx, s.Handle(ctx, m))
		case <-ctx.Done():
			return
		}
	}
}

// Handle decodes and runs one message and returns the reply; it never panics,
// whatever the payload or the handler does.
func (s *Server) Handle(ctx context.Context, m report.Inbound) (r Reply) {
	s.init()
	if m.Topic != report.CommandTopic(s.TID) {
		// Listen subscribes only our topic; this is the second lock.
		c, _ := Decode(m.Payload)
		return Reply{ID: c.ID, Error: &Error{Code: CodeMalformed, Message: "not this terminal's command topic"}}
	}
	c, derr := Decode(m.Payload)
	if derr != nil {
		s.Log.Warn("command: refused", "id", c.ID, "code", derr.Code)
		return Reply{ID: c.ID, Error: derr}
	}
	if m.Retained {
		return Reply{ID: c.ID, Error: &Error{Code: CodeRetained, Message: "commands must not be retained"}}
	}
	if prev, ok := s.answered(c.ID); ok {
		return prev
	}
	defer func() {
		if p := recover(); p != nil {
			s.Log.Error("command: handler panicked", "id", c.ID, "name", c.Name, "panic", fmt.Sprint(p))
			r = Reply{ID: c.ID, Error: &Error{Code: CodeFailed, Message: "internal error"}}
		}
		s.remember(r)
	}()
	var err error
	switch c.Name {
	case NameRetryStep:
		err = s.Handler.RetryStep(ctx, c.Step)
	case NameRerunTestSale:
		err = s.Handler.RerunTestSale(ctx)
	case NameReportNow:
		err = s.Handler.ReportNow(ctx)
	}
	if err != nil {
		s.Log.Warn("command: failed", "id", c.ID, "name", c.Name, "err", err)
		// The handler's own words stay in the local log: they may name files or
		// devices. Central gets a code and a fixed message, or the *Error the
		// handler chose to send.
		var ce *Error
		switch {
		case errors.As(err, &ce):
			return Reply{ID: c.ID, Error: ce}
		case errors.Is(err, ErrNotNow):
			return Reply{ID: c.ID, Error: &Error{Code: CodeFailed, Message: "not possible in the current state"}}
		}
		return Reply{ID: c.ID, Error: &Error{Code: CodeFailed, Message: "the terminal could not do it"}}
	}
	s.Log.Info("command: done", "id", c.ID, "name", c.Name)
	return Reply{ID: c.ID, OK: true}
}

func (s *Server) answered(id string) (Reply, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.seen[id]
	return r, ok
}

func (s *Server) remember(r Reply) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.seen[r.ID]; ok {
		return
	}
	s.seen[r.ID] = r
	s.order = append(s.order, r.ID)
	if len(s.order) > recentIDs {
		delete(s.seen, s.order[0])
		s.order = s.order[1:]
	}
}

func (s *Server) reply(ctx context.Context, r Reply) {
	b, _ := json.Marshal(r) // plain strings and bools
	if err := s.Transport.Publish(ctx, report.ReplyTopic(s.TID), false, b); err != nil {
		// Not queued: central resends a command it got no answer to, and the
		// id makes that safe.
		s.Log.Warn("command: reply not sent", "id", r.ID, "err", err)
	}
}
