package bench

import (
	"fmt"
	"os"
	"syscall"
	"testing"
)

// ReservePort returns a TCP port on 127.0.0.1 that stays reserved until the
// test ends, for a server the test starts there, once or again after an
// outage (mosquitto, the embedded broker), or for a client that must find
// nothing listening.
//
// Asking the kernel for a free port and closing it again ("free a moment
// ago") races: any process on the machine may be handed the same port before
// the server binds it, and the test then talks to a stranger. Here the port
// stays bound, with SO_REUSEADDR, by a socket that never listens: a connection
// to it is refused like one to a broker that is down; the kernel never hands
// it to another socket that asks for port 0 or connects out; and a server
// that binds it by number with SO_REUSEADDR (mosquitto, Go's net.Listen)
// shares it, since the reserving socket does not listen.
func ReservePort(t testing.TB) int {
	t.Helper()
	port, err := reservePort(t)
	if err != nil {
		t.Fatalf("testbench: reserve a port: %v", err)
	}
	return port
}

// ReserveAddr is ReservePort as "127.0.0.1:PORT".
func ReserveAddr(t testing.TB) string {
	t.Helper()
	return fmt.Sprintf("127.0.0.1:%d", ReservePort(t))
}

func reservePort(t testing.TB) (int, error) {
	// ForkLock: the socket must be close-on-exec before a child (mosquitto,
	// the agent) can inherit it and keep the port.
	syscall.ForkLock.RLock()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err == nil {
		syscall.CloseOnExec(fd)
	}
	syscall.ForkLock.RUnlock()
	if err != nil {
		return 0, os.NewSyscallError("socket", err)
	}
	f := os.NewFile(uintptr(fd), "testbench-reserved-port")
	if err := syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1); err != nil {
		f.Close()
		return 0, os.NewSyscallError("setsockopt", err)
	}
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		f.Close()
		return 0, os.NewSyscallError("bind", err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		f.Close()
		return 0, os.NewSyscallError("getsockname", err)
	}
	t.Cleanup(func() { f.Close() })
	return sa.(*syscall.SockaddrInet4).Port, nil
}
