package bench

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// A test holding the cluster shares it with others until it takes a node
// down; from then on no other test gets the cluster until it ends. Tests of
// one top-level test share its hold, so a subtest's Kill does not wait for
// its own parent.
func TestClusterLockSharedThenExclusive(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cluster")

	probe := func(how int) error {
		f, err := os.OpenFile(clusterLockPath(dir), os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		return syscall.Flock(int(f.Fd()), how|syscall.LOCK_NB)
	}
	t.Run("holder", func(t *testing.T) {
		l := acquireClusterLock(t, dir)
		if err := probe(syscall.LOCK_SH); err != nil {
			t.Fatalf("another test could not share the cluster: %v", err)
		}
		if err := probe(syscall.LOCK_EX); !errors.Is(err, syscall.EWOULDBLOCK) {
			t.Fatalf("another test could take the cluster from a holder: %v", err)
		}
		var sub *clusterLock
		t.Run("subtest", func(t *testing.T) { sub = acquireClusterLock(t, dir) })
		if sub != l {
			t.Fatal("a subtest got a hold of its own")
		}
		if err := l.exclusive(); err != nil {
			t.Fatal(err)
		}
		if err := probe(syscall.LOCK_SH); !errors.Is(err, syscall.EWOULDBLOCK) {
			t.Fatalf("another test could share the cluster while a node is down: %v", err)
		}
	})
	if err := probe(syscall.LOCK_EX); err != nil {
		t.Fatalf("the hold outlived its test: %v", err)
	}
}
