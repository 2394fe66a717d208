//go:build linux && !portable

package plumb

// Copy's fast path on Linux: splice(2), between a pipe and a socket or file, or through a pipe
// of the relay's own, with poll(2) for all the waiting.

import (
	"errors"
	"os"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// spliceChunk is how much one splice(2) call asks to move.
const spliceChunk = 1 << 20

// splice moves everything from in to out with splice(2) where that is safe, and reports
// whether it did; if not, Copy copies instead.
func splice(out, in *end, n *atomic.Int64) (int64, bool, error) {
	switch {
	case in.kind == endPipe && spliceFromPipe(out), out.kind == endPipe && spliceIntoPipe(in):
		m, err := spliceDirect(out, in, n)
		return m, true, err
	case spliceVia(in) && spliceVia(out):
		m, err := spliceThroughPipe(out, in, n)
		return m, true, err
	}
	return 0, false, nil
}

// spliceFromPipe reports whether a splice from a pipe into e is safe: it holds the pipe until
// e has taken the bytes, so e must never wait for a peer. A blocking socket can (its send
// buffer is full until the other side reads): it is copied to instead, unless it is
// non-blocking, as the link makes a socket no command shares (link.ownSocket).
func spliceFromPipe(e *end) bool {
	switch e.kind {
	case endPipe, endFile:
		return true
	case endInet:
		return e.nonblock
	}
	return false
}

// spliceIntoPipe reports whether a splice from e into a pipe is safe: it holds the pipe while it
// reads e. A blocking socket is spliced from only once poll(2) says it has data (splicer.some),
// so the read takes what is there without waiting; a non-blocking one says EAGAIN when there
// is nothing. A unix socket's data is copied by the kernel in any
// case, and two splices per chunk cost more than a read and a write (rsync -W of 1 GiB through
// --ssh: 2.9 s spliced, 1.9 s copied).
func spliceIntoPipe(e *end) bool {
	switch e.kind {
	case endPipe, endFile, endInet:
		return true
	}
	return false
}

// spliceVia reports whether e may be spliced through a pipe of the relay's own, when neither end
// is a pipe. Waiting inside those splices holds only that pipe, which nobody else uses; a
// terminal takes small writes, and a unix socket pays no better for splicing (see above).
func spliceVia(e *end) bool {
	return e.kind == endFile || e.kind == endInet || e.kind == endOther
}

// spliceDirect splices from in to out, one of which is a pipe.
func spliceDirect(out, in *end, n *atomic.Int64) (int64, error) {
	s := newSplicer(out, in)
	var total int64
	for {
		m, err := s.some(spliceChunk)
		if err != nil {
			if total == 0 && cannotSplice(err) {
				return copyEnds(out, in, n)
			}
			return total, err
		}
		if m == 0 {
			return total, nil
		}
		total += int64(m)
		if n != nil {
			n.Add(int64(m))
		}
	}
}

// spliceThroughPipe splices from in to out through a pipe of its own.
func spliceThroughPipe(out, in *end, n *atomic.Int64) (int64, error) {
	pr, pw, err := os.Pipe()
	if err != nil {
		return copyEnds(out, in, n)
	}
	defer pr.Close()
	defer pw.Close()
	unix.FcntlInt(pr.Fd(), unix.F_SETPIPE_SZ, spliceChunk)
	mid, err := newEnd(pr)
	if err != nil {
		return copyEnds(out, in, n)
	}
	midW, err := newEnd(pw)
	if err != nil {
		return copyEnds(out, in, n)
	}
	mid.polled, midW.polled = true, true // os.Pipe's descriptors are the poller's
	fill, empty := newSplicer(midW, in), newSplicer(out, mid)
	var total int64
	for {
		m, err := fill.some(spliceChunk)
		if err != nil {
			if total == 0 && cannotSplice(err) {
				return copyEnds(out, in, n)
			}
			return total, err
		}
		if m == 0 {
			return total, nil
		}
		for m > 0 {
			w, err := empty.some(m)
			if err != nil {
				if total == 0 && cannotSplice(err) {
					// out takes no splice (a device, say): empty the pipe by hand, then copy.
					w, err := copyN(out, mid, m, n)
					total += w
					if err != nil {
						return total, err
					}
					t, err := copyEnds(out, in, n)
					return total + t, err
				}
				return total, err
			}
			m -= w
			total += int64(w)
			if n != nil {
				n.Add(int64(w))
			}
		}
	}
}

// splicer moves data from in to out with splice(2). Its callbacks are made once, so that a
// relay allocates nothing per system call.
type splicer struct {
	in, out      *end
	max          int
	inFd         uintptr
	m            int64
	err, outErr  error
	outer, inner func(uintptr) bool
	// drained: the last splice moved less than it asked, so in has most likely nothing more
	// for now, and the next one waits in poll(2) first rather than try and fail.
	drained bool
}

func newSplicer(out, in *end) *splicer {
	s := &splicer{in: in, out: out}
	raw := in.polled && out.polled // a non-blocking splice between polled ends: see end.wait
	s.inner = func(o uintptr) bool {
		if raw {
			m, _, e := unix.RawSyscall6(unix.SYS_SPLICE, s.inFd, 0, o, 0, uintptr(s.max), unix.SPLICE_F_MOVE|unix.SPLICE_F_NONBLOCK)
			s.m, s.err = int64(m), nil
			if e != 0 {
				s.m, s.err = 0, e
			}
			return true
		}
		m, err := unix.Splice(int(s.inFd), nil, int(o), nil, s.max, unix.SPLICE_F_MOVE|unix.SPLICE_F_NONBLOCK)
		s.m, s.err = int64(m), err
		return true
	}
	s.outer = func(i uintptr) bool {
		s.inFd = i
		s.outErr = s.out.rc.Write(s.inner)
		return true
	}
	return s
}

// some moves up to max bytes with one splice(2), which never waits for a socket: one to write
// is non-blocking (spliceFromPipe), one to read is non-blocking or polled for data first; it is
// non-blocking on the pipes as well (SPLICE_F_NONBLOCK), so that all the waiting is in poll(2).
// A socket found non-blocking is trusted to stay so. It returns 0 at in's end of file.
//
// A request/response client's relay wakes once per message, so the system calls per wake-up
// are its cost: after a splice that took all there was, the next waits for in first instead of
// failing with EAGAIN; an EAGAIN right after in was ready is out being full, so only then is
// out waited for. A message is one poll(2) and one splice(2) each way (it was a splice that
// failed and two polls more: --ssh's round trip 14 % slower than socat's).
func (s *splicer) some(max int) (int, error) {
	in, out := s.in, s.out
	inReady := false
	for {
		if !inReady && (s.drained || in.kind == endInet && !in.nonblock) {
			in.wait(unix.POLLIN)
			inReady = true
		}
		s.max = max
		if err := in.rc.Read(s.outer); err != nil {
			return 0, err
		}
		if s.outErr != nil {
			return 0, s.outErr
		}
		switch err := s.err; {
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN:
			// in had nothing yet, or out is full. Wait for one at a time (polling both at
			// once would spin while one is ready and the other not): in first, unless it
			// was ready for this very splice.
			if inReady {
				out.wait(unix.POLLOUT)
				inReady = false
			} else {
				in.wait(unix.POLLIN)
				inReady = true
			}
			s.drained = false
			continue
		case err != nil:
			return 0, &os.SyscallError{Syscall: "splice", Err: err}
		}
		s.drained = int(s.m) < max
		return int(s.m), nil
	}
}

func cannotSplice(err error) bool {
	return errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS)
}

// copyN copies exactly m bytes from in to out through a buffer.
func copyN(out, in *end, m int, n *atomic.Int64) (int64, error) {
	buf := make([]byte, min(m, relayBuffer))
	var total int64
	for m > 0 {
		r, err := in.read(buf[:min(m, len(buf))])
		if err != nil {
			return total, err
		}
		w, err := out.write(buf[:r])
		total += int64(w)
		if n != nil {
			n.Add(int64(w))
		}
		if err != nil {
			return total, err
		}
		m -= r
	}
	return total, nil
}
