//go:build linux && !portable

package plumb

// Linux's fast paths for pipes and sockets: fcntl(F_SETPIPE_SZ) sizes a pipe, poll(POLLRDHUP)
// sees the peer's FIN without reading.

import (
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// relayPipe returns a pipe with a large buffer, so a relay moves big chunks per system call.
func relayPipe() (r, w *os.File, err error) {
	r, w, err = os.Pipe()
	if err == nil {
		unix.FcntlInt(w.Fd(), unix.F_SETPIPE_SZ, 1<<20)
	}
	return r, w, err
}

// peerClosedWithin waits up to d for the other half to end its stream on the socket (its FIN),
// without reading any data, and reports whether it did.
func peerClosedWithin(f *os.File, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for {
		fds := []unix.PollFd{{Fd: int32(f.Fd()), Events: unix.POLLRDHUP}}
		left := time.Until(deadline)
		if left < 0 {
			left = 0
		}
		n, err := unix.Poll(fds, int(left/time.Millisecond))
		if err == unix.EINTR {
			continue
		}
		return err == nil && n > 0 && fds[0].Revents&(unix.POLLRDHUP|unix.POLLHUP|unix.POLLERR) != 0
	}
}
