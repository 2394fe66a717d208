//go:build !linux || portable

package plumb

// Relay channels and sockets where Linux's F_SETPIPE_SZ and POLLRDHUP are not (the BSDs, macOS,
// and Linux built with the portable tag): a relay's channel is a socketpair(2) whose buffers
// setsockopt(SO_SNDBUF, SO_RCVBUF) makes as large as Linux's relay pipe, and the peer's FIN is
// found with poll(2) and recv(2), as the end of the data before it.

import (
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// relayPipe returns a one-way channel with a large buffer, as Linux's relay pipe: the
// systems' pipes hold 64 KiB at most, and in ssh mode the remote half's control reader writes
// the data it receives into the remote command's input, so a command that reads none of it
// (yes | head) would stop the control channel once that much is waiting.
func relayPipe() (r, w *os.File, err error) {
	// No SOCK_CLOEXEC on every system (macOS): close-on-exec is set after, under ForkLock, so
	// that no command started meanwhile inherits an end (a write end held by another process
	// would keep the remote command from ever reading end of file).
	syscall.ForkLock.RLock()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM, 0)
	if err == nil {
		unix.CloseOnExec(fds[0])
		unix.CloseOnExec(fds[1])
	}
	syscall.ForkLock.RUnlock()
	if err != nil {
		return nil, nil, os.NewSyscallError("socketpair", err)
	}
	unix.Shutdown(fds[0], unix.SHUT_WR)
	unix.Shutdown(fds[1], unix.SHUT_RD)
	unix.SetsockoptInt(fds[1], unix.SOL_SOCKET, unix.SO_SNDBUF, relayBufferSize)
	unix.SetsockoptInt(fds[0], unix.SOL_SOCKET, unix.SO_RCVBUF, relayBufferSize)
	return os.NewFile(uintptr(fds[0]), "|0"), os.NewFile(uintptr(fds[1]), "|1"), nil
}

// relayBufferSize is the buffer each end of a relay channel asks for: Linux's relay pipe's.
const relayBufferSize = 1 << 20

// peerClosedWithin waits up to d for the other half to end its stream on the socket (its FIN),
// and reports whether it did. Without POLLRDHUP the FIN shows only behind the data before it,
// so this reads and drops what the output stage left unread (it has ended: nobody else reads
// the socket) until recv(2) returns the end of the stream or d passes.
func peerClosedWithin(f *os.File, d time.Duration) bool {
	deadline := time.Now().Add(d)
	fd := int(f.Fd())
	buf := make([]byte, 64<<10)
	for {
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		left := max(time.Until(deadline), 0)
		n, err := unix.Poll(fds, int(left/time.Millisecond))
		if err == unix.EINTR {
			continue
		}
		if err != nil || n == 0 {
			return false
		}
		m, _, err := unix.Recvfrom(fd, buf, unix.MSG_DONTWAIT)
		switch {
		case err == unix.EAGAIN || err == unix.EINTR:
		case err != nil || m == 0:
			return true // the end of the stream, or a reset, which ends it too
		}
		if time.Now().After(deadline) {
			return false
		}
	}
}
