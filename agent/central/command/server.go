package command

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/posagent/posagent/agent/central/mqtt"
	"github.com/posagent/posagent/provisioning"
)

// Handler is what the agent does for each command. Each call should start the
// action and return, not wait for the install to finish; the error goes back
// to central in the reply (wrap ErrNotNow for "not in this state").
type Handler interface {
	RetryStep(ctx context.Context, step provisioning.Step) error
	RerunTestSale(ctx context.Context) error
	ReportNow(ctx context.Context) error
	// ClearUnresolved clears the terminal's record of a sale or void whose
	// outcome it never learnt (kind "sale" or "void", its STAN and batch),
	// once central has settled it with the acquirer.
	ClearUnresolved(ctx context.Context, kind string, stan int, batch string) error
}

// Transport is the part of the terminal's MQTT session (*mqtt.Client) the
// server uses: delivery of the terminal's own command topic and publishing on
// its reply topic.
type Transport interface {
	Subscribe(topic string, fn func(mqtt.Inbound)) error
	Publish(ctx context.Context, topic string, retained bool, payload []byte) error
}

var _ Transport = (*mqtt.Client)(nil)

// queueSize bounds commands waiting for the handler, and replySize replies
// waiting for the broker. Beyond the first a command is answered E_CMD_BUSY;
// beyond the second that answer is dropped (and counted in the log): the
// server's memory and goroutines stay bounded whatever arrives.
const (
	queueSize = 16
	replySize = 16
)

// replyTimeout bounds one reply's wait for its PUBACK.
const replyTimeout = 10 * time.Second

// rememberedReplies is how many accepted commands' replies the server keeps
// in memory. Central resends a command's same signed bytes until it has the
// reply (posctl command --wait): the reply may have been lost, or it went
// out while central's connection was moving to another node. Those bytes
// are answered again with the reply they got, not run again and not
// refused as a replay, which would leave central unable to tell "done" from
// "never ran". Past this many, or after a restart, a resend gets
// E_CMD_REPLAYED: it ran, its result is in the terminal's status.
const rememberedReplies = 64

// Server receives commands for one terminal, verifies each (Verifier) and
// answers it. One goroutine runs the handler and one publishes replies, both
// in Run: nothing is started per message.
type Server struct {
	TID       string
	Handler   Handler
	Transport Transport
	// Verifier checks signatures, windows and replays. Required.
	Verifier *Verifier
	// Log receives each command's id, name and outcome; nil means slog.Default().
	Log *slog.Logger

	once    sync.Once
	queue   chan mqtt.Inbound
	replies chan Reply
	mu      sync.Mutex
	dropped int // replies dropped since the last log line
	answers []answer
}

// answer is an accepted command's reply, under the digest of the exact
// bytes that were verified: only the same bytes find it again, so finding
// it needs no second verification.
type answer struct {
	digest [sha256.Size]byte
	reply  Reply
}

func (s *Server) recall(d [sha256.Size]byte) (Reply, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, a := range s.answers {
		if a.digest == d {
			return a.reply, true
		}
	}
	return Reply{}, false
}

func (s *Server) remember(d [sha256.Size]byte, r Reply) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.answers) >= rememberedReplies {
		s.answers = append(s.answers[:0], s.answers[1:]...)
	}
	s.answers = append(s.answers, answer{digest: d, reply: r})
}

func (s *Server) init() {
	s.once.Do(func() {
		s.queue = make(chan mqtt.Inbound, queueSize)
		s.replies = make(chan Reply, replySize)
		if s.Log == nil {
			s.Log = slog.Default()
		}
	})
}

// Listen subscribes the terminal's own command topic: only that one, so a
// command addressed to another terminal can never reach this handler.
func (s *Server) Listen() error {
	s.init()
	if s.Verifier == nil {
		return errors.New("command: Server.Verifier is required")
	}
	return s.Transport.Subscribe(mqtt.CommandTopic(s.TID), s.offer)
}

// offer queues one delivery. It runs in paho's delivery goroutine and never
// blocks; only the first MaxSize+1 bytes are kept, enough to refuse an
// oversized command as E_CMD_TOO_LARGE.
func (s *Server) offer(m mqtt.Inbound) {
	if len(m.Payload) > MaxSize+1 {
		m.Payload = m.Payload[:MaxSize+1]
	}
	m.Payload = append([]byte(nil), m.Payload...)
	select {
	case s.queue <- m:
		return
	default:
	}
	e, _ := Parse(m.Payload)
	s.tryReply(Reply{ID: e.ID, Error: &Error{Code: CodeBusy, Message: "too many commands queued; send it again later"}})
}

// tryReply queues r without waiting; a full reply queue drops it.
func (s *Server) tryReply(r Reply) {
	select {
	case s.replies <- r:
	default:
		s.mu.Lock()
		s.dropped++
		s.mu.Unlock()
	}
}

// Run handles queued commands one at a time, in arrival order, and publishes
// their replies, until ctx ends.
func (s *Server) Run(ctx context.Context) {
	s.init()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); s.publishReplies(ctx) }()
	defer wg.Wait()
	for {
		select {
		case m := <-s.queue:
			r := s.Handle(ctx, m)
			select {
			case s.replies <- r:
			case <-ctx.Done():
				return
			}
		case <-ctx.Done():
			return
		}
	}
}

func (s *Server) publishReplies(ctx context.Context) {
	for {
		select {
		case r := <-s.replies:
			s.reply(ctx, r)
		case <-ctx.Done():
			return
		}
		s.mu.Lock()
		n := s.dropped
		s.dropped = 0
		s.mu.Unlock()
		if n > 0 {
			s.Log.Warn("command: busy replies dropped (reply queue full)", "count", n)
		}
	}
}

// Handle verifies and runs one message and returns the reply; it never
// panics, whatever the payload or the handler does.
func (s *Server) Handle(ctx context.Context, m mqtt.Inbound) (r Reply) {
	s.init()
	if m.Topic != mqtt.CommandTopic(s.TID) {
		// Listen subscribes only our topic; this is the second lock.
		e, _ := Parse(m.Payload)
		return Reply{ID: e.ID, Error: &Error{Code: CodeOtherTerminal, Message: "not this terminal's command topic"}}
	}
	if m.Retained {
		e, _ := Parse(m.Payload)
		return Reply{ID: e.ID, Error: &Error{Code: CodeRetained, Message: "commands must not be retained"}}
	}
	if s.Verifier == nil {
		e, _ := Parse(m.Payload)
		return Reply{ID: e.ID, Error: &Error{Code: CodeDisabled, Message: "this terminal takes no commands"}}
	}
	digest := sha256.Sum256(m.Payload)
	if r, ok := s.recall(digest); ok {
		s.Log.Info("command: sent again, answered again (not run again)", "id", r.ID)
		return r
	}
	c, err := s.Verifier.Accept(m.Payload)
	var ce *Error
	switch {
	case errors.As(err, &ce):
		s.Log.Warn("command: refused", "id", c.ID, "code", ce.Code, "reason", ce.Message)
		return Reply{ID: c.ID, Error: ce}
	case err != nil:
		// The nonce record cannot be written: running without it could run
		// this command twice, so it is not run.
		s.Log.Error("command: not recorded, not run", "id", c.ID, "err", err)
		return Reply{ID: c.ID, Error: &Error{Code: CodeFailed, Message: "the terminal could not record the command; it was not run"}}
	}
	// Accepted: whatever its reply, it is the one a resend gets (this defer
	// runs after the recover below has set a panic's reply).
	defer func() { s.remember(digest, r) }()
	defer func() {
		if p := recover(); p != nil {
			s.Log.Error("command: handler panicked", "id", c.ID, "name", c.Name, "panic", fmt.Sprint(p))
			r = Reply{ID: c.ID, Error: &Error{Code: CodeFailed, Message: "internal error"}}
		}
	}()
	switch c.Name {
	case NameRetryStep:
		err = s.Handler.RetryStep(ctx, c.Step)
	case NameRerunTestSale:
		err = s.Handler.RerunTestSale(ctx)
	case NameReportNow:
		err = s.Handler.ReportNow(ctx)
	case NameClearUnresolved:
		err = s.Handler.ClearUnresolved(ctx, c.Kind, c.STAN, c.Batch)
	}
	if err != nil {
		s.Log.Warn("command: failed", "id", c.ID, "name", c.Name, "err", err)
		// The handler's own words stay in the local log: they may name files or
		// devices. Central gets a code and a fixed message, or the *Error the
		// handler chose to send.
		switch {
		case errors.As(err, &ce):
			return Reply{ID: c.ID, Error: ce}
		case errors.Is(err, ErrNotNow):
			return Reply{ID: c.ID, Error: &Error{Code: CodeFailed, Message: "not possible in the current state"}}
		}
		return Reply{ID: c.ID, Error: &Error{Code: CodeFailed, Message: "the terminal could not do it"}}
	}
	s.Log.Info("command: done", "id", c.ID, "name", c.Name, "kid", c.KID)
	return Reply{ID: c.ID, OK: true}
}

func (s *Server) reply(ctx context.Context, r Reply) {
	b, _ := json.Marshal(r) // plain strings and bools
	pctx, cancel := context.WithTimeout(ctx, replyTimeout)
	defer cancel()
	if err := s.Transport.Publish(pctx, mqtt.ReplyTopic(s.TID), false, b); err != nil {
		// Not queued: central resends a command it got no answer to, and the
		// same signed bytes get this reply again (rememberedReplies).
		s.Log.Warn("command: reply not sent", "id", r.ID, "err", err)
	}
}
