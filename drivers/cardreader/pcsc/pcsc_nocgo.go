//go:build !cgo

package pcsc

import (
	"context"
	"fmt"

	"github.com/posagent/posagent/drivers/cardreader"
)

// errNoCgo explains why every call fails in this build.
var errNoCgo = fmt.Errorf("pcsc: built without cgo: %w", cardreader.ErrServiceUnavailable)

// Service is the cardreader.Reader over pcscd; without cgo it has no pcscd to
// talk to and every call reports cardreader.ErrServiceUnavailable.
type Service struct{}

var _ cardreader.Reader = (*Service)(nil)

// New returns the unavailable service.
func New() *Service { return &Service{} }

// Init reports that PC/SC is not built in.
func (s *Service) Init() (loaded bool, err error) { return false, errNoCgo }

// Readers fails: no PC/SC in this build.
func (s *Service) Readers(context.Context) ([]string, error) { return nil, errNoCgo }

// WaitChange fails: no PC/SC in this build.
func (s *Service) WaitChange(context.Context, []cardreader.ReaderState) ([]cardreader.ReaderState, error) {
	return nil, errNoCgo
}

// Connect fails: no PC/SC in this build.
func (s *Service) Connect(context.Context, string) (cardreader.Card, error) { return nil, errNoCgo }

// Close does nothing.
func (s *Service) Close() error { return nil }

// Card exists for API parity with the cgo build; it is never returned.
type Card struct{}

// Reconnect fails: no PC/SC in this build.
func (c *Card) Reconnect(context.Context) error { return errNoCgo }
