package report

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestNextSessionCountsStartsAndRefusesCorruptFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "mqtt-session")
	for want := uint64(1); want <= 3; want++ {
		got, err := NextSession(path)
		if err != nil || got != want {
			t.Fatalf("NextSession = %d, %v; want %d", got, err, want)
		}
	}
	for _, body := range []string{"", "x\n", "0\n"} {
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := NextSession(path); !errors.Is(err, ErrCorruptSession) {
			t.Errorf("NextSession on %q = %v, want ErrCorruptSession", body, err)
		}
	}
}

func TestStale(t *testing.T) {
	for _, c := range []struct {
		p, newest Presence
		want      bool
	}{
		{Presence{State: Offline, Session: 3}, Presence{Session: 4}, true},
		{Presence{State: Offline, Session: 4}, Presence{Session: 4}, false},
		{Presence{State: Online, Session: 3}, Presence{Session: 4}, false},
		{Presence{State: Offline}, Presence{Session: 4}, false},
		{Presence{State: Offline, Session: 3}, Presence{}, false},
	} {
		if got := Stale(c.p, c.newest); got != c.want {
			t.Errorf("Stale(%+v, %+v) = %v", c.p, c.newest, got)
		}
	}
}
