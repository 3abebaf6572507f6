package printer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"
)

// Condition is a state that stops printing. Its code is the failure code
// an install flow shows the installer for it (FailureCode), so a screen can
// say "out of paper" rather than a driver's error text.
type Condition struct {
	Code string
	msg  string
}

func (c *Condition) Error() string { return c.msg }

// FailureCode is the condition's stable code.
func (c *Condition) FailureCode() string { return c.Code }

// Conditions that stop printing. Each says what the installer must do.
var (
	ErrPaperEnd   = &Condition{"E_PAPER_END", "printer: paper end: load paper"}
	ErrCoverOpen  = &Condition{"E_COVER_OPEN", "printer: cover open: close the cover"}
	ErrOffline    = &Condition{"E_PRINTER_OFFLINE", "printer: offline: check the printer"}
	ErrFault      = &Condition{"E_PRINTER_FAULT", "printer: error state: switch the printer off and on"}
	ErrNoResponse = &Condition{"E_PRINTER_NO_ANSWER", "printer: no answer to a status request: check cable and power"}
	ErrBadStatus  = errors.New("printer: malformed status byte")
)

// Status is the printer's real-time state as DLE EOT reports it.
type Status struct {
	Offline      bool // n=1 bit 3
	CoverOpen    bool // n=2 bit 2
	FeedButton   bool // n=2 bit 3: paper being fed by the button
	PaperStop    bool // n=2 bit 5: printing stopped because the paper ended
	Fault        bool // n=2 bit 6
	PaperNearEnd bool // n=4 bits 2-3
	PaperEnd     bool // n=4 bits 5-6
}

// Err is the condition that stops printing, most actionable first, or nil.
// A near end does not stop printing, so it is not an error.
func (s Status) Err() error {
	switch {
	case s.PaperEnd || s.PaperStop:
		return ErrPaperEnd
	case s.CoverOpen:
		return ErrCoverOpen
	case s.Fault:
		return ErrFault
	case s.Offline:
		return ErrOffline
	}
	return nil
}

// Status queries sent, in order: printer status, offline cause, paper sensor.
var statusQueries = []byte{1, 2, 4}

// DecodeStatus applies the answer b to DLE EOT n to s. Every answer has bits
// 1 and 4 set and bits 0 and 7 clear (ESC/POS fixes them so a status byte can
// be told from other data); a byte that breaks that is ErrBadStatus.
func DecodeStatus(s *Status, n, b byte) error {
	if b&0x93 != 0x12 {
		return fmt.Errorf("%w: 0x%02x for DLE EOT %d", ErrBadStatus, b, n)
	}
	switch n {
	case 1:
		s.Offline = b&0x08 != 0
	case 2:
		s.CoverOpen = b&0x04 != 0
		s.FeedButton = b&0x08 != 0
		s.PaperStop = b&0x20 != 0
		s.Fault = b&0x40 != 0
	case 3:
		s.Fault = s.Fault || b&0x68 != 0
	case 4:
		s.PaperNearEnd = b&0x0C != 0
		s.PaperEnd = b&0x60 != 0
	default:
		return fmt.Errorf("%w: no such status request %d", ErrBadStatus, n)
	}
	return nil
}

// EncodeStatus is the answer a printer in state s gives to DLE EOT n; the
// emulator and tests use it.
func EncodeStatus(s Status, n byte) byte {
	b := byte(0x12)
	set := func(on bool, bits byte) {
		if on {
			b |= bits
		}
	}
	switch n {
	case 1:
		set(s.Offline || s.CoverOpen || s.PaperEnd || s.Fault, 0x08)
	case 2:
		set(s.CoverOpen, 0x04)
		set(s.FeedButton, 0x08)
		set(s.PaperEnd || s.PaperStop, 0x20)
		set(s.Fault, 0x40)
	case 4:
		set(s.PaperNearEnd || s.PaperEnd, 0x0C)
		set(s.PaperEnd, 0x60)
	}
	return b
}

// deadliner is implemented by lines whose reads can be bounded directly.
type deadliner interface{ SetReadDeadline(time.Time) error }

// queryStatus sends DLE EOT n for each status request and decodes the
// answers. Bytes that are not status answers (a malformed byte, line noise)
// are skipped until the timeout.
func queryStatus(ctx context.Context, rw io.ReadWriter, timeout time.Duration, now func() time.Time) (Status, error) {
	var s Status
	for _, n := range statusQueries {
		if _, err := rw.Write([]byte{DLE, EOT, n}); err != nil {
			return s, fmt.Errorf("printer: status request: %w", err)
		}
		deadline := now().Add(timeout)
		if d, ok := rw.(deadliner); ok {
			_ = d.SetReadDeadline(deadline)
		}
		for {
			b, err := readByte(ctx, rw, deadline, now)
			if err != nil {
				return s, err
			}
			if DecodeStatus(&s, n, b) == nil {
				break
			}
		}
	}
	return s, nil
}

func readByte(ctx context.Context, r io.Reader, deadline time.Time, now func() time.Time) (byte, error) {
	var one [1]byte
	for {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		if !now().Before(deadline) {
			return 0, ErrNoResponse
		}
		n, err := r.Read(one[:])
		if n == 1 {
			return one[0], nil
		}
		if err != nil && !isTimeout(err) {
			return 0, fmt.Errorf("printer: status read: %w", err)
		}
	}
}

func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &t) && t.Timeout())
}
