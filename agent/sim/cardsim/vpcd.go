package cardsim

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
)

// vpcd slots listen on these loopback ports (Debian's /etc/reader.conf.d/vpcd):
// slot 0 is reader "Virtual PCD 00 00", slot 1 "Virtual PCD 00 01".
const (
	VPCDPort0 = 35963
	VPCDPort1 = 35964
)

// VPCDAddr is the loopback address of vpcd slot 0 or 1.
func VPCDAddr(slot int) string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(VPCDPort0+slot))
}

// ErrRemoved is returned by Plug when a "remove" fault pulled the card.
var ErrRemoved = errors.New("cardsim: card removed by fault")

// Plug inserts the card into a vpcd slot: it dials vpcd at addr (vpcd
// listens; the card connects, which pcscd sees as an insertion) and serves
// vpcd's protocol until ctx ends (the card is removed: the connection closes),
// vpcd hangs up, or a fault removes the card (ErrRemoved).
//
// vpcd protocol: frames of a 2-byte big-endian length and a payload. A 1-byte
// payload is a control command — 00 power off, 01 power on, 02 reset (no
// answer), 04 get ATR (answer the ATR); anything longer is a command APDU
// answered with the response APDU.
//
// ready, when not nil, is called once the connection is up.
func Plug(ctx context.Context, addr string, c *Card, ready func()) error {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("cardsim: dial vpcd %s: %w", addr, err)
	}
	tcp := conn.(*net.TCPConn)
	// vpcd writes length and payload in two writes: with Nagle and delayed
	// ACKs each APDU costs ~48 ms (TESTBENCH.md). NODELAY for our writes,
	// QUICKACK re-armed before every read because Linux clears it.
	if err := tcp.SetNoDelay(true); err != nil {
		conn.Close()
		return err
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	defer conn.Close()
	if ready != nil {
		ready()
	}
	err = serve(tcp, c)
	if ctx.Err() != nil {
		return nil // removal asked for by the caller
	}
	return err
}

func serve(conn *net.TCPConn, c *Card) error {
	hdr := make([]byte, 2)
	for {
		quickAck(conn)
		if _, err := io.ReadFull(conn, hdr); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("cardsim: vpcd read: %w", err)
		}
		n := int(binary.BigEndian.Uint16(hdr))
		msg := make([]byte, n)
		quickAck(conn)
		if _, err := io.ReadFull(conn, msg); err != nil {
			return fmt.Errorf("cardsim: vpcd read: %w", err)
		}
		var out []byte
		switch {
		case n == 1 && msg[0] == 0x04:
			out = c.ATR()
		case n == 1 && (msg[0] == 0x00 || msg[0] == 0x01 || msg[0] == 0x02):
			c.Reset()
			continue
		case n <= 1:
			continue // unknown control: vpcd expects no answer
		default:
			resp, act := c.Process(msg)
			switch act {
			case Mute:
				// A real mute card hangs the reader until its timeout;
				// vpcd has none, so the card drops off instead: pcscd
				// reports the card gone, never a frozen reader.
				return ErrRemoved
			case Remove:
				return ErrRemoved
			}
			out = resp
		}
		frame := make([]byte, 2+len(out))
		binary.BigEndian.PutUint16(frame, uint16(len(out)))
		copy(frame[2:], out)
		if _, err := conn.Write(frame); err != nil {
			return fmt.Errorf("cardsim: vpcd write: %w", err)
		}
	}
}
