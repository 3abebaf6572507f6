package mqtttest

import (
	"fmt"
	"os"
	"strings"
	"testing"
)

// Subscriber client ids differ within a process and name the process, so
// two test binaries on one broker do not take each other's over.
func TestSubscriberIDsUnique(t *testing.T) {
	a, b := subscriberID(), subscriberID()
	if a == b {
		t.Fatalf("two subscribers share the client id %q", a)
	}
	pid := fmt.Sprintf("-%d-", os.Getpid())
	for _, id := range []string{a, b} {
		if !strings.Contains(id, pid) {
			t.Errorf("client id %q does not name the process (pid %d)", id, os.Getpid())
		}
		if len(id) > 23 {
			t.Errorf("client id %q is longer than the 23 characters MQTT 3.1.1 brokers must accept", id)
		}
	}
}
