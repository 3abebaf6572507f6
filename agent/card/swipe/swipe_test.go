package swipe

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/posagent/posagent/agent/sim/devsim"
	"github.com/posagent/posagent/drivers/magstripe"
	"github.com/posagent/posagent/provisioning"
	"github.com/posagent/posagent/provisioning/pan"
)

var now = time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC)

const testPAN = "6217900000000000120"

// line is a fake serial line: Read hands out what the test sent, one chunk
// per read, and blocks until there is some. A nil chunk is a read timeout,
// io.EOF ends the line.
type line struct{ ch chan []byte }

type timeoutErr struct{}

func (timeoutErr) Error() string { return "timeout" }
func (timeoutErr) Timeout() bool { return true }

func newLine() *line { return &line{ch: make(chan []byte, 64)} }

func (l *line) Read(p []byte) (int, error) {
	b, ok := <-l.ch
	if !ok {
		return 0, io.EOF
	}
	if b == nil {
		return 0, timeoutErr{}
	}
	return copy(p, b), nil // tests send chunks smaller than the reader's buffer
}

func (l *line) swipe(p devsim.Profile) { l.ch <- magstripe.MagTek.Encode('0', p.Tracks()...) }

// logBuf is a locked buffer for a slog handler.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func newSource(r io.Reader, log io.Writer) *Source {
	return New(r, Config{Framing: magstripe.MagTek, Now: func() time.Time { return now },
		Log: slog.New(slog.NewTextHandler(log, nil))})
}

var (
	good     = devsim.Profiles["good"]
	chip     = devsim.Profiles["chip"]
	chip6    = devsim.Profile{PAN: testPAN, Name: "ZHANG/SAN", Expiry: "3012", ServiceCode: "620"}
	damaged  = devsim.Profiles["damaged"]
	track2E  = devsim.Profiles["track2"]
	expired  = devsim.Profiles["expired"]
	track1E  = devsim.Profile{PAN: testPAN, Name: "ZHANG/SAN", Expiry: "3012", ServiceCode: "101", Bad: []int{1}}
	padded   = devsim.Profile{PAN: testPAN, Name: "LI /XIAO MING.MR       ", Expiry: "3012", ServiceCode: "101"}
	otherPAN = pan.MustParse("6222020000000000002")
)

// checkGood checks a card read from the "good" profile (or one like it).
func checkGood(t *testing.T, c provisioning.Card, entry provisioning.Entry, name string) {
	t.Helper()
	if c.PAN.Reveal() != testPAN || c.Name != name || c.Expiry != "3012" || c.Entry != entry {
		t.Errorf("card %+v, entry %q", c, c.Entry)
	}
	// Track 2 is field 35's form: no sentinels, discretionary data kept.
	if t2 := c.Track2.Reveal(); !strings.HasPrefix(t2, testPAN+"=3012") || strings.ContainsAny(t2, ";?") || len(t2) != 37 {
		t.Errorf("track 2 not as field 35 wants it")
	}
	if c.Track3.IsZero() || strings.ContainsAny(c.Track3.Reveal(), "+?") {
		t.Error("track 3 missing or with sentinels")
	}
	// Nothing prints the tracks or the full PAN.
	if s := fmt.Sprintf("%v %+v %#v", c, c, c); strings.Contains(s, testPAN) || strings.Contains(s, "=3012") {
		t.Errorf("card prints its data: %s", s)
	}
	if b, err := json.Marshal(c); err != nil || strings.Contains(string(b), testPAN) || strings.Contains(string(b), "=3012") {
		t.Errorf("card marshals its data: %s %v", b, err)
	}
}

func TestReadCard(t *testing.T) {
	ctx := context.Background()
	l := newLine()
	var logs logBuf
	s := newSource(l, &logs)

	// A magstripe card.
	l.swipe(good)
	c, err := s.ReadCard(ctx, provisioning.CardRequest{Purpose: provisioning.PurposeTestSale})
	if err != nil {
		t.Fatal(err)
	}
	checkGood(t, c, provisioning.EntrySwipe, "ZHANG/SAN")

	// Chip cards, service code 2xx and 6xx, go to their chip.
	for _, p := range []devsim.Profile{chip, chip6} {
		l.swipe(p)
		_, err = s.ReadCard(ctx, provisioning.CardRequest{Purpose: provisioning.PurposeTestSale})
		var ce *magstripe.ChipCardError
		if !errors.Is(err, ErrInsertChip) || !errors.As(err, &ce) || ce.ServiceCode != p.ServiceCode {
			t.Fatalf("chip card %s: %v", p.ServiceCode, err)
		}
		if strings.Contains(err.Error(), testPAN) || !strings.Contains(err.Error(), "621790*********0120") {
			t.Errorf("chip error: %v", err)
		}
	}

	// The chip failed (without giving its PAN): the next chip card swiped
	// falls back, once.
	s.MarkChipFailed(pan.PAN{})
	l.swipe(chip)
	if c, err = s.ReadCard(ctx, provisioning.CardRequest{Purpose: provisioning.PurposeTestSale}); err != nil {
		t.Fatal(err)
	}
	checkGood(t, c, provisioning.EntryFallback, "ZHANG/SAN")
	l.swipe(chip)
	if _, err = s.ReadCard(ctx, provisioning.CardRequest{Purpose: provisioning.PurposeTestSale}); !errors.Is(err, ErrInsertChip) {
		t.Fatalf("second fallback allowed: %v", err)
	}

	// The chip of another card failed: this one still goes to its chip;
	// its own failed chip lets it fall back.
	s.MarkChipFailed(otherPAN)
	l.swipe(chip)
	if _, err = s.ReadCard(ctx, provisioning.CardRequest{Purpose: provisioning.PurposeTestSale}); !errors.Is(err, ErrInsertChip) {
		t.Fatalf("fallback for another card's chip: %v", err)
	}
	s.MarkChipFailed(pan.MustParse(testPAN))
	l.swipe(chip6)
	if c, err = s.ReadCard(ctx, provisioning.CardRequest{Purpose: provisioning.PurposeTestSale}); err != nil || c.Entry != provisioning.EntryFallback {
		t.Fatalf("fallback for its own chip: %+v %v", c, err)
	}

	// Unreadable swipes ask for another swipe and name what failed.
	for name, p := range map[string]devsim.Profile{"damaged": damaged, "track 2 unreadable": track2E, "expired": expired} {
		l.swipe(p)
		_, err = s.ReadCard(ctx, provisioning.CardRequest{Purpose: provisioning.PurposeBind})
		var se *magstripe.SwipeError
		if !errors.Is(err, ErrSwipeAgain) || !errors.As(err, &se) || errors.Is(err, ErrInsertChip) {
			t.Fatalf("%s: %v", name, err)
		}
		if strings.Contains(err.Error(), "6217900000") {
			t.Errorf("%s: error shows card digits: %v", name, err)
		}
		if name == "expired" && !errors.Is(err, magstripe.ErrExpired) {
			t.Errorf("expired: %v", err)
		}
	}

	// Garbage, a half frame and timeouts before a good swipe are skipped.
	l.ch <- []byte("\x00\xffnoise")
	l.ch <- nil
	l.ch <- []byte("\x02\x1b%B6217900000000000120^ZH")
	l.ch <- nil
	l.swipe(track1E) // track 1 unreadable: a card without a name
	if c, err = s.ReadCard(ctx, provisioning.CardRequest{Purpose: provisioning.PurposeBind}); err != nil {
		t.Fatal(err)
	}
	checkGood(t, c, provisioning.EntrySwipe, "")

	// Track 1 names are normalised.
	l.swipe(padded)
	if c, err = s.ReadCard(ctx, provisioning.CardRequest{Purpose: provisioning.PurposeBind}); err != nil || c.Name != "LI/XIAO MING" {
		t.Fatalf("name %q: %v", c.Name, err)
	}

	// The logs name each card masked, and nothing of its tracks.
	out := logs.String()
	if !strings.Contains(out, "pan=621790*********0120") || !strings.Contains(out, "entry=fallback") {
		t.Errorf("logs:\n%s", out)
	}
	if strings.Contains(out, testPAN) || strings.Contains(out, "=3012") || strings.Contains(out, "ZHANG") {
		t.Errorf("logs leak card data:\n%s", out)
	}
}

// TestRefusedHook: with Refused set, ReadCard tells of refusals and keeps
// waiting for a card it can use.
func TestRefusedHook(t *testing.T) {
	l := newLine()
	var refused []error
	s := New(l, Config{Framing: magstripe.MagTek, Now: func() time.Time { return now },
		Refused: func(purpose string, err error) {
			if purpose != provisioning.PurposeBind {
				t.Errorf("purpose %q", purpose)
			}
			refused = append(refused, err)
		}})
	l.swipe(chip)
	l.swipe(damaged)
	l.swipe(good)
	c, err := s.ReadCard(context.Background(), provisioning.CardRequest{Purpose: provisioning.PurposeBind})
	if err != nil || c.PAN.Reveal() != testPAN {
		t.Fatalf("%+v %v", c, err)
	}
	if len(refused) != 2 || !errors.Is(refused[0], ErrInsertChip) || !errors.Is(refused[1], ErrSwipeAgain) {
		t.Errorf("refused %v", refused)
	}
}

func TestLineEnds(t *testing.T) {
	l := newLine()
	s := newSource(l, io.Discard)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	l.ch <- nil
	if _, err := s.ReadCard(ctx, provisioning.CardRequest{Purpose: "x"}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
	close(l.ch)
	if _, err := s.ReadCard(context.Background(), provisioning.CardRequest{Purpose: "x"}); !errors.Is(err, ErrLineClosed) {
		t.Errorf("closed line: %v", err)
	}
	// Other line errors are passed on, wrapped.
	s = newSource(io.MultiReader(errReader{}), io.Discard)
	if _, err := s.ReadCard(context.Background(), provisioning.CardRequest{Purpose: "x"}); !errors.Is(err, errBroken) {
		t.Errorf("broken line: %v", err)
	}
}

var errBroken = errors.New("broken")

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errBroken }

// TestLinesFraming reads through a reader that sends one track per line.
func TestLinesFraming(t *testing.T) {
	f, err := magstripe.FramingByName("lines")
	if err != nil {
		t.Fatal(err)
	}
	l := newLine()
	s := New(l, Config{Framing: f, Now: func() time.Time { return now }})
	l.ch <- f.Encode(0, good.Tracks()...)
	c, err := s.ReadCard(context.Background(), provisioning.CardRequest{Purpose: "x"})
	if err != nil {
		t.Fatal(err)
	}
	checkGood(t, c, provisioning.EntrySwipe, "ZHANG/SAN")
}
