package plumb

import (
	"errors"
	"io"
	"os"
	"runtime"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"
	"golang.org/x/term"
)

// A relay stands between a client and the data connection, and a client that talks
// request/response (git, borg, hg, restic) waits for each answer before it sends more. So a
// relay obeys two rules, on every kind of descriptor, blocking or not:
//
//   - it never waits inside a system call that holds the other end: a splice(2) into a pipe
//     holds the pipe's lock until it returns, and the pipe's reader cannot take the bytes already
//     there; a splice out of a pipe holds it while the socket takes the data, and the pipe's
//     writer cannot write into the room it has. All waiting happens in poll(2), which holds
//     nothing.
//   - it passes on what it has at once: every read returns what has arrived, and all of it is
//     written before the next read.
//
// Descriptors may be non-blocking, or made so at any time by a program sharing them (rsync,
// borg and ssh set O_NONBLOCK on theirs): every read, write and splice handles EAGAIN by
// waiting in poll(2) for the descriptor it concerns.

// relayBuffer is the size of the buffer a relay copies through when it does not splice.
const relayBuffer = 256 << 10

// endKind is what a descriptor is, as far as a relay cares.
type endKind int

const (
	endOther endKind = iota // a character device, ...
	endPipe
	endFile     // a regular file: never waits for a peer
	endInet     // a TCP (or other non-unix) socket
	endUnix     // a unix socket: the kernel copies its data in any case
	endTerminal // a terminal: its output may wait (flow control, a master nobody reads)
)

// end is one descriptor of a relay, used by one goroutine at a time.
type end struct {
	f        *os.File
	rc       syscall.RawConn
	fd       int // for poll(2) and the kind; every read, write and splice goes through rc
	kind     endKind
	nonblock bool // O_NONBLOCK when the relay started
	// polled: f is watched by Go's poller (a descriptor of the relay's own, ownDescriptor), so
	// waiting for it parks the goroutine instead of a thread in poll(2).
	polled bool
	own    *os.File // f when it is the relay's own descriptor, closed by release

	// The current read or write: its arguments and results, and callbacks made once, so
	// that a relay allocates nothing per system call.
	p                       []byte
	n                       int
	err                     error
	readFn, writeFn, waitFn func(uintptr) bool
	waitEvents              int16
	waited                  bool
}

// newEnd describes f without changing its mode (f.Fd would make it blocking, under the feet of
// whoever shares it).
func newEnd(f *os.File) (*end, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return nil, err
	}
	e := &end{f: f, rc: rc, fd: -1}
	if err := rc.Control(func(fd uintptr) { e.fd = int(fd) }); err != nil {
		return nil, err
	}
	var st unix.Stat_t
	if err := unix.Fstat(e.fd, &st); err != nil {
		return nil, &os.PathError{Op: "fstat", Path: f.Name(), Err: err}
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFIFO:
		e.kind = endPipe
	case unix.S_IFREG:
		e.kind = endFile
	case unix.S_IFSOCK:
		e.kind = endInet
		if sa, err := unix.Getsockname(e.fd); err == nil {
			if _, ok := sa.(*unix.SockaddrUnix); ok {
				e.kind = endUnix
			}
		}
	case unix.S_IFCHR:
		if term.IsTerminal(e.fd) {
			e.kind = endTerminal
		}
	}
	if fl, err := unix.FcntlInt(uintptr(e.fd), unix.F_GETFL, 0); err == nil {
		e.nonblock = fl&unix.O_NONBLOCK != 0
	}
	e.readFn = func(fd uintptr) bool {
		if e.polled {
			e.n, e.err = rawIO(unix.SYS_READ, fd, e.p)
			return true
		}
		e.n, e.err = unix.Read(int(fd), e.p)
		return true
	}
	e.writeFn = func(fd uintptr) bool {
		if e.polled {
			e.n, e.err = rawIO(unix.SYS_WRITE, fd, e.p)
			return true
		}
		e.n, e.err = unix.Write(int(fd), e.p)
		return true
	}
	// Asked again after the poller's wait: done. Asked first: wait only if not ready now
	// (the poller reports edges, and this one may have come before the wait began).
	e.waitFn = func(fd uintptr) bool {
		if e.waited || readyNow(int(fd), e.waitEvents) {
			return true
		}
		e.waited = true
		return false
	}
	return e, nil
}

// read reads what has arrived, waiting in poll(2) when there is nothing yet. A terminal that
// hung up (EIO) is the end of its input, as it is for ssh.
func (e *end) read(p []byte) (int, error) {
	for {
		e.p = p
		cerr := e.rc.Read(e.readFn)
		n, err := e.n, e.err
		e.p = nil
		if cerr != nil {
			return 0, cerr
		}
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN:
			e.wait(unix.POLLIN)
			continue
		case err == unix.EIO && e.kind == endTerminal:
			return 0, io.EOF
		case err != nil:
			return 0, &os.PathError{Op: "read", Path: e.f.Name(), Err: err}
		case n == 0:
			return 0, io.EOF
		}
		return n, nil
	}
}

// write writes all of p, waiting in poll(2) whenever the descriptor is full.
func (e *end) write(p []byte) (int, error) {
	total := 0
	for len(p) > 0 {
		e.p = p
		cerr := e.rc.Write(e.writeFn)
		n, err := e.n, e.err
		e.p = nil
		if cerr != nil {
			return total, cerr
		}
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN:
			e.wait(unix.POLLOUT)
			continue
		case err != nil:
			return total, &os.PathError{Op: "write", Path: e.f.Name(), Err: err}
		}
		total += n
		p = p[n:]
	}
	return total, nil
}

// endIO is an *os.File read and written by the relay's rules, for the relays that go through
// user space (-e, ssh mode): a read returns what has arrived, a write writes all, EAGAIN waits.
type endIO struct{ e *end }

// newEndIO wraps f; if f cannot be described, f itself is returned.
func newEndIO(f *os.File) io.ReadWriter {
	e, err := newEnd(f)
	if err != nil {
		return f
	}
	return endIO{e}
}

func (r endIO) Read(p []byte) (int, error) {
	n, err := r.e.read(p)
	runtime.KeepAlive(r.e.f)
	return n, err
}

func (r endIO) Write(p []byte) (int, error) {
	n, err := r.e.write(p)
	runtime.KeepAlive(r.e.f)
	return n, err
}

// copyEnds copies in to out through a buffer until in's end of file.
func copyEnds(out, in *end, n *atomic.Int64) (int64, error) {
	buf := make([]byte, relayBuffer)
	var total int64
	for {
		r, err := in.read(buf)
		if r > 0 {
			w, werr := out.write(buf[:r])
			total += int64(w)
			if n != nil {
				n.Add(int64(w))
			}
			if werr != nil {
				return total, werr
			}
		}
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
}

// copyBuffer copies src to dst as io.Copy does, counting into n.
func copyBuffer(dst io.Writer, src io.Reader, n *atomic.Int64) (int64, error) {
	buf := make([]byte, relayBuffer)
	var total int64
	for {
		r, rerr := src.Read(buf)
		if r > 0 {
			w, werr := dst.Write(buf[:r])
			total += int64(w)
			if n != nil {
				n.Add(int64(w))
			}
			if werr == nil && w < r {
				werr = io.ErrShortWrite
			}
			if werr != nil {
				return total, werr
			}
		}
		if rerr == io.EOF {
			return total, nil
		}
		if rerr != nil {
			return total, rerr
		}
	}
}

// wait waits until e is ready for events (POLLIN or POLLOUT), or has hung up or failed. A
// polled end waits in Go's poller, and its reads, writes and splices, which never wait, are
// raw system calls. A goroutine blocked in poll(2) holds a thread whose P the runtime's monitor
// takes back and hands on after 20 µs, and every system call the runtime is told of wakes the
// monitor from its sleep: with a relay each way (git or borg through --ssh) that was a futex
// wake-up, a stopped thread and the monitor's 20 µs sleeps per message, 5.4 context switches
// a round trip against socat's 2, and the round trip a quarter slower than socat's.
func (e *end) wait(events int16) {
	if !e.polled {
		waitReady(e.fd, events)
		return
	}
	e.waitEvents, e.waited = events, false
	if events == unix.POLLIN {
		e.rc.Read(e.waitFn)
	} else {
		e.rc.Write(e.waitFn)
	}
	e.waited = false
}

// waitReady waits until fd is ready for events, or has hung up or failed (the next call on it
// then reports it).
func waitReady(fd int, events int16) {
	fds := [1]unix.PollFd{{Fd: int32(fd), Events: events}}
	for {
		n, err := unix.Poll(fds[:], -1)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil || n > 0 {
			return
		}
	}
}
