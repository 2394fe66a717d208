package plumb

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"
	"golang.org/x/term"
)

// The relay tests hand Copy every kind of descriptor socketpipe can be given as its standard
// input and output (pipe, socketpair, TCP socket, terminal, regular file), blocking or not, and
// check the two promises a relay makes besides moving the bytes intact: a reader is never kept
// from bytes that have arrived, and a writer is never kept from room that is free. Breaking
// either deadlocks request/response clients (git, borg, hg, restic) that sit on the other side.

// relayDeadline bounds every wait for the relay: generous, for a loaded machine, and far below
// the suite's timeout, so a relay that holds a descriptor fails the test instead of hanging it.
const relayDeadline = 10 * time.Second

// Descriptor kinds.
const (
	kindPipe = "pipe"
	kindUnix = "socketpair"
	kindTCP  = "tcp"
	kindPTY  = "pty"
	kindFile = "file"
)

// Blocking modes of the relay's descriptor.
const (
	modeBlocking = "blocking"
	// Made non-blocking after it was wrapped in an *os.File, as a program sharing the open file
	// description (rsync, borg and ssh set O_NONBLOCK on theirs) does behind our back.
	modeNonblock = "nonblocking"
	// Non-blocking before it was wrapped: Go's poller owns it.
	modePollable = "pollable"
)

// fdPair is a descriptor for the relay and the test's own end of the same channel.
type fdPair struct {
	ours, peer *os.File
}

// wrap makes fd an *os.File in the given blocking mode.
func wrap(t testing.TB, fd int, mode, name string) *os.File {
	t.Helper()
	if mode == modePollable {
		if err := unix.SetNonblock(fd, true); err != nil {
			t.Fatal(err)
		}
	}
	f := os.NewFile(uintptr(fd), name)
	if mode == modeNonblock {
		if err := unix.SetNonblock(fd, true); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// rawFd is f's descriptor, leaving its blocking mode alone (Fd would make it blocking).
func rawFd(t testing.TB, f *os.File) int {
	t.Helper()
	rc, err := f.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var fd int
	rc.Control(func(d uintptr) { fd = int(d) })
	return fd
}

// newPair makes a channel of the kind: reading is true when the relay reads ours (the peer
// writes), false when the relay writes ours (the peer reads). The peer end is blocking.
func newPair(t testing.TB, kind, mode string, reading bool) fdPair {
	t.Helper()
	switch kind {
	case kindPipe:
		var p [2]int
		if err := pipeCloexec(p[:]); err != nil {
			t.Fatal(err)
		}
		r, w := p[0], p[1]
		if reading {
			return fdPair{wrap(t, r, mode, "pipe-r"), wrap(t, w, modeBlocking, "peer-w")}
		}
		return fdPair{wrap(t, w, mode, "pipe-w"), wrap(t, r, modeBlocking, "peer-r")}
	case kindUnix:
		sv, err := socketpairCloexec()
		if err != nil {
			t.Fatal(err)
		}
		return fdPair{wrap(t, sv[0], mode, "unix"), wrap(t, sv[1], modeBlocking, "peer-unix")}
	case kindTCP:
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		d, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		a, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		ours := dupConn(t, a)
		peer := dupConn(t, d)
		return fdPair{wrap(t, ours, mode, "tcp"), wrap(t, peer, modeBlocking, "peer-tcp")}
	case kindPTY:
		master, slave, err := pty.Open()
		if err != nil {
			t.Fatal(err)
		}
		defer master.Close()
		defer slave.Close()
		// Raw: the line discipline passes every byte as it comes, and echoes nothing.
		if _, err := term.MakeRaw(int(slave.Fd())); err != nil {
			t.Fatal(err)
		}
		ours, err := unix.FcntlInt(slave.Fd(), unix.F_DUPFD_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		peer, err := unix.FcntlInt(master.Fd(), unix.F_DUPFD_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		return fdPair{wrap(t, ours, mode, "pty-slave"), wrap(t, peer, modeBlocking, "pty-master")}
	}
	t.Fatalf("no pair of kind %s", kind)
	return fdPair{}
}

// dupConn returns a blocking descriptor of c's socket and closes c.
func dupConn(t testing.TB, c net.Conn) int {
	t.Helper()
	f, err := c.(*net.TCPConn).File()
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	fd, err := unix.FcntlInt(f.Fd(), unix.F_DUPFD_CLOEXEC, 0)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	return fd
}

// endOfInput makes the relay's input end: the peer's writing side is shut or closed.
func (p fdPair) endOfInput() {
	if err := unix.Shutdown(int(p.peer.Fd()), unix.SHUT_WR); err != nil {
		p.peer.Close()
	}
}

// startCopy runs Copy(dst.ours, src.ours) in the background. Should the test end first (it
// failed), the cleanup ends the relay's input, reads its output and waits for Copy to return,
// before the descriptors are closed: their numbers must not be reused under a relay that is
// still running.
func startCopy(t testing.TB, dst, src fdPair) (n *atomic.Int64, done <-chan error) {
	n = new(atomic.Int64)
	ch := make(chan error, 1)
	finished := make(chan struct{})
	go func() {
		_, err := Copy(dst.ours, src.ours, n)
		close(finished)
		ch <- err
	}()
	t.Cleanup(func() {
		select {
		case <-finished:
			return
		default:
		}
		src.endOfInput()
		go io.Copy(io.Discard, dst.peer)
		select {
		case <-finished:
		case <-time.After(relayDeadline):
		}
	})
	return n, ch
}

// readWithin reads into b from f in the background and waits up to d.
func readWithin(f *os.File, b []byte, d time.Duration) (int, error, bool) {
	type res struct {
		n   int
		err error
	}
	ch := make(chan res, 1)
	go func() {
		n, err := f.Read(b)
		ch <- res{n, err}
	}()
	select {
	case r := <-ch:
		return r.n, r.err, true
	case <-time.After(d):
		return 0, nil, false
	}
}

// waitReadable waits up to d until f has something to read, without reading (poll(2) does not
// take a pipe's lock, so it sees what a read would be kept from).
func waitReadable(f *os.File, d time.Duration) bool {
	fds := []unix.PollFd{{Fd: int32(f.Fd()), Events: unix.POLLIN}}
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		n, err := unix.Poll(fds, int(time.Until(deadline)/time.Millisecond)+1)
		if err == nil && n > 0 {
			return true
		}
		if err != nil && err != unix.EINTR {
			return false
		}
	}
	return false
}

// relaySettle is how long the test lets the relay go back to waiting for more input after it has
// delivered a byte, before the reader comes for that byte: the order in which a relay that
// waits while holding the output pipe keeps the reader from it. (Waiting on a condition is not
// possible here: the relay's state is inside one system call.)
const relaySettle = 20 * time.Millisecond

var requestKinds = []string{kindPipe, kindUnix, kindTCP, kindPTY}

// TestCopyRequestResponse sends one byte at a time through Copy, each only after the previous
// one was read at the other end: every byte must be readable there, and read, within the
// deadline, for every pair of descriptor kinds and blocking modes.
func TestCopyRequestResponse(t *testing.T) {
	for _, sk := range requestKinds {
		for _, dk := range requestKinds {
			for _, mode := range []string{modeBlocking, modeNonblock, modePollable} {
				t.Run(sk+"-to-"+dk+"/"+mode, func(t *testing.T) {
					t.Parallel()
					src := newPair(t, sk, mode, true)
					dst := newPair(t, dk, mode, false)
					n, done := startCopy(t, dst, src)
					buf := make([]byte, 16)
					for i := 0; i < 4; i++ {
						b := []byte{'a' + byte(i)}
						if _, err := src.peer.Write(b); err != nil {
							t.Fatal(err)
						}
						if !waitReadable(dst.peer, relayDeadline) {
							t.Fatalf("round %d: the byte never arrived (%d relayed)", i, n.Load())
						}
						time.Sleep(relaySettle)
						m, err, ok := readWithin(dst.peer, buf, relayDeadline)
						if !ok {
							stacks := kernelStacks()
							// Release the relay (more input ends its wait) so the test can end.
							src.peer.Write([]byte("x"))
							t.Fatalf("round %d: the byte is there but the reader is kept from it for %v\n%s", i, relayDeadline, stacks)
						}
						if err != nil || m != 1 || buf[0] != b[0] {
							t.Fatalf("round %d: read %q, %v; want %q", i, buf[:m], err, b)
						}
					}
					src.endOfInput()
					select {
					case err := <-done:
						if err != nil {
							t.Fatalf("Copy: %v", err)
						}
					case <-time.After(relayDeadline):
						t.Fatal("Copy did not return at the end of its input")
					}
					if n.Load() != 4 {
						t.Fatalf("counted %d bytes, want 4", n.Load())
					}
				})
			}
		}
	}
}

// TestCopyWriterNotHeld fills Copy's input while nothing reads its output: once the output is
// full, the relay must wait without holding its input, so that the writer's non-blocking writes
// return (EAGAIN once the input is full too) instead of sleeping in the kernel. A client that
// polls both directions (ssh, rsync, any event loop) otherwise never gets to read what the other
// side sent, and both sides wait for each other.
func TestCopyWriterNotHeld(t *testing.T) {
	for _, sk := range requestKinds {
		for _, dk := range []string{kindTCP, kindPipe, kindUnix} {
			for _, mode := range []string{modeBlocking, modeNonblock, modePollable} {
				t.Run(sk+"-to-"+dk+"/"+mode, func(t *testing.T) {
					t.Parallel()
					src := newPair(t, sk, mode, true)
					dst := newPair(t, dk, mode, false)
					_, done := startCopy(t, dst, src)
					w := int(src.peer.Fd())
					if err := unix.SetNonblock(w, true); err != nil {
						t.Fatal(err)
					}
					filled := make(chan error, 1)
					var stop atomic.Bool
					stopped := make(chan struct{})
					t.Cleanup(func() {
						stop.Store(true)
						select {
						case <-stopped:
						case <-time.After(relayDeadline):
						}
					})
					go func() {
						defer close(stopped)
						chunk := make([]byte, 4096)
						var total int
						for again := 0; again < 50 && !stop.Load(); {
							m, err := unix.Write(w, chunk)
							switch {
							case err == unix.EAGAIN:
								// Full; the relay may still be taking some: look again.
								again++
								time.Sleep(2 * time.Millisecond)
							case err != nil:
								filled <- err
								return
							default:
								total += m
								again = 0
							}
							if total > 256<<20 {
								filled <- fmt.Errorf("wrote %d bytes and still no end of room", total)
								return
							}
						}
						filled <- nil
					}()
					select {
					case err := <-filled:
						if err != nil {
							t.Fatal(err)
						}
					case <-time.After(relayDeadline):
						stacks := kernelStacks()
						// Release the relay: read its output, then the writer can go on.
						go io.Copy(io.Discard, dst.peer)
						t.Fatalf("a non-blocking write into the relay's input did not return within %v\n%s", relayDeadline, stacks)
					}
					// Everything written arrives once the output is read.
					unix.SetNonblock(w, false)
					src.endOfInput()
					go io.Copy(io.Discard, dst.peer)
					select {
					case err := <-done:
						if err != nil {
							t.Fatalf("Copy: %v", err)
						}
					case <-time.After(relayDeadline):
						t.Fatal("Copy did not return at the end of its input")
					}
				})
			}
		}
	}
}

// TestCopyBulk moves a few MiB through Copy for every pair of kinds (regular files included) and
// blocking modes, and checks the bytes and the count.
func TestCopyBulk(t *testing.T) {
	const size = 3<<20 + 17
	data := make([]byte, size)
	rand.Read(data)
	sum := sha256.Sum256(data)
	kinds := append(requestKinds[:len(requestKinds):len(requestKinds)], kindFile)
	for _, sk := range kinds {
		for _, dk := range kinds {
			for _, mode := range []string{modeBlocking, modeNonblock, modePollable} {
				t.Run(sk+"-to-"+dk+"/"+mode, func(t *testing.T) {
					t.Parallel()
					var src, dst fdPair
					if sk == kindFile {
						src = filePair(t, mode, data)
					} else {
						src = newPair(t, sk, mode, true)
					}
					if dk == kindFile {
						dst = filePair(t, mode, nil)
					} else {
						dst = newPair(t, dk, mode, false)
					}
					n, done := startCopy(t, dst, src)
					wrote := make(chan struct{})
					t.Cleanup(func() {
						select {
						case <-wrote:
						case <-time.After(relayDeadline):
						}
					})
					if sk == kindFile {
						close(wrote)
					} else {
						go func() {
							defer close(wrote)
							src.peer.Write(data)
							if sk == kindPTY {
								// A terminal has no end of file: its hangup ends the relay's
								// input, and discards what the relay has not read yet.
								for deadline := time.Now().Add(relayDeadline); n.Load() < size && time.Now().Before(deadline); {
									time.Sleep(time.Millisecond)
								}
							}
							src.endOfInput()
						}()
					}
					got := make(chan []byte, 1)
					if dk != kindFile {
						go func() {
							b, _ := readAllFrom(dst.peer, size)
							got <- b
						}()
					}
					select {
					case err := <-done:
						if err != nil {
							t.Fatalf("Copy: %v", err)
						}
					case <-time.After(4 * relayDeadline):
						t.Fatalf("Copy did not end (%d of %d bytes)", n.Load(), size)
					}
					if n.Load() != size {
						t.Fatalf("counted %d bytes, want %d", n.Load(), size)
					}
					var b []byte
					if dk == kindFile {
						b, _ = os.ReadFile(dst.peer.Name())
					} else {
						select {
						case b = <-got:
						case <-time.After(relayDeadline):
							t.Fatal("the output was not all read")
						}
					}
					if sha256.Sum256(b) != sum {
						t.Fatalf("%d bytes arrived, not the %d sent", len(b), size)
					}
				})
			}
		}
	}
}

// filePair is a regular file: with data, for the relay to read; without, for it to write (the
// peer is the same file, opened again, for its name).
func filePair(t testing.TB, mode string, data []byte) fdPair {
	t.Helper()
	p := filepath.Join(t.TempDir(), "data")
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	flags := unix.O_RDONLY
	if data == nil {
		flags = unix.O_WRONLY
	}
	fd, err := unix.Open(p, flags|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	peer, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { peer.Close() })
	return fdPair{wrap(t, fd, mode, p), peer}
}

// readAllFrom reads f to its end, or to want bytes from a terminal (which has no end of file:
// its master reports EIO once the other side is closed).
func readAllFrom(f *os.File, want int) ([]byte, error) {
	var out bytes.Buffer
	buf := make([]byte, 64<<10)
	for out.Len() < want {
		n, err := f.Read(buf)
		out.Write(buf[:n])
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, syscall.EIO) {
				return out.Bytes(), nil
			}
			return out.Bytes(), err
		}
	}
	return out.Bytes(), nil
}

// runLoopback runs c against an in-process Server as loopback does, in the background, with a
// context the test can cancel: a relay that deadlocks is then ended by the test, not by the
// suite's timeout. wait returns the run's outcome.
func runLoopback(t *testing.T, c *Client) (cancel func(), wait func() (*Report, error)) {
	t.Helper()
	toServerR, toServerW, _ := os.Pipe()
	toClientR, toClientW, _ := os.Pipe()
	srv := &Server{Control: toServerR, Reply: toClientW, Stderr: os.Stderr,
		Getenv: func(k string) string {
			if k == "SSH_CONNECTION" {
				return "127.0.0.1 50000 127.0.0.1 22"
			}
			return os.Getenv(k)
		}}
	served := make(chan struct{})
	go func() {
		srv.Run(context.Background())
		toClientW.Close()
		toServerR.Close()
		close(served)
	}()
	if c.LocalAddr == nil {
		c.LocalAddr = &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}
	}
	if c.Stderr == nil {
		c.Stderr = os.Stderr
	}
	ctx, stop := context.WithTimeout(context.Background(), 5*time.Minute)
	type outcome struct {
		rep *Report
		err error
	}
	ran := make(chan outcome, 1)
	go func() {
		rep, err := c.Run(ctx, toClientR, toServerW)
		// The server ends when its control channel does, and kills the remote command.
		toServerW.Close()
		<-served
		toClientR.Close()
		ran <- outcome{rep, err}
	}()
	t.Cleanup(stop)
	return stop, func() (*Report, error) {
		select {
		case o := <-ran:
			return o.rep, o.err
		case <-time.After(2 * time.Minute):
			t.Fatal("the run did not end")
			return nil, nil
		}
	}
}

// clientEnds are socketpipe's standard input and output of one kind, and the test's ends of
// them: it writes to in and reads from out.
type clientEnds struct {
	stdin, stdout *os.File
	in, out       *os.File
}

func newClientEnds(t *testing.T, kind, mode string) clientEnds {
	t.Helper()
	switch kind {
	case kindPipe:
		i := newPair(t, kindPipe, mode, true)
		o := newPair(t, kindPipe, mode, false)
		return clientEnds{i.ours, o.ours, i.peer, o.peer}
	default:
		// One socketpair or one terminal for both, as a tool or a terminal session hands over.
		p := newPair(t, kind, mode, true)
		return clientEnds{p.ours, p.ours, p.peer, p.peer}
	}
}

// relayModes are the ways socketpipe relays its own stdin and stdout: onto the plain socket,
// through -e, and through the SSH session.
var relayModes = []struct {
	name    string
	mode    string
	encrypt bool
}{
	{"plain", "back", false},
	{"e", "back", true},
	{"ssh", "ssh", false},
}

// TestClientRequestResponse drives Client with socketpipe's own stdin and stdout
// (StdinToRemote, as in ssh mode) in every relay mode and with every kind of descriptor: a
// remote command that answers each line must have its answer read before the next line is
// sent, as git's, borg's and hg's protocols do.
func TestClientRequestResponse(t *testing.T) {
	for _, rm := range relayModes {
		for _, kind := range []string{kindPipe, kindUnix, kindPTY} {
			for _, mode := range []string{modeBlocking, modeNonblock, modePollable} {
				t.Run(rm.name+"/"+kind+"/"+mode, func(t *testing.T) {
					t.Parallel()
					ends := newClientEnds(t, kind, mode)
					script := `echo ready; while read x; do echo "got $x"; done; echo bye`
					if kind == kindPTY {
						// A terminal's input ends when it hangs up: nothing can be written to it then.
						script = `echo ready; while read x; do echo "got $x"; done`
					}
					cancel, wait := runLoopback(t, &Client{
						Remote: []string{"sh", "-c", script},
						Stdin:  ends.stdin, Stdout: ends.stdout, StdinToRemote: true,
						Mode: rm.mode, Encrypt: rm.encrypt, Timeout: 20 * time.Second,
					})
					defer cancel()
					answer := func(want string) {
						t.Helper()
						if !waitReadable(ends.out, 30*time.Second) {
							t.Fatalf("no answer %q", want)
						}
						time.Sleep(relaySettle)
						got := make([]byte, 0, len(want))
						buf := make([]byte, 64)
						for len(got) < len(want) {
							n, err, ok := readWithin(ends.out, buf, relayDeadline)
							if !ok {
								cancel()
								t.Fatalf("the answer is there but the reader is kept from it for %v (got %q of %q)", relayDeadline, got, want)
							}
							if err != nil {
								t.Fatalf("reading the answer: %v (got %q of %q)", err, got, want)
							}
							got = append(got, buf[:n]...)
						}
						if string(got) != want {
							t.Fatalf("got %q, want %q", got, want)
						}
					}
					answer("ready\n")
					for i := 0; i < 3; i++ {
						q := fmt.Sprintf("q%d", i)
						if _, err := ends.in.Write([]byte(q + "\n")); err != nil {
							t.Fatal(err)
						}
						answer("got " + q + "\n")
					}
					// The end of the input ends the remote command, whose last words still come.
					endInput(t, ends)
					if kind != kindPTY {
						answer("bye\n")
					}
					rep, err := wait()
					if err != nil {
						t.Fatalf("run: %v", err)
					}
					if st, s := rep.Status(); st != 0 {
						t.Fatalf("status %d (%v)", st, s)
					}
				})
			}
		}
	}
}

// endInput ends socketpipe's stdin: closes the pipe's writer, shuts down the socket's writing
// side, or hangs up the terminal.
func endInput(t *testing.T, ends clientEnds) {
	t.Helper()
	if err := unix.Shutdown(int(ends.in.Fd()), unix.SHUT_WR); err != nil {
		ends.in.Close()
	}
}

// TestClientBothWaysAtOnce sends a few MiB through a remote cat while reading its echo, from
// one thread that polls both of socketpipe's ends, as ssh, rsync and other event loops do: a
// write is made only when poll says there is room, so a relay that holds socketpipe's stdin
// while it waits on the socket puts the client to sleep inside that write, the echo is not
// read, cat stops, and nothing moves again.
func TestClientBothWaysAtOnce(t *testing.T) {
	const size = 8 << 20
	data := make([]byte, size)
	rand.Read(data)
	sum := sha256.Sum256(data)
	for _, rm := range relayModes {
		for _, kind := range []string{kindPipe, kindUnix} {
			for _, mode := range []string{modeBlocking, modeNonblock, modePollable} {
				t.Run(rm.name+"/"+kind+"/"+mode, func(t *testing.T) {
					t.Parallel()
					ends := newClientEnds(t, kind, mode)
					cancel, wait := runLoopback(t, &Client{
						Remote: []string{"cat"},
						Stdin:  ends.stdin, Stdout: ends.stdout, StdinToRemote: true,
						Mode: rm.mode, Encrypt: rm.encrypt, Timeout: 20 * time.Second,
					})
					defer cancel()
					var moved atomic.Int64
					var stop atomic.Bool
					got := make(chan []byte, 1)
					failed := make(chan error, 1)
					stopped := make(chan struct{})
					t.Cleanup(func() {
						// The loop uses the descriptors' numbers: it must be gone before they close.
						stop.Store(true)
						select {
						case <-stopped:
						case <-time.After(time.Minute):
						}
					})
					go func() {
						defer close(stopped)
						b, err := pollBothWays(ends, data, &moved, &stop)
						if err != nil {
							failed <- err
							return
						}
						got <- b
					}()
					var b []byte
					last, lastAt := int64(-1), time.Now()
				watch:
					for {
						select {
						case b = <-got:
							break watch
						case err := <-failed:
							t.Fatal(err)
						case <-time.After(100 * time.Millisecond):
							if m := moved.Load(); m != last {
								last, lastAt = m, time.Now()
							} else if time.Since(lastAt) > relayDeadline {
								cancel() // ends the run, and with it the client's wait
								t.Fatalf("nothing moved for %v, after %d bytes written and read", relayDeadline, m)
							}
						}
					}
					if sha256.Sum256(b) != sum {
						t.Fatalf("%d bytes came back, not the %d sent: %s", len(b), size, firstDifference(b, data))
					}
					rep, err := wait()
					if err != nil {
						t.Fatalf("run: %v", err)
					}
					if st, s := rep.Status(); st != 0 {
						t.Fatalf("status %d (%v)", st, s)
					}
				})
			}
		}
	}
}

// pollBothWays writes data to ends.in and reads ends.out until as much came back, from one
// loop over poll(2) with non-blocking descriptors; moved counts both directions.
func pollBothWays(ends clientEnds, data []byte, moved *atomic.Int64, stop *atomic.Bool) ([]byte, error) {
	in, out := int(ends.in.Fd()), int(ends.out.Fd())
	for _, fd := range []int{in, out} {
		if err := unix.SetNonblock(fd, true); err != nil {
			return nil, err
		}
	}
	var back []byte
	buf := make([]byte, 64<<10)
	sent := 0
	for len(back) < len(data) {
		if stop.Load() {
			return nil, errors.New("stopped")
		}
		fds := []unix.PollFd{{Fd: int32(out), Events: unix.POLLIN}}
		if sent < len(data) {
			fds = append(fds, unix.PollFd{Fd: int32(in), Events: unix.POLLOUT})
		}
		if _, err := unix.Poll(fds, 1000); err != nil && err != unix.EINTR {
			return nil, err
		}
		if len(fds) > 1 && fds[1].Revents != 0 {
			n, err := unix.Write(in, data[sent:min(sent+len(buf), len(data))])
			if err != nil && err != unix.EAGAIN {
				return nil, fmt.Errorf("write: %w", err)
			}
			if n > 0 {
				sent += n
				moved.Add(int64(n))
			}
			if sent == len(data) {
				if in == out {
					unix.Shutdown(in, unix.SHUT_WR)
				} else {
					ends.in.Close()
				}
			}
		}
		if fds[0].Revents != 0 {
			n, err := unix.Read(out, buf)
			if err != nil && err != unix.EAGAIN {
				return nil, fmt.Errorf("read: %w", err)
			}
			if n == 0 && err == nil {
				return back, fmt.Errorf("end of file after %d bytes", len(back))
			}
			if n > 0 {
				back = append(back, buf[:n]...)
				moved.Add(int64(n))
			}
		}
	}
	return back, nil
}

// firstDifference says where got first differs from want.
func firstDifference(got, want []byte) string {
	for i := range min(len(got), len(want)) {
		if got[i] != want[i] {
			at := bytes.Index(want, got[i:i+min(16, len(got)-i)])
			return fmt.Sprintf("first difference at byte %d (what came there was sent at %d)", i, at)
		}
	}
	return fmt.Sprintf("%d bytes came back, %d were sent", len(got), len(want))
}

// kernelStacks returns the kernel stacks of this process's threads that wait in a pipe or a
// splice, for the message of a test that found a relay holding one (needs root).
func kernelStacks() string {
	var b strings.Builder
	tasks, _ := filepath.Glob("/proc/self/task/*")
	for _, task := range tasks {
		st, err := os.ReadFile(task + "/stack")
		if err == nil && (bytes.Contains(st, []byte("pipe")) || bytes.Contains(st, []byte("splice"))) {
			fmt.Fprintf(&b, "thread %s:\n%s", filepath.Base(task), st)
		}
	}
	return b.String()
}
