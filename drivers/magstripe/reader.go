package magstripe

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/posagent/posagent/provisioning/pan"
)

// Swipe errors callers branch on.
var (
	// ErrChipCard: the service code says the card has a chip; ask for the
	// chip to be inserted. The error is a *ChipCardError.
	ErrChipCard = errors.New("magstripe: chip card: insert the chip card")
	// ErrBadSwipe: a card was swiped but track 2 could not be used; ask for
	// another swipe. The error is a *SwipeError.
	ErrBadSwipe = errors.New("magstripe: swipe not readable: swipe again")
)

// CheckTracksDisagree is failed when track 1 and track 2 carry different card
// numbers or expiry dates: one of them was misread.
const CheckTracksDisagree Check = "tracks_disagree"

// ChipCardError refuses a swipe of a chip card. PAN masks itself.
type ChipCardError struct {
	PAN         pan.PAN
	ServiceCode string
}

// Error asks for the chip, with the card masked.
func (e *ChipCardError) Error() string {
	return fmt.Sprintf("%v (card %s, service code %s)", ErrChipCard, e.PAN.Masked(), e.ServiceCode)
}

// Is makes errors.Is(err, ErrChipCard) true.
func (e *ChipCardError) Is(target error) bool { return target == ErrChipCard }

// SwipeError is a swipe without a usable track 2.
type SwipeError struct {
	// Unreadable lists the tracks the reader itself flagged (sent as E).
	Unreadable []int
	// Track holds the checks the tracks failed, when the reader sent data.
	Track *TrackError
}

// Error asks for another swipe and says which tracks failed how.
func (e *SwipeError) Error() string {
	msg := ErrBadSwipe.Error()
	if len(e.Unreadable) > 0 {
		msg += fmt.Sprintf(" (reader could not read track(s) %v)", e.Unreadable)
	}
	if e.Track != nil {
		msg += ": " + e.Track.Error()
	}
	return msg
}

// Unwrap exposes ErrBadSwipe and the track's check errors (ErrExpired, ErrLuhn …).
func (e *SwipeError) Unwrap() []error {
	if e.Track != nil {
		return []error{ErrBadSwipe, e.Track}
	}
	return []error{ErrBadSwipe}
}

// Swipe is an accepted swipe, without any track data.
type Swipe struct {
	PAN         pan.PAN
	Name        string // from track 1 when it was read and valid; may be empty
	Expiry      string // YYMM
	ServiceCode string
	// Track3 says a valid track 3 was read (its data went to Config.Sensitive).
	Track3 bool
	// Fallback says a chip card was accepted by its stripe because the chip
	// failed: the sale must say so (field 60.5 = 2).
	Fallback bool
	// Status is the reader's card-sensor status byte, when its framing sends one.
	Status byte
}

// Field605 is the value of field 60.5 for a sale with this swipe: "2" for a
// fallback from chip to magstripe, else "0".
func (s Swipe) Field605() string {
	if s.Fallback {
		return "2"
	}
	return "0"
}

// Sensitive is the track data the host needs: Track2 is the track-2
// equivalent data of field 35 (PAN=YYMM service code, discretionary data, no
// sentinels or LRC) and Track3 that of field 36 (nil when absent). Both are
// lent: they are zeroed as soon as the callback returns, so copy what must go
// on the wire into the outgoing message and nowhere else.
type Sensitive struct {
	Track2 []byte
	Track3 []byte
}

// Config configures a Reader.
type Config struct {
	Framing Framing
	// Now is the clock expiry dates are checked against; nil means time.Now.
	Now func() time.Time
	// Sensitive, when set, is called with an accepted swipe's track data
	// before Swipe returns; see Sensitive for the lending rule. Refused
	// swipes (chip card, bad track) are never passed.
	Sensitive func(Sensitive)
}

// Reader reads swipes from a reader's line. It is not safe for concurrent use.
type Reader struct {
	r    io.Reader
	cfg  Config
	sc   *scanner
	read [256]byte
	err  error
}

// NewReader reads swipes from r with the given framing. r is typically a
// serialport.Port; NewReader never closes it.
//
// r must return from Read now and then even without data (a read timeout):
// that is when Swipe notices a cancelled context. Timeout errors (those that
// match os.ErrDeadlineExceeded or have Timeout() true) and empty reads are
// taken as "nothing yet".
func NewReader(r io.Reader, cfg Config) *Reader {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Reader{r: r, cfg: cfg, sc: newScanner(cfg.Framing)}
}

// Skipped is the number of partial or garbage frames skipped so far.
func (r *Reader) Skipped() int { return r.sc.dropped }

// Swipe waits for the next swipe and decodes it.
//
// Garbage and partial frames are skipped. A swiped chip card (service code
// 2xx/6xx) is refused with a *ChipCardError unless allowFallback is set (the
// chip already failed on this card), in which case the result says Fallback.
// A swipe without a usable track 2 returns a *SwipeError. Both errors leave the
// Reader ready for the next swipe; so does a returned context error. io.EOF
// means the line closed.
func (r *Reader) Swipe(ctx context.Context, allowFallback bool) (Swipe, error) {
	return r.SwipeWith(ctx, func(pan.PAN) bool { return allowFallback })
}

// SwipeWith is Swipe with the fallback decided when a chip card is swiped:
// allow is called with its PAN and says whether its chip failed. The caller
// can so learn of a chip failure while the swipe is awaited, and allow the
// fallback for one card only. allow must not block.
func (r *Reader) SwipeWith(ctx context.Context, allow func(pan.PAN) bool) (Swipe, error) {
	for {
		if fr, release, ok := r.sc.next(); ok {
			sw, err, skip := r.decode(fr, allow)
			release()
			if skip {
				r.sc.dropped++
				continue
			}
			return sw, err
		}
		if r.err != nil {
			err := r.err
			return Swipe{}, err
		}
		if err := ctx.Err(); err != nil {
			return Swipe{}, err
		}
		n, err := r.r.Read(r.read[:])
		r.sc.feed(r.read[:n])
		clear(r.read[:n])
		switch {
		case err == nil, isTimeout(err):
		case errors.Is(err, io.EOF):
			r.sc.reset()
			r.err = io.EOF
		default:
			r.sc.reset()
			return Swipe{}, fmt.Errorf("magstripe: read: %w", err)
		}
	}
}

func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &t) && t.Timeout())
}

// decode turns a frame into a swipe or an error; skip says the frame held no
// tracks at all (line noise that happened to be framed) and is not a swipe.
func (r *Reader) decode(fr frame, allowFallback func(pan.PAN) bool) (sw Swipe, err error, skip bool) {
	if len(fr.tracks) == 0 {
		return Swipe{}, nil, true
	}
	sw.Status = fr.status
	opts := ParseOptions{LRC: r.cfg.Framing.LRC, Now: r.cfg.Now()}
	var t1, t2, t3 *rawTrack
	var unreadable []int
	for i := range fr.tracks {
		t := &fr.tracks[i]
		if t.bad {
			unreadable = append(unreadable, t.number)
			continue
		}
		switch t.number {
		case 1:
			t1 = t
		case 2:
			t2 = t
		case 3:
			t3 = t
		}
	}
	if t2 == nil {
		return Swipe{}, &SwipeError{Unreadable: unreadable}, false
	}
	tr2, err := ParseTrack(t2.data, opts)
	if err == nil && tr2.Number != 2 {
		// Line mode: the line where track 2 belongs carries another track.
		err = &TrackError{Track: 2, Failed: []Check{CheckSentinel}}
	}
	if err != nil {
		var te *TrackError
		errors.As(err, &te)
		return Swipe{}, &SwipeError{Unreadable: unreadable, Track: te}, false
	}
	sw.PAN, sw.Expiry, sw.ServiceCode = tr2.PAN, tr2.Expiry, tr2.ServiceCode
	if t1 != nil {
		// Track 1 only adds the name; a damaged track 1 is ignored, but one
		// that reads well and disagrees with track 2 means a misread.
		if tr1, err := ParseTrack(t1.data, opts); err == nil && tr1.Number == 1 {
			if tr1.PAN.Reveal() != tr2.PAN.Reveal() || tr1.Expiry != tr2.Expiry {
				return Swipe{}, &SwipeError{Unreadable: unreadable,
					Track: &TrackError{Track: 1, Failed: []Check{CheckTracksDisagree}}}, false
			}
			sw.Name = tr1.Name
		}
	}
	if tr2.Chip() {
		if !allowFallback(tr2.PAN) {
			return Swipe{}, &ChipCardError{PAN: tr2.PAN, ServiceCode: tr2.ServiceCode}, false
		}
		sw.Fallback = true
	}
	var track3 []byte
	if t3 != nil {
		o := opts
		o.Track3 = true
		if _, err := ParseTrack(t3.data, o); err == nil {
			sw.Track3 = true
			track3 = trackBody(t3.data, r.cfg.Framing.LRC)
		}
	}
	if r.cfg.Sensitive != nil {
		r.cfg.Sensitive(Sensitive{Track2: trackBody(t2.data, r.cfg.Framing.LRC), Track3: track3})
	}
	// The slices handed out alias the frame; the caller's release zeroes them.
	return sw, nil, false
}

// trackBody is the track without sentinels and LRC; it aliases t.
func trackBody(t []byte, lrc bool) []byte {
	end := len(t) - 1 // the '?'
	if lrc {
		end--
	}
	if end < 1 {
		return nil
	}
	return t[1:end]
}
