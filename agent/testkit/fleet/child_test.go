package fleet

import (
	"bufio"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/posagent/posagent/agent/testkit/bench"
	"github.com/posagent/posagent/provisioning"
)

// A child's terminals connect to a real mosquitto and report their whole
// install; its progress lines count them, and "close" closes them.
func TestRunCountsConnectsAndInstalls(t *testing.T) {
	m := bench.StartMosquitto(t)
	const n = 3
	in, feed := io.Pipe()
	out, lines := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- Run(Config{URLs: []string{m.URL}, Prefix: "99", First: 10, End: 10 + n, Install: true}, "", in, lines)
		lines.Close()
	}()
	sc := bufio.NewScanner(out)
	var last Totals
	deadline := time.After(30 * time.Second)
	for last.Installed < n {
		select {
		case <-deadline:
			t.Fatalf("after 30 s: %+v", last)
		default:
		}
		if !sc.Scan() {
			t.Fatalf("progress ended at %+v: %v", last, <-done)
		}
		var ms int64
		if _, err := fmt.Sscanf(sc.Text(), "p %d %d %d %d %d", &ms, &last.Connects, &last.Lost, &last.Failed, &last.Installed); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
	}
	if last.Connects != n || last.Lost != 0 || last.Failed != 0 {
		t.Errorf("totals %+v: want %d connects, none lost or failed", last, n)
	}
	if _, err := io.WriteString(feed, "close\n"); err != nil {
		t.Fatal(err)
	}
	var rest []string
	for sc.Scan() {
		rest = append(rest, sc.Text())
	}
	if len(rest) == 0 || rest[len(rest)-1] != "closed" {
		t.Errorf("after close: %q, want it to end with \"closed\"", rest)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// A share beyond MaxPerProcess or an empty broker list is refused before
// anything connects.
func TestRunRefusesBadConfig(t *testing.T) {
	for _, c := range []Config{
		{URLs: []string{"tcp://127.0.0.1:1"}, First: 0, End: MaxPerProcess + 1},
		{URLs: []string{"tcp://127.0.0.1:1"}, First: 5, End: 4},
		{First: 0, End: 1},
	} {
		if err := Run(c, "", strings.NewReader(""), io.Discard); err == nil {
			t.Errorf("Run(%+v) = nil, want an error", c)
		}
	}
}

// Install ends live, once, after every step ran and was done.
func TestInstallEndsLive(t *testing.T) {
	in := Install()
	for i, s := range in[:len(in)-1] {
		if s.State == provisioning.StateLive {
			t.Fatalf("report %d is live before the end", i)
		}
	}
	if last := in[len(in)-1]; last.State != provisioning.StateLive {
		t.Fatalf("last report %+v, want live", last)
	}
}
