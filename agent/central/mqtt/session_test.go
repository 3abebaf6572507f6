package mqtt_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/posagent/posagent/agent/central/mqtt"
)

func TestNextSessionCountsStartsAndRefusesCorruptFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "mqtt-session")
	for want := uint64(1); want <= 3; want++ {
		got, err := mqtt.NextSession(path)
		if err != nil || got != want {
			t.Fatalf("NextSession = %d, %v; want %d", got, err, want)
		}
	}
	for _, body := range []string{"", "x\n", "0\n"} {
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := mqtt.NextSession(path); !errors.Is(err, mqtt.ErrCorruptSession) {
			t.Errorf("NextSession on %q = %v, want mqtt.ErrCorruptSession", body, err)
		}
	}
}

func TestStale(t *testing.T) {
	for _, c := range []struct {
		p, newest mqtt.Presence
		want      bool
	}{
		{mqtt.Presence{State: mqtt.Offline, Session: 3}, mqtt.Presence{Session: 4}, true},
		{mqtt.Presence{State: mqtt.Offline, Session: 4}, mqtt.Presence{Session: 4}, false},
		{mqtt.Presence{State: mqtt.Online, Session: 3}, mqtt.Presence{Session: 4}, false},
		{mqtt.Presence{State: mqtt.Offline}, mqtt.Presence{Session: 4}, false},
		{mqtt.Presence{State: mqtt.Offline, Session: 3}, mqtt.Presence{}, false},
	} {
		if got := mqtt.Stale(c.p, c.newest); got != c.want {
			t.Errorf("Stale(%+v, %+v) = %v", c.p, c.newest, got)
		}
	}
}
