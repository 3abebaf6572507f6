// Package devsim emulates the terminal's serial devices behind pseudo-
// terminals, so the real drivers (tarm/serial through drivers/serialport) can
// be tested and demonstrated without hardware: a magstripe reader that swipes
// test cards on command, and an ESC/POS receipt printer that answers status
// requests, runs out of paper on command and keeps each slip as UTF-8 text
// and, with a CJK font installed, as a PNG picture of the paper (agent/sim/slipimage).
//
// Each device publishes its pty slave under a fixed path (a symlink), so a
// device can be "unplugged" (the pty closed, as a USB-serial adapter vanishes)
// and "plugged" back under the same path, as a USB adapter comes back.
package devsim

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"
)

// ErrUnplugged is returned when writing to a device that is unplugged.
var ErrUnplugged = errors.New("devsim: device unplugged")

// line is the device side of a pty pair, published at link.
type line struct {
	link string

	mu     sync.Mutex
	master *os.File
	// slave stays open on the device side: without an open slave the master
	// reads EIO whenever the driver has closed its end, e.g. between reopens.
	slave *os.File
}

func (l *line) plug() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.master != nil {
		return nil
	}
	master, slave, err := pty.Open()
	if err != nil {
		return fmt.Errorf("devsim: pty: %w", err)
	}
	// Raw from the start: a cooked slave echoes what the device sends back
	// to it and holds partial lines until the driver has opened the line.
	if err := makeRaw(slave); err != nil {
		master.Close()
		slave.Close()
		return fmt.Errorf("devsim: pty: %w", err)
	}
	// Deadlines on the master only work once it is non-blocking (and a
	// Close then wakes a pending Read).
	if err := syscall.SetNonblock(int(master.Fd()), true); err != nil {
		master.Close()
		slave.Close()
		return fmt.Errorf("devsim: pty: %w", err)
	}
	// Publish atomically: a driver reopening the link sees the old (dead)
	// slave or the new one, never no link at all.
	tmp := l.link + ".new"
	_ = os.Remove(tmp)
	if err := os.Symlink(slave.Name(), tmp); err != nil {
		master.Close()
		slave.Close()
		return fmt.Errorf("devsim: link: %w", err)
	}
	if err := os.Rename(tmp, l.link); err != nil {
		master.Close()
		slave.Close()
		return fmt.Errorf("devsim: link: %w", err)
	}
	l.master, l.slave = master, slave
	return nil
}

// unplug closes the pty; the driver's next read sees the line hang up.
func (l *line) unplug() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.master == nil {
		return nil
	}
	err := errors.Join(l.master.Close(), l.slave.Close())
	l.master, l.slave = nil, nil
	return err
}

func (l *line) current() *os.File {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.master
}

func (l *line) write(b []byte) error {
	m := l.current()
	if m == nil {
		return ErrUnplugged
	}
	_, err := m.Write(b)
	return err
}

func (l *line) close() error {
	err := l.unplug()
	if rmErr := os.Remove(l.link); rmErr != nil && !errors.Is(rmErr, os.ErrNotExist) {
		err = errors.Join(err, rmErr)
	}
	return err
}

func newLine(link string) (*line, error) {
	abs, err := filepath.Abs(link)
	if err != nil {
		return nil, err
	}
	l := &line{link: abs}
	if err := l.plug(); err != nil {
		return nil, err
	}
	return l, nil
}

// makeRaw puts a tty in raw mode, as cfmakeraw(3) does.
func makeRaw(f *os.File) error {
	fd := int(f.Fd())
	t, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return err
	}
	t.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
	t.Oflag &^= unix.OPOST
	t.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	t.Cflag &^= unix.CSIZE | unix.PARENB
	t.Cflag |= unix.CS8
	t.Cc[unix.VMIN], t.Cc[unix.VTIME] = 1, 0
	return unix.IoctlSetTermios(fd, unix.TCSETS, t)
}
