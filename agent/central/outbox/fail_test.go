package outbox

import (
	"errors"
	"os"
	"slices"
	"testing"
)

// failNext makes the next call through a seam fail, once, and restores it at
// the end of the test.
func failNext(t *testing.T, seam *func(*os.File, []byte) (int, error), partial int) {
	t.Helper()
	orig := *seam
	t.Cleanup(func() { *seam = orig })
	*seam = func(f *os.File, b []byte) (int, error) {
		*seam = orig
		// A short write: part of the record reaches the file, as with ENOSPC.
		n, _ := orig(f, b[:partial])
		return n, errors.New("injected write error")
	}
}

// TestShortWriteIsUndone: a failed write leaves part of a record in the
// segment. It must be cut off before the next record goes after it, or the
// next Open would find corruption in the middle instead of a clean segment.
func TestShortWriteIsUndone(t *testing.T) {
	dir := t.TempDir()
	o := open(t, dir, Options{})
	mustAppend(t, o, "t", false, "one")
	failNext(t, &writeFile, 10)
	if _, err := o.Append("t", false, []byte("lost")); err == nil {
		t.Fatal("Append succeeded through a failed write")
	}
	if seq := mustAppend(t, o, "t", false, "two"); seq != 2 {
		t.Errorf("seq %d after a failed Append, want 2", seq)
	}
	o.Close()
	o = open(t, dir, Options{})
	if got := seqs(peekAll(t, o)); !slices.Equal(got, []uint64{1, 2}) {
		t.Errorf("after reopen: %v", got)
	}
	if tb := o.Stats().TruncatedBytes; tb != 0 {
		t.Errorf("TruncatedBytes %d: the short write was not undone", tb)
	}
}

// TestFailedRollLeavesNoSegment: a new segment that could not be written is
// removed, and the outbox goes on with the old one.
func TestFailedRollLeavesNoSegment(t *testing.T) {
	dir := t.TempDir()
	o := open(t, dir, Options{})
	failNext(t, &writeFile, 3)
	if _, err := o.Append("t", false, []byte("lost")); err == nil {
		t.Fatal("Append succeeded through a failed write")
	}
	if n := len(segFiles(t, dir)); n != 0 {
		t.Errorf("%d segment files after a failed first Append", n)
	}
	if seq := mustAppend(t, o, "t", false, "one"); seq != 1 {
		t.Errorf("seq %d, want 1", seq)
	}
}

// TestFailedFsyncStopsTheOutbox: after a failed fsync the kernel may have
// dropped the dirty pages and cleared the error, so a retry proves nothing.
// The outbox refuses further use; reopening rescans what is really on disk.
func TestFailedFsyncStopsTheOutbox(t *testing.T) {
	dir := t.TempDir()
	o := open(t, dir, Options{})
	mustAppend(t, o, "t", false, "one")
	orig := syncFile
	t.Cleanup(func() { syncFile = orig })
	syncFile = func(*os.File) error { syncFile = orig; return errors.New("injected EIO") }
	if _, err := o.Append("t", false, []byte("maybe")); !errors.Is(err, ErrClosed) {
		t.Fatalf("Append through a failed fsync = %v, want ErrClosed", err)
	}
	if _, err := o.Append("t", false, []byte("after")); !errors.Is(err, ErrClosed) {
		t.Errorf("Append after a failed fsync = %v, want ErrClosed", err)
	}
	if err := o.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	o = open(t, dir, Options{})
	// Here the page cache kept the record; on a real EIO it may be gone. Either
	// way the seqs are a prefix and the next one continues after them.
	got := seqs(peekAll(t, o))
	if !slices.Equal(got, []uint64{1}) && !slices.Equal(got, []uint64{1, 2}) {
		t.Errorf("after reopen: %v", got)
	}
	if seq := mustAppend(t, o, "t", false, "next"); seq != uint64(len(got)+1) {
		t.Errorf("next seq %d after %v", seq, got)
	}
}
