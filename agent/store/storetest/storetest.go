// Package storetest is the conformance suite of the agent's small record
// stores: provisioning.Store, which keeps the install's checkpoint, and
// installer.Store, the same two methods for the password lock and the
// confirmed identity. Every backend runs Run, so what the flow and the
// installer rely on is checked once, the same way, for each of them:
//
//   - Load before any Save says provisioning.ErrNoState, and nothing else
//     ever does: a record that exists, even empty or unreadable, is handed
//     back as it is or fails with another error. Taking it for "no state"
//     would start a new install over an old one, and spend one-time codes
//     or repeat a sale.
//   - Save then Load returns exactly what was saved, however long or short
//     the record before it. An empty record round-trips as empty, or its
//     Save is refused and the record before it stays.
//   - Load returns a copy, and Save keeps one: changing either slice later
//     changes nothing stored.
//   - A Save replaces the record whole: a Load running beside it sees the
//     old record or the new one, never a mix, a truncation or "no state"
//     (checked when Backend.Concurrent says the backend may be shared).
//   - A damaged record (Backend.Damage) is not "no state", and a Save
//     replaces it.
//   - A store opened again on the same medium (Backend.Reopen) sees what the
//     first one saved, as the daemon does after a restart.
package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/posagent/posagent/provisioning"
)

// Store is the shape of provisioning.Store and installer.Store.
type Store interface {
	Load() ([]byte, error)
	Save(data []byte) error
}

// Backend is one store under test and what its medium allows.
type Backend struct {
	Store Store
	// Reopen, when set, opens another Store on Store's medium, as a restart
	// does.
	Reopen func() Store
	// Damage, when set, spoils the stored record behind the store's back, as
	// a crash on a careless file system, a failing disk or another program
	// would. It reports false when the medium cannot hold that damage.
	Damage func(Damage) bool
	// Concurrent says Load and Save may be called from several goroutines
	// at once.
	Concurrent bool
}

// Damage is a way a stored record can be spoilt.
type Damage string

const (
	// Empty leaves a record of zero bytes. Load returns it empty, for the
	// caller's decoder to refuse (provisioning.Decode wraps
	// provisioning.ErrCorruptState), or fails.
	Empty Damage = "empty"
	// Garbled leaves Garbage, bytes no Save wrote. Load returns them as they
	// are, or fails.
	Garbled Damage = "garbled"
	// Unreadable leaves something the store cannot read at all (a
	// directory where its file belongs). Load fails.
	Unreadable Damage = "unreadable"
)

// Garbage is what Damage(Garbled) leaves: a record cut in the middle.
var Garbage = []byte("{\"schema\":1,\"step\":\"bind-\x00\xff")

// Run checks open's backends against the semantics in the package comment.
// Every check opens a fresh backend.
func Run(t *testing.T, open func(t *testing.T) Backend) {
	t.Helper()
	t.Run("FirstLoadIsNoState", func(t *testing.T) { firstLoad(t, open(t)) })
	t.Run("RoundTrip", func(t *testing.T) { roundTrip(t, open(t)) })
	t.Run("Copies", func(t *testing.T) { copies(t, open(t)) })
	t.Run("EmptyRecord", func(t *testing.T) { emptyRecord(t, open(t)) })
	t.Run("Reopen", func(t *testing.T) { reopen(t, open(t)) })
	for _, d := range []Damage{Empty, Garbled, Unreadable} {
		t.Run("Damage/"+string(d), func(t *testing.T) { damaged(t, open(t), d) })
	}
	t.Run("ConcurrentReplace", func(t *testing.T) { concurrent(t, open(t)) })
}

// records are the values the checks save: short, long, shorter again (no
// tail of the longer one may survive), binary, and large.
func records() [][]byte {
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<14) // 256 KiB
	return [][]byte{
		[]byte(`{"schema":1,"step":"selftest"}`),
		[]byte(`{"schema":1,"step":"bind-card","card":"622202******0128","attempt":2}`),
		[]byte(`{}`),
		{0x00, 0xff, '\n', 0x00},
		big,
	}
}

// describe names a record by length and start, never in full: records can be
// large, and a backend under test may hold real ones.
func describe(b []byte) string {
	if b == nil {
		return "nil"
	}
	const n = 16
	if len(b) <= n {
		return fmt.Sprintf("%d bytes %q", len(b), b)
	}
	return fmt.Sprintf("%d bytes %q...", len(b), b[:n])
}

func mustSave(t *testing.T, s Store, b []byte) {
	t.Helper()
	if err := s.Save(b); err != nil {
		t.Fatalf("Save(%s) = %v", describe(b), err)
	}
}

func wantLoad(t *testing.T, s Store, want []byte) {
	t.Helper()
	got, err := s.Load()
	if err != nil {
		t.Fatalf("Load = %v, want %s", err, describe(want))
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("Load = %s, want %s", describe(got), describe(want))
	}
}

func firstLoad(t *testing.T, b Backend) {
	for range 2 { // Load does not create a record
		got, err := b.Store.Load()
		if !errors.Is(err, provisioning.ErrNoState) {
			t.Fatalf("Load of a new store = %s, %v; want provisioning.ErrNoState", describe(got), err)
		}
		if len(got) != 0 {
			t.Fatalf("Load of a new store returned %s beside ErrNoState", describe(got))
		}
	}
}

func roundTrip(t *testing.T, b Backend) {
	for _, rec := range records() {
		mustSave(t, b.Store, rec)
		wantLoad(t, b.Store, rec)
		wantLoad(t, b.Store, rec) // Load does not consume
	}
}

func copies(t *testing.T, b Backend) {
	rec := records()[1]
	in := bytes.Clone(rec)
	mustSave(t, b.Store, in)
	in[0] ^= 0xff // the caller reuses its buffer
	wantLoad(t, b.Store, rec)

	out, err := b.Store.Load()
	if err != nil {
		t.Fatal(err)
	}
	for i := range out[:cap(out)] { // the spare capacity too, where an append would write
		out[:cap(out)][i] ^= 0xff
	}
	wantLoad(t, b.Store, rec)
}

// emptyRecord: a Save of nothing is odd but must not make the store look
// new. A store may refuse it; then the record before stays.
func emptyRecord(t *testing.T, b Backend) {
	prev := records()[0]
	for _, empty := range [][]byte{{}, nil} {
		mustSave(t, b.Store, prev)
		if err := b.Store.Save(empty); err != nil {
			wantLoad(t, b.Store, prev)
			continue
		}
		got, err := b.Store.Load()
		if errors.Is(err, provisioning.ErrNoState) {
			t.Fatalf("after Save(%s), Load = ErrNoState: a saved record reads as a new store", describe(empty))
		}
		if err == nil && len(got) != 0 {
			t.Fatalf("after Save(%s), Load = %s", describe(empty), describe(got))
		}
	}
}

func reopen(t *testing.T, b Backend) {
	if b.Reopen == nil {
		t.Skip("the backend has no medium to reopen")
	}
	if _, err := b.Reopen().Load(); !errors.Is(err, provisioning.ErrNoState) {
		t.Fatalf("Load of a reopened new store = %v, want ErrNoState", err)
	}
	recs := records()
	mustSave(t, b.Store, recs[0])
	again := b.Reopen()
	wantLoad(t, again, recs[0])
	mustSave(t, again, recs[1])
	wantLoad(t, b.Store, recs[1])
}

func damaged(t *testing.T, b Backend, d Damage) {
	if b.Damage == nil {
		t.Skip("the backend cannot be damaged from outside")
	}
	recs := records()
	mustSave(t, b.Store, recs[1])
	if !b.Damage(d) {
		t.Skipf("the medium cannot be %s", d)
	}
	got, err := b.Store.Load()
	if errors.Is(err, provisioning.ErrNoState) {
		t.Fatalf("Load of a record left %s = ErrNoState: a damaged record reads as a new store", d)
	}
	switch d {
	case Empty:
		if err == nil && len(got) != 0 {
			t.Fatalf("Load of an empty record = %s", describe(got))
		}
	case Garbled:
		if err == nil && !bytes.Equal(got, Garbage) {
			t.Fatalf("Load of a garbled record = %s, want it as it is (%s)", describe(got), describe(Garbage))
		}
	case Unreadable:
		if err == nil {
			t.Fatalf("Load of an unreadable record = %s, nil; want an error", describe(got))
		}
		return // replacing what cannot be read is the operator's job
	}
	// The installer replaces a corrupt lock record with a closed lock.
	mustSave(t, b.Store, recs[0])
	wantLoad(t, b.Store, recs[0])
}

// concurrent: writers replace the record while readers load it; every Load
// sees one whole record.
func concurrent(t *testing.T, b Backend) {
	if !b.Concurrent {
		t.Skip("the backend is not for concurrent use")
	}
	// Distinct lengths and bytes, so a mix or a truncation shows.
	var recs [][]byte
	for i := range 4 {
		recs = append(recs, bytes.Repeat([]byte{'a' + byte(i)}, 1000*(i+1)))
	}
	whole := func(got []byte) bool {
		for _, r := range recs {
			if bytes.Equal(got, r) {
				return true
			}
		}
		return false
	}
	mustSave(t, b.Store, recs[0])
	const rounds = 50
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for w := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range rounds {
				if err := b.Store.Save(recs[(w+i)%len(recs)]); err != nil {
					errs <- fmt.Errorf("save: %w", err)
					return
				}
			}
		}()
	}
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 2 * rounds {
				got, err := b.Store.Load()
				if err != nil {
					errs <- fmt.Errorf("load during saves: %w", err)
					return
				}
				if !whole(got) {
					errs <- fmt.Errorf("load during saves = %s: not one whole record", describe(got))
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	got, err := b.Store.Load()
	if err != nil || !whole(got) {
		t.Errorf("Load after the Saves = %s, %v", describe(got), err)
	}
}
