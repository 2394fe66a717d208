package plumb

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/socketpipe/socketpipe/internal/seal"
	"github.com/socketpipe/socketpipe/internal/stripe"
	"github.com/socketpipe/socketpipe/internal/wire"
	"github.com/socketpipe/socketpipe/pkg/rendezvous"
	"golang.org/x/sys/unix"
)

// link is how this host's commands reach the other half once the data connection is made.
// In plain mode the commands hold the socket itself and socketpipe moves no data; in relayed
// modes (ssh, -e, --streams above 1) socketpipe copies between the commands' pipes and the
// connection.
type link struct {
	mode string
	sock *os.File // plain mode: the socket, in blocking mode, handed to the commands

	send io.WriteCloser // relayed modes: to the other half; Close ends the stream
	recv io.Reader      // relayed modes: from the other half, io.EOF at the proper end

	conn   net.Conn   // -e, striped: the (first) connection under the relay
	conns  []net.Conn // striped: every connection, in order
	sealed bool       // -e encrypts the data

	sent, received atomic.Int64 // bytes relayed, when socketpipe relays
	shut           atomic.Bool  // plain mode: our FIN is on its way (for the kernel's counts)
	pumped, sunk   atomic.Bool  // plain mode: socketpipe relays into the socket (pump), out of it (drain)
	watch          *watchSet    // the data connections' own watch (watch.go); nil without one

	closeOnce sync.Once
}

// plainLink takes over a proven TCP connection as a file the commands can be given.
func plainLink(mode string, c net.Conn, lv rendezvous.Liveness) (*link, error) {
	rendezvous.Tune(c, lv)
	if _, ok := c.(*net.TCPConn); !ok {
		return nil, fmt.Errorf("data connection is a %T, not TCP", c)
	}
	f, err := rendezvous.HandOver(c)
	if err != nil {
		return nil, err
	}
	// Commands expect blocking descriptors (dd reports "Resource temporarily unavailable"
	// otherwise); Fd puts the descriptor in blocking mode, and this makes sure of it.
	if err := unix.SetNonblock(int(f.Fd()), false); err != nil {
		f.Close()
		return nil, err
	}
	return &link{mode: mode, sock: f}, nil
}

// closeWrite ends the stream towards the other half.
func (l *link) closeWrite() error {
	var err error
	l.closeOnce.Do(func() {
		if l.sock != nil {
			// Through the RawConn, not Fd: a relay may end after Run has closed the socket
			// (Run does not wait for an endless stdin), and must not shut down whatever
			// descriptor took its number.
			var rc syscall.RawConn
			if rc, err = l.sock.SyscallConn(); err == nil {
				if cerr := rc.Control(func(fd uintptr) { err = unix.Shutdown(int(fd), unix.SHUT_WR) }); cerr != nil {
					err = cerr
				}
			}
			l.shut.Store(err == nil)
			if errors.Is(err, unix.ENOTCONN) {
				err = nil
			}
			return
		}
		err = l.send.Close()
	})
	return err
}

// close releases this process's hold on the data connection.
func (l *link) close() {
	l.watch.end()
	if l.sock != nil {
		l.sock.Close()
	}
	l.closeConns()
}

// closeConns closes the connections under a relayed link.
func (l *link) closeConns() {
	if l.conn != nil {
		l.conn.Close()
	}
	for _, c := range l.conns {
		c.Close()
	}
}

// ownCounts reports whether socketpipe's own counts of a plain link are its byte counts: it
// relays both ways, no command holds the socket.
func (l *link) ownCounts() bool { return l.pumped.Load() && l.sunk.Load() }

// relayed reports whether socketpipe copies the data.
func (l *link) relayed() bool { return l.sock == nil }

// ownSocket is for a plain link whose socket no command holds, only socketpipe's relays: it
// makes the socket non-blocking, so that a splice from a pipe into it returns when the socket
// is full instead of waiting there while it holds the pipe, which would keep the pipe's writer
// from the room it has (see relay.go). Copy then splices that direction.
func (l *link) ownSocket() error {
	if l.sock == nil {
		return nil
	}
	rc, err := l.sock.SyscallConn()
	if err != nil {
		return err
	}
	if cerr := rc.Control(func(fd uintptr) { err = unix.SetNonblock(int(fd), true) }); cerr != nil {
		return cerr
	}
	return err
}

// pump copies from r to the other half and ends the stream.
func (l *link) pump(r *os.File) error {
	var err error
	if l.sock != nil {
		l.pumped.Store(true)
		_, err = Copy(l.sock, r, &l.sent)
	} else {
		_, err = copyInto(l.send, newEndIO(r), &l.sent)
	}
	if err != nil && l.conns != nil {
		// A stream that cannot be written fails the whole striped run: closing every
		// stream makes the other half see it now, and its error come back.
		l.closeConns()
	}
	if cerr := l.closeWrite(); err == nil {
		err = cerr
	}
	return l.cause(err)
}

// drain copies what the other half sends to w, until its end of stream.
func (l *link) drain(w *os.File) error {
	if l.sock != nil {
		l.sunk.Store(true)
		_, err := Copy(w, l.sock, &l.received)
		return l.cause(err)
	}
	_, err := copyInto(newEndIO(w), l.recv, &l.received)
	return l.cause(err)
}

// copyInto copies r to w, through the encryption's own buffers when one side is encrypted
// (they read and write in place: no extra copy).
// n counts as the bytes go, so that the progress of a relayed transfer moves while it runs.
func copyInto(w io.Writer, r io.Reader, n *atomic.Int64) (int64, error) {
	switch {
	case isReaderFrom(w):
		return w.(io.ReaderFrom).ReadFrom(countingReader{r, n})
	case isWriterTo(r):
		return r.(io.WriterTo).WriteTo(countingWriter{w, n})
	}
	return copyBuffer(w, r, n)
}

// countingReader adds what is read through it to n.
type countingReader struct {
	r io.Reader
	n *atomic.Int64
}

func (c countingReader) Read(p []byte) (int, error) {
	k, err := c.r.Read(p)
	c.n.Add(int64(k))
	return k, err
}

// countingWriter adds what is written through it to n.
type countingWriter struct {
	w io.Writer
	n *atomic.Int64
}

func (c countingWriter) Write(p []byte) (int, error) {
	k, err := c.w.Write(p)
	c.n.Add(int64(k))
	return k, err
}

func isReaderFrom(w io.Writer) bool {
	switch w.(type) {
	case *sealSender, *frameWriter, *stripe.Writer:
		return true
	}
	return false
}

func isWriterTo(r io.Reader) bool {
	switch r.(type) {
	case *seal.OpenReader, *stripe.Reader:
		return true
	}
	return false
}

// frameWriter sends data frames on the control channel (ssh mode).
type frameWriter struct {
	ctl *wire.Conn
}

func (f *frameWriter) Write(p []byte) (int, error) {
	total := 0
	for len(p) > 0 {
		n := len(p)
		if n > wire.MaxDataFrame {
			n = wire.MaxDataFrame
		}
		if err := f.ctl.WriteFrame(wire.FrameData, p[:n]); err != nil {
			return total, err
		}
		total += n
		p = p[n:]
	}
	return total, nil
}

func (f *frameWriter) Close() error { return f.ctl.WriteFrame(wire.FrameEOF, nil) }

// ReadFrom reads straight into a frame: one read and one write per frame, no extra copy.
func (f *frameWriter) ReadFrom(r io.Reader) (int64, error) {
	buf := make([]byte, wire.FrameHeader+wire.MaxDataFrame)
	var total int64
	for {
		n, err := r.Read(buf[wire.FrameHeader:])
		if n > 0 {
			if werr := f.ctl.WriteFramed(wire.FrameData, buf[:wire.FrameHeader+n]); werr != nil {
				return total, werr
			}
			total += int64(n)
		}
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
}
