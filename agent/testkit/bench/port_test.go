package bench

import (
	"errors"
	"net"
	"syscall"
	"testing"
)

// A reserved port refuses connections, is never handed out for port 0, and
// takes a server that binds it by number, again after that server stopped.
func TestReservePort(t *testing.T) {
	addr := ReserveAddr(t)
	_, port, _ := net.SplitHostPort(addr)
	if c, err := net.Dial("tcp", addr); !errors.Is(err, syscall.ECONNREFUSED) {
		if c != nil {
			c.Close()
		}
		t.Fatalf("dial a reserved port = %v, want connection refused", err)
	}
	// The kernel hands out other ports while the reservation holds.
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for range 2000 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		if _, p, _ := net.SplitHostPort(l.Addr().String()); p == port {
			t.Fatalf("port %s handed out while reserved", port)
		}
	}
	for round := range 2 {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatalf("round %d: a server cannot bind the reserved port: %v", round, err)
		}
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("round %d: dial the server: %v", round, err)
		}
		c.Close()
		l.Close()
	}
}
