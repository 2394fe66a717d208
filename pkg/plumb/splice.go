package plumb

import (
	"os"
	"runtime"
	"sync/atomic"
)

// Copy moves everything from src to dst, as io.Copy does, and returns at src's end of file.
// On Linux, between a pipe and a TCP socket or a regular file it splices (the bytes never
// enter user space); otherwise, and on other systems, it copies through a buffer. Either way it keeps the rules of a relay (see
// relay.go): what arrives is passed on at once, and Copy never waits while holding one of the
// descriptors, so whoever reads dst or writes src is never kept from it. Blocking and
// non-blocking descriptors both work, and their mode is left as it is. The files must stay
// open until Copy returns. n, if not nil, counts the bytes moved as they move.
func Copy(dst, src *os.File, n *atomic.Int64) (int64, error) {
	defer runtime.KeepAlive(src)
	defer runtime.KeepAlive(dst)
	in, err := relayEnd(src)
	if err != nil {
		return 0, err
	}
	defer in.release()
	out, err := relayEnd(dst)
	if err != nil {
		return 0, err
	}
	defer out.release()
	if m, ok, err := splice(out, in, n); ok {
		return m, err
	}
	return copyEnds(out, in, n)
}

// relayEnd describes f for Copy, through a descriptor of the relay's own that Go's poller
// watches when there can be one (ownDescriptor).
func relayEnd(f *os.File) (*end, error) {
	own := ownDescriptor(f)
	if own == nil {
		return newEnd(f)
	}
	e, err := newEnd(own)
	if err != nil {
		own.Close()
		return newEnd(f)
	}
	e.polled, e.own = true, own
	return e, nil
}

// release closes the relay's own descriptor, if it has one.
func (e *end) release() {
	if e.own != nil {
		e.own.Close()
	}
}
