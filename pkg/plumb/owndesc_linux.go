package plumb

import (
	"fmt"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ownDescriptor returns a descriptor of f's pipe or socket for a relay's use alone, non-blocking
// and watched by Go's poller (see end.wait), or nil if there can be none. A pipe is opened
// afresh through /proc/self/fd: a description of its own, whose O_NONBLOCK nobody else sees, so
// the mode of the descriptor the relay was given, and of whoever shares it, stays as it is. A
// socket cannot be opened so; one already non-blocking (trusted to stay so, as splicer.some
// does) is duplicated. The caller closes it when the relay ends.
func ownDescriptor(f *os.File) *os.File {
	rc, err := f.SyscallConn()
	if err != nil {
		return nil
	}
	nfd := -1
	rc.Control(func(fd uintptr) {
		var st unix.Stat_t
		if unix.Fstat(int(fd), &st) != nil {
			return
		}
		fl, err := unix.FcntlInt(fd, unix.F_GETFL, 0)
		if err != nil {
			return
		}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFIFO:
			nfd, err = unix.Open(fmt.Sprintf("/proc/self/fd/%d", fd), fl&unix.O_ACCMODE|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
		case unix.S_IFSOCK:
			if fl&unix.O_NONBLOCK != 0 {
				nfd, err = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0)
			}
		}
		if err != nil {
			nfd = -1
		}
	})
	if nfd < 0 {
		return nil
	}
	// Non-blocking, so os.NewFile hands it to the poller.
	return os.NewFile(uintptr(nfd), f.Name())
}

// rawIO is read(2) or write(2) of p on fd, a polled end's descriptor, which never waits: as
// a raw system call, which does not tell the Go runtime (see end.wait).
func rawIO(trap, fd uintptr, p []byte) (int, error) {
	var ptr unsafe.Pointer
	if len(p) > 0 {
		ptr = unsafe.Pointer(&p[0])
	}
	n, _, e := unix.RawSyscall(trap, fd, uintptr(ptr), uintptr(len(p)))
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}

// readyNow reports whether fd is ready for events, or has hung up or failed, without waiting.
func readyNow(fd int, events int16) bool {
	fds := [1]unix.PollFd{{Fd: int32(fd), Events: events}}
	var ts unix.Timespec
	for {
		n, _, e := unix.RawSyscall6(unix.SYS_PPOLL, uintptr(unsafe.Pointer(&fds[0])), 1, uintptr(unsafe.Pointer(&ts)), 0, 0, 0)
		if e == unix.EINTR {
			continue
		}
		return e != 0 || n > 0
	}
}
