//go:build !linux

package plumb

import (
	"os"

	"golang.org/x/sys/unix"
)

// ownDescriptor: elsewhere a relay waits for the descriptors it was given in poll(2), and no
// end is polled.
func ownDescriptor(f *os.File) *os.File { return nil }

// rawIO and readyNow serve polled ends only, which there are none of here.
func rawIO(trap, fd uintptr, p []byte) (int, error) {
	if trap == unix.SYS_READ {
		return unix.Read(int(fd), p)
	}
	return unix.Write(int(fd), p)
}

func readyNow(fd int, events int16) bool {
	fds := []unix.PollFd{{Fd: int32(fd), Events: events}}
	n, err := unix.Poll(fds, 0)
	return err != nil || n > 0
}
