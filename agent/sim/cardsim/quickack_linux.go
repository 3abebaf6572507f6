package cardsim

import (
	"net"
	"syscall"
)

// quickAck re-arms TCP_QUICKACK, which Linux clears after it fires, so vpcd's
// two-part writes are acknowledged at once instead of after ~40 ms.
func quickAck(c *net.TCPConn) {
	raw, err := c.SyscallConn()
	if err != nil {
		return
	}
	_ = raw.Control(func(fd uintptr) {
		_ = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_QUICKACK, 1)
	})
}
