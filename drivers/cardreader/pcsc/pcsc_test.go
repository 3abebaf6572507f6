//go:build cgo

package pcsc_test

// Integration tests against the real pcscd that scripts/pcsc-bench.sh starts,
// with agent/sim/cardsim cards plugged into vsmartcard-vpcd's two slots. pcscd is
// one per machine and vpcd has two slots, so every PC/SC test lives in this
// one package and runs sequentially (no t.Parallel).

import (
	"bytes"
	"context"
	"errors"
	"github.com/posagent/posagent/provisioning"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/posagent/posagent/agent/card/emv"
	"github.com/posagent/posagent/agent/sim/cardsim"
	"github.com/posagent/posagent/agent/testkit/bench"
	"github.com/posagent/posagent/drivers/cardreader"
	"github.com/posagent/posagent/drivers/cardreader/pcsc"
)

var slotName = [2]string{"Virtual PCD 00 00", "Virtual PCD 00 01"}

const cardsDir = "../../../testdata/cards"

// service returns a service on the running pcscd, or skips (fails with
// POSAGENT_REQUIRE_BENCH=1) when there is none.
func service(t testing.TB) *pcsc.Service {
	t.Helper()
	bench.NeedPCSC(t)
	svc := pcsc.New()
	t.Cleanup(func() { svc.Close() })
	if ok, err := svc.Init(); !ok {
		t.Fatalf("pcscd: %v", err)
	}
	names, err := svc.Readers(context.Background())
	if err != nil || !slices.Contains(names, slotName[0]) || !slices.Contains(names, slotName[1]) {
		t.Fatalf("vpcd readers missing: %q %v (vsmartcard-vpcd installed? pcscd restarted after?)", names, err)
	}
	for _, n := range slotName {
		waitPresent(t, svc, n, false) // a previous test's card must be out
	}
	return svc
}

func fixedTerminal() emv.Terminal {
	t := emv.DefaultTerminal()
	t.Now = func() time.Time { return time.Date(2026, 11, 27, 8, 30, 0, 0, time.UTC) }
	t.Rand = bytes.NewReader(bytes.Repeat([]byte{0x11, 0x22, 0x33, 0x44}, 64))
	return t
}

func newCard(t testing.TB, profile string, edit func(*cardsim.Profile)) *cardsim.Card {
	t.Helper()
	c, err := cardsim.Open(filepath.Join(cardsDir, profile+".yaml"), edit)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func waitPresent(t testing.TB, svc cardreader.Reader, name string, present bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := cardreader.WaitPresent(ctx, svc, name, present); err != nil {
		t.Fatalf("%s present=%v: %v", name, present, err)
	}
}

// plug inserts card into a vpcd slot and returns a function that removes it
// and waits until pcscd has seen the removal.
func plug(t testing.TB, svc cardreader.Reader, slot int, card *cardsim.Card, wait bool) (remove func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- cardsim.Plug(ctx, cardsim.VPCDAddr(slot), card, nil) }()
	removed := false
	remove = func() {
		if removed {
			return
		}
		removed = true
		cancel()
		if err := <-done; err != nil && !errors.Is(err, cardsim.ErrRemoved) {
			t.Errorf("cardsim: %v", err)
		}
		waitPresent(t, svc, slotName[slot], false)
	}
	t.Cleanup(remove)
	if wait {
		waitPresent(t, svc, slotName[slot], true)
	}
	return remove
}

func read(t testing.TB, svc cardreader.Reader, slot int) (emv.Result, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := svc.Connect(ctx, slotName[slot])
	if err != nil {
		return emv.Result{}, err
	}
	defer c.Close()
	return emv.Read(ctx, c, fixedTerminal(), emv.Transaction{Amount: 1})
}

// TestReadEveryProfile reads each shipped profile through pcscd exactly as
// on the device and expects the same result as the in-process read of the
// same card (which agent/card/emv's tests pin field by field).
func TestReadEveryProfile(t *testing.T) {
	svc := service(t)
	files, _ := filepath.Glob(filepath.Join(cardsDir, "*.yaml"))
	if len(files) < 8 {
		t.Fatalf("%d profiles", len(files))
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".yaml")
		t.Run(name, func(t *testing.T) {
			want, wantErr := emv.Read(context.Background(), newCard(t, name, nil).AsCard("inproc"),
				fixedTerminal(), emv.Transaction{Amount: 1})
			remove := plug(t, svc, 0, newCard(t, name, nil), true)
			defer remove()
			got, err := read(t, svc, 0)
			if wantErr != nil {
				if !errors.Is(err, emv.ErrCardData) || !errors.Is(wantErr, emv.ErrCardData) {
					t.Fatalf("err %v, in-process %v", err, wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Card() != want.Card() {
				t.Errorf("through pcscd %+v\nin-process    %+v", got.Card(), want.Card())
			}
			if got.Transmissions != want.Transmissions {
				t.Errorf("APDUs through pcscd %d, in-process %d", got.Transmissions, want.Transmissions)
			}
			t.Logf("%s: %s %s %s, %d APDUs", name, got.PAN, got.AID, got.Name, got.Transmissions)
		})
	}
}

// TestCardPulledMidRead: the card leaves after the first record.
func TestCardPulledMidRead(t *testing.T) {
	svc := service(t)
	card := newCard(t, "debit", func(p *cardsim.Profile) {
		p.Faults = []cardsim.Fault{{At: "read_record", N: 2, Kind: "remove"}}
	})
	plug(t, svc, 0, card, true)
	_, err := read(t, svc, 0)
	if !errors.Is(err, cardreader.ErrCardRemoved) || !cardreader.Retryable(err) {
		t.Fatalf("pulled card: %v, want ErrCardRemoved", err)
	}
	if strings.Contains(err.Error(), "6222021234567890128") {
		t.Fatal("PAN in error")
	}
}

// TestInsertRemoveInsert watches the events and shows the old handle dead
// after re-insertion until Reconnect.
func TestInsertRemoveInsert(t *testing.T) {
	svc := service(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	known, err := cardreader.Snapshot(ctx, svc, slotName[1])
	if err != nil || known[0].Present {
		t.Fatalf("%+v %v", known, err)
	}
	remove := plug(t, svc, 1, newCard(t, "credit", nil), false)
	got := make(chan string, 1)
	go func() {
		n, err := cardreader.WaitInserted(ctx, svc, slotName[1])
		if err != nil {
			t.Error(err)
		}
		got <- n
	}()
	if n := <-got; n != slotName[1] {
		t.Fatalf("inserted into %q", n)
	}
	c, err := svc.Connect(ctx, slotName[1])
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if !bytes.Equal(c.ATR(), []byte{0x3B, 0x80, 0x01, 0x81}) {
		t.Errorf("ATR % X", c.ATR())
	}
	remove()
	_, err = c.Transmit(ctx, []byte{0x00, 0xA4, 0x04, 0x00, 0x05, 0xA0, 0x00, 0x00, 0x03, 0x33, 0x00})
	if !errors.Is(err, cardreader.ErrCardRemoved) && !errors.Is(err, cardreader.ErrNoCard) {
		t.Fatalf("after removal: %v", err)
	}
	plug(t, svc, 1, newCard(t, "credit", nil), true)
	if _, err := c.Transmit(ctx, []byte{0x00, 0xA4, 0x04, 0x00, 0x05, 0xA0, 0x00, 0x00, 0x03, 0x33, 0x00}); err == nil {
		t.Log("note: old handle worked after re-insertion")
	}
	if err := c.(*pcsc.Card).Reconnect(ctx); err != nil {
		t.Fatalf("reconnect: %v", err)
	}
	r, err := cardreader.Exchange(ctx, c, cardreader.Command{INS: 0xA4, P1: 4, Data: []byte{0xA0, 0, 0, 3, 0x33}, Ne: 256})
	if err != nil || !r.SW.OK() {
		t.Fatalf("after reconnect: %v %v", r.SW, err)
	}
}

// TestTwoSlotsPicksInserted: two cards sit in the two slots; the installer
// swaps the one in slot 1 for the settlement card; the source reads slot 1.
func TestTwoSlotsPicksInserted(t *testing.T) {
	svc := service(t)
	// The test's own plugging and waiting use a second context, so the
	// source's pending wait on svc is the only user of svc.
	ctl := pcsc.New()
	t.Cleanup(func() { ctl.Close() }) // after the plugs' cleanups, which use it
	plug(t, ctl, 0, newCard(t, "foreign", nil), true)
	removeCredit := plug(t, ctl, 1, newCard(t, "credit", nil), true)
	waiting := &waitSignal{Reader: svc, blocked: make(chan struct{})}
	src := &emv.Source{Reader: waiting, Terminal: fixedTerminal()}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	type out struct {
		aid string
		err error
	}
	done := make(chan out, 1)
	go func() {
		c, err := src.ReadCard(ctx, provisioning.CardRequest{Purpose: "bind settlement card"})
		done <- out{c.AID, err}
	}()
	// Both slots are full, so the source waits for an insertion; swap only
	// once it is waiting, or a swap seen as "one card present" would race.
	select {
	case <-waiting.blocked:
	case o := <-done:
		t.Fatalf("source returned before any insertion: %+v", o)
	}
	removeCredit()
	plug(t, ctl, 1, newCard(t, "debit", nil), false)
	o := <-done
	if o.err != nil || o.aid != emv.AIDDebit {
		t.Fatalf("%+v", o)
	}
}

// waitSignal reports the first WaitChange that actually waits (known states,
// not a snapshot): the test seam that makes the swap deterministic.
type waitSignal struct {
	cardreader.Reader
	once    sync.Once
	blocked chan struct{}
}

func (w *waitSignal) WaitChange(ctx context.Context, known []cardreader.ReaderState) ([]cardreader.ReaderState, error) {
	if len(known) > 0 && !known[0].Unknown {
		w.once.Do(func() { close(w.blocked) })
	}
	return w.Reader.WaitChange(ctx, known)
}

// TestPcscdRestart kills the bench's pcscd mid-session and starts it again:
// the same Service recovers without being re-created. It runs only when
// scripts/pcsc-bench.sh started pcscd (it never kills a pcscd it does not own).
func TestPcscdRestart(t *testing.T) {
	svc := service(t)
	dir := os.Getenv("PCSC_BENCH_DIR")
	if dir == "" {
		dir = "/tmp/posagent-pcsc-bench"
	}
	if _, err := os.Stat(filepath.Join(dir, "pcscd.pid")); err != nil {
		t.Skip("pcscd not started by scripts/pcsc-bench.sh: not restarting somebody else's daemon")
	}
	benchScript := func(arg string) {
		t.Helper()
		out, err := exec.Command("bash", "../../../scripts/pcsc-bench.sh", arg).CombinedOutput()
		if err != nil {
			t.Fatalf("pcsc-bench.sh %s: %v\n%s", arg, err, out)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	remove := plug(t, svc, 0, newCard(t, "debit", nil), true)
	if _, err := read(t, svc, 0); err != nil {
		t.Fatal(err)
	}
	benchScript("down")
	t.Cleanup(func() { // leave the bench up for the next test even when this one fails
		exec.Command("bash", "../../../scripts/pcsc-bench.sh", "up").Run()
	})
	remove() // the card's vpcd socket died with pcscd
	if _, err := svc.Readers(ctx); !errors.Is(err, cardreader.ErrServiceUnavailable) {
		t.Fatalf("with pcscd down: %v, want ErrServiceUnavailable", err)
	}
	// A waiter during the outage sees the readers gone, not an error.
	st, err := svc.WaitChange(ctx, []cardreader.ReaderState{{Name: slotName[0]}})
	if err != nil || !st[0].Gone {
		t.Fatalf("wait during outage: %+v %v", st, err)
	}
	benchScript("up")
	for {
		names, err := svc.Readers(ctx)
		if err == nil && slices.Contains(names, slotName[0]) {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("readers never came back: %v", err)
		}
		// pcscd registers its readers right after its socket appears; wait
		// for that condition through the service itself.
		cardreader.Snapshot(ctx, svc, slotName[0])
	}
	plug(t, svc, 0, newCard(t, "debit", nil), true)
	res, err := read(t, svc, 0)
	if err != nil || res.AID != emv.AIDDebit {
		t.Fatalf("after restart: %v", err)
	}
}

// BenchmarkReadThroughPCSC reports, per profile, the APDUs one read
// exchanges through pcscd (the minimum for the profile's AFL; see agent/card/emv's
// table) and the time per APDU (TCP_QUICKACK keeps it well under 1 ms).
func BenchmarkReadThroughPCSC(b *testing.B) {
	svc := service(b)
	for _, name := range []string{"debit", "no-pse", "t0-quirky"} {
		b.Run(name, func(b *testing.B) {
			card := newCard(b, name, nil)
			plug(b, svc, 0, card, true)
			n := 0
			for b.Loop() {
				res, err := read(b, svc, 0)
				if err != nil {
					b.Fatal(err)
				}
				n = res.Transmissions
			}
			b.ReportMetric(float64(n), "apdus/read")
			b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*n), "µs/apdu")
		})
	}
}

// TestUnknownReaderWaitsNotSpins: waiting on a reader that does not exist
// reports it gone once, then blocks until the deadline.
func TestUnknownReaderWaitsNotSpins(t *testing.T) {
	svc := service(t)
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	st, err := svc.WaitChange(ctx, []cardreader.ReaderState{{Name: "No Such Reader"}})
	if err != nil || !st[0].Gone {
		t.Fatalf("%+v %v", st, err)
	}
	if _, err := svc.WaitChange(ctx, st); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("second wait: %v", err)
	}
	ctx2, cancel2 := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel2()
	if err := cardreader.WaitPresent(ctx2, svc, "No Such Reader", true); !errors.Is(err, cardreader.ErrNoReader) {
		t.Fatalf("WaitPresent: %v", err)
	}
}

// TestWaitChangeEndsWhenCancelledAnyTime: a wait whose context ends at any
// moment — before the PC/SC call blocks, as it starts, or during it — ends.
// A cancel that lands before SCardGetStatusChange blocks is lost in
// pcsc-lite, so an unbounded wait then hung for ever (found as an
// insert-or-swipe read that never returned after the swipe won).
func TestWaitChangeEndsWhenCancelledAnyTime(t *testing.T) {
	svc := service(t)
	known, err := cardreader.Snapshot(context.Background(), svc, slotName[0])
	if err != nil {
		t.Fatal(err)
	}
	for i := range 200 {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() {
			_, err := svc.WaitChange(ctx, known)
			done <- err
		}()
		// From no delay at all to 2 ms: the cancel falls on every side of
		// the call's start.
		time.Sleep(time.Duration(i%20) * 100 * time.Microsecond)
		cancel()
		select {
		case err := <-done:
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("wait %d ended with %v, want context.Canceled", i, err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("wait %d did not end 10 s after its context was cancelled", i)
		}
	}
}
