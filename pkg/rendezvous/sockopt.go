package rendezvous

import (
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// Who writes to the data connection decides Nagle's algorithm (TCP_NODELAY off) on each end.
//
// A command that holds the socket (plain mode: the input command, the remote command) gets the
// kernel's default, Nagle's algorithm on, as raw TCP and the original C socketpipe give it: tar
// writes 10 KiB records, head and most filters 8 KiB, dd whatever bs says, and with the
// algorithm off every such write is a segment of its own. Go turns it off on every connection
// it makes; measured on loopback, `head -c 1GiB /dev/zero` to a remote `dd bs=1M` took 1.5 s
// with it off against 0.5 s with it on, `dd bs=512` four times as long.
//
// socketpipe's own relays (-e on both hosts, the client's standard input in --ssh) turn it off:
// they write what they have in one piece, a frame or all a pipe read returned, and what they
// have is all there is for now, so holding the tail back until the last segment is
// acknowledged gains nothing and, against a peer that delays its acknowledgement, costs up to
// 40 ms. That is why OpenSSH sets TCP_NODELAY on every connection: it too relays whole packets.
//
// A request/response server (git upload-pack, borg serve, hg serve, sftp-server) that holds
// the socket writes an answer in pieces and then waits for the next request: with Nagle's
// algorithm on, the last piece waits for the acknowledgement of the one before, which the
// client's kernel delays because the client has nothing to send until the answer is complete.
// 40 ms a round trip. So when the client relays its own standard input and output for another
// program (--ssh, as git and borg run it), the request asks the remote half to turn the
// algorithm off for the remote command too (wire.Message.NoDelay), which is what the command would
// get from sshd, which writes each piece as it reads it.

// Tune sets the options of a data connection that commands will hold: keepalive as lv says,
// and Nagle's algorithm on (see above).
func Tune(c net.Conn, lv Liveness) error {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return nil
	}
	lv = lv.WithDefaults()
	return errors.Join(
		tc.SetKeepAliveConfig(net.KeepAliveConfig{Enable: true, Idle: lv.KeepIdle, Interval: lv.KeepInterval, Count: lv.KeepCount}),
		tc.SetNoDelay(false))
}

// TuneRelay is Tune for a connection socketpipe writes to itself: Nagle's algorithm off.
func TuneRelay(c net.Conn, lv Liveness) error {
	err := Tune(c, lv)
	if tc, ok := c.(*net.TCPConn); ok {
		err = errors.Join(err, tc.SetNoDelay(true))
	}
	return err
}

// SetNoDelay sets TCP_NODELAY on a data socket already taken out of its net.Conn (plain mode's
// descriptor, which the commands share): on turns Nagle's algorithm off. A socket that is not
// TCP is left alone.
func SetNoDelay(f *os.File, on bool) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	v := 0
	if on {
		v = 1
	}
	cerr := rc.Control(func(fd uintptr) {
		err = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_NODELAY, v)
	})
	if errors.Is(err, syscall.ENOPROTOOPT) || errors.Is(err, syscall.EOPNOTSUPP) {
		err = nil
	}
	return errors.Join(cerr, err)
}

// HandOver takes the socket out of c for commands to hold, and closes c: it returns a
// blocking descriptor that this process's Go poller does not watch. (*net.TCPConn).File
// gives a duplicate that the poller watches, edge-triggered, for as long as it is open: every
// segment that arrived or was acknowledged woke this otherwise idle process, on both hosts, to
// find that nobody waited for it. With a zfs send-like stream on loopback that cost about a
// fifth of the data path.
func HandOver(c net.Conn) (*os.File, error) {
	sc, ok := c.(syscall.Conn)
	if !ok {
		c.Close()
		return nil, fmt.Errorf("data connection is a %T, not a socket", c)
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		c.Close()
		return nil, err
	}
	nfd := -1
	cerr := rc.Control(func(fd uintptr) { nfd, err = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0) })
	c.Close() // the duplicate keeps the socket open
	if err = errors.Join(cerr, err); err != nil {
		return nil, fmt.Errorf("data connection: %w", err)
	}
	// O_NONBLOCK belongs to the socket, not the descriptor: the original, now closed, had it.
	// Commands expect a blocking descriptor, and os.NewFile leaves a blocking one to the caller.
	if err := unix.SetNonblock(nfd, false); err != nil {
		unix.Close(nfd)
		return nil, fmt.Errorf("data connection: %w", err)
	}
	return os.NewFile(uintptr(nfd), "data connection"), nil
}
