//go:build !linux || portable

package plumb

// Pipes and sockets where Linux's F_SETPIPE_SZ and POLLRDHUP are not (the BSDs, macOS, and
// Linux built with the portable tag): pipes keep the system's size, and the peer's FIN is found
// with poll(2) and recv(2), as the end of the data before it.

import (
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// setPipeSize does nothing: the system sizes its pipes itself.
func setPipeSize(*os.File, int) {}

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
