package stripe

import (
	"bytes"
	"errors"
	"io"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// frames builds one connection's bytes: data(seq, n) frames and end frames.
type frames []byte

func (f frames) data(seq uint64, n int) frames {
	var h [headerSize]byte
	putHeader(h[:], typeData, seq, uint64(n))
	f = append(f, h[:]...)
	return append(f, bytes.Repeat([]byte{byte(seq)}, n)...)
}

func (f frames) header(typ byte, seq, value uint64) frames {
	var h [headerSize]byte
	putHeader(h[:], typ, seq, value)
	return append(f, h[:]...)
}

func (f frames) end(chunks, total uint64) frames { return f.header(typeEnd, chunks, total) }

// hold is a connection that delivers its bytes, then never ends (until
// closed): a peer that stays silent.
func hold(b []byte) io.Reader {
	pr, pw := io.Pipe()
	go func() {
		pw.Write(b)
	}()
	return pr
}

// readAll reads r to its end, failing the test if that takes long: every
// condition these tests build is decidable, so none may hang.
func readAll(t *testing.T, r *Reader) ([]byte, error) {
	t.Helper()
	type result struct {
		b   []byte
		err error
	}
	done := make(chan result, 1)
	go func() {
		var out bytes.Buffer
		_, err := r.WriteTo(&out)
		done <- result{out.Bytes(), err}
	}()
	select {
	case res := <-done:
		return res.b, res.err
	case <-time.After(10 * time.Second):
		t.Fatal("the reader hung")
		return nil, nil
	}
}

// wantStreamError checks err is a *StreamError naming stream k of n (any, when
// k is 0: which of two connections breaks the rule is a race) that
// wraps target and says what.
func wantStreamError(t *testing.T, err error, k, n int, target error, what string) {
	t.Helper()
	var se *StreamError
	if !errors.As(err, &se) {
		t.Fatalf("error %v (%T), want a *StreamError", err, err)
	}
	if (k != 0 && se.Stream != k) || se.Streams != n {
		t.Fatalf("error %q names stream %d of %d, want %d of %d", err, se.Stream, se.Streams, k, n)
	}
	if target != nil && !errors.Is(err, target) {
		t.Fatalf("error %q is not %q", err, target)
	}
	if !strings.Contains(err.Error(), what) {
		t.Fatalf("error %q does not say %q", err, what)
	}
}

// Each broken stream fails, naming the connection that broke it, without
// waiting on connections that stay open.
func TestReaderFailures(t *testing.T) {
	var f frames
	for _, c := range []struct {
		name   string
		conns  []io.Reader
		stream int
		target error
		what   string
	}{
		{"ConnectionEndsWithoutEndFrame",
			[]io.Reader{bytes.NewReader(f.data(0, 10).end(2, 20)), bytes.NewReader(f.data(1, 10))},
			2, ErrEndedEarly, "stream 2 of 2: connection ended before its end frame"},
		{"ConnectionCutInAHeader",
			[]io.Reader{bytes.NewReader(f.data(0, 10)[:5])},
			1, ErrEndedEarly, "ended before its end frame"},
		{"ConnectionCutInAChunk",
			[]io.Reader{bytes.NewReader(f.data(0, 10)[:20]), hold(nil)},
			1, ErrEndedEarly, "ended before its end frame"},
		{"EndFramesDisagreeOnChunks",
			[]io.Reader{bytes.NewReader(f.data(0, 10).end(1, 10)), bytes.NewReader(f.end(2, 10))},
			0, ErrBadFrame, "another said"},
		{"EndFramesDisagreeOnBytes",
			[]io.Reader{bytes.NewReader(f.data(0, 10).end(1, 10)), bytes.NewReader(f.end(1, 11))},
			0, ErrBadFrame, "another said"},
		{"EndFrameDisagreesWithTheData",
			[]io.Reader{bytes.NewReader(f.data(0, 10).end(1, 11))},
			1, ErrBadFrame, "got 1 chunks, 10 bytes"},
		{"DuplicateOnOneConnection",
			[]io.Reader{bytes.NewReader(f.data(0, 10).data(0, 10).end(1, 10))},
			1, ErrBadFrame, "chunk 0 after chunk 0"},
		{"DuplicateAcrossConnections",
			[]io.Reader{hold(f.data(0, 10).data(1, 10)), hold(f.data(1, 10))},
			0, ErrBadFrame, "chunk 1 came twice"},
		{"OutOfOrderOnOneConnection",
			[]io.Reader{bytes.NewReader(f.data(1, 10).data(0, 10).end(2, 20)), hold(nil)},
			1, ErrBadFrame, "chunk 0 after chunk 1"},
		{"GapAtTheEnd",
			[]io.Reader{bytes.NewReader(f.data(0, 5).data(2, 5).end(3, 15)), bytes.NewReader(f.end(3, 15))},
			0, ErrBadFrame, "chunk 1 is missing"},
		{"GapWhileConnectionsStayOpen",
			[]io.Reader{hold(f.data(1, 10)), hold(f.data(2, 10))},
			0, ErrBadFrame, "chunk 0 is missing"},
		{"ChunkBeyondTheEnd",
			[]io.Reader{bytes.NewReader(f.end(1, 10)), hold(f.data(0, 10).data(1, 10))},
			2, ErrBadFrame, "chunk 1 of a stream of 1 chunks"},
		{"EndFrameBeforeItsOwnChunks",
			[]io.Reader{bytes.NewReader(f.data(3, 10).end(2, 20)), hold(nil)},
			1, ErrBadFrame, "end frame says 2 chunks after chunk 3"},
		{"GarbageHeader",
			[]io.Reader{hold(nil), bytes.NewReader(f.header(9, 0, 10))},
			2, ErrBadFrame, "unknown frame type 9"},
		{"EmptyChunk",
			[]io.Reader{bytes.NewReader(f.header(typeData, 0, 0))},
			1, ErrBadFrame, "has length 0"},
		{"ChunkOverTheLimit",
			[]io.Reader{bytes.NewReader(f.header(typeData, 0, MaxChunk+1))},
			1, ErrBadFrame, "has length 1048577"},
		{"HugeLength",
			[]io.Reader{bytes.NewReader(f.header(typeData, 0, 1<<63))},
			1, ErrBadFrame, "not 1 to 1048576"},
		{"BytesAfterTheEndFrame",
			[]io.Reader{bytes.NewReader(append(f.end(0, 0), 0))},
			1, ErrBadFrame, "bytes after the end frame"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := NewReader(c.conns)
			defer r.Close()
			got, err := readAll(t, r)
			if err == nil {
				t.Fatalf("read %d bytes and the end, want an error", len(got))
			}
			wantStreamError(t, err, c.stream, len(c.conns), c.target, c.what)
			// The error sticks.
			if _, again := r.Read(make([]byte, 1)); again != err {
				t.Fatalf("Read after the error: %v, want %v", again, err)
			}
		})
	}
}

// failing is a connection whose writes fail after ok of them, closing
// failed when they start to; its writes wait a while for gate, if any.
type failing struct {
	mu     sync.Mutex
	ok     int
	closed bool
	gate   chan struct{}
	failed chan struct{}
}

var errWrite = errors.New("connection reset by test")

func (f *failing) Write(p []byte) (int, error) {
	if f.gate != nil {
		select {
		case <-f.gate:
		case <-time.After(10 * time.Millisecond):
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.ok == 0 {
		if f.failed != nil {
			close(f.failed)
			f.failed = nil
		}
		return 0, errWrite
	}
	f.ok--
	return len(p), nil
}

func (f *failing) Close() error {
	f.mu.Lock()
	f.closed = true
	f.mu.Unlock()
	return nil
}

// A connection's write error fails the Writer: the call and Close return it,
// naming the connection, and Close closes every connection.
func TestWriterError(t *testing.T) {
	for _, path := range []string{"Write", "ReadFrom"} {
		t.Run(path, func(t *testing.T) {
			// The good connection waits a while for the bad one to
			// fail, so that it does not carry the whole stream alone.
			tripped := make(chan struct{})
			good, bad := &failing{ok: 1 << 30, gate: tripped}, &failing{ok: 2, failed: tripped}
			w := newWriter([]io.WriteCloser{good, bad}, 4096)
			var err error
			if path == "Write" {
				buf := make([]byte, 10000)
				for range 100 {
					if _, err = w.Write(buf); err != nil {
						break
					}
				}
			} else {
				_, err = w.ReadFrom(&pattern{n: 1 << 20})
			}
			wantStreamError(t, err, 2, 2, errWrite, "stream 2 of 2: connection reset by test")
			if _, again := w.Write([]byte("x")); again != err {
				t.Fatalf("Write after the error: %v, want %v", again, err)
			}
			if cerr := w.Close(); cerr != err {
				t.Fatalf("Close: %v, want %v", cerr, err)
			}
			if !good.closed || !bad.closed {
				t.Fatal("Close left a connection open")
			}
		})
	}
}

type failingSource struct{}

var errSource = errors.New("source broke")

func (failingSource) Read([]byte) (int, error) { return 0, errSource }

// A source's read error fails the stream: the peer sees no end frames.
func TestSourceError(t *testing.T) {
	ws, rs := pipes(t, "pipe", 2)
	w := NewWriter(ws)
	r := NewReader(rs)
	defer r.Close()
	go func() {
		w.Write([]byte("some bytes first"))
		if _, err := w.ReadFrom(io.MultiReader(&pattern{n: 100000}, failingSource{})); err != errSource {
			t.Errorf("ReadFrom: %v, want %v", err, errSource)
		}
		if err := w.Close(); err != errSource {
			t.Errorf("Close: %v, want %v", err, errSource)
		}
	}()
	_, err := readAll(t, r)
	if !errors.Is(err, ErrEndedEarly) {
		t.Fatalf("reading a stream whose source failed: %v, want %v", err, ErrEndedEarly)
	}
}

// A connection cut mid-stream (closed under the writer, so no end frame)
// fails both sides, the reader naming it.
func TestCutConnection(t *testing.T) {
	ws, rs := pipes(t, "tcp", 4)
	w := NewWriter(ws)
	r := NewReader(rs)
	defer r.Close()
	sent := make(chan error, 1)
	go func() {
		_, err := w.ReadFrom(&pattern{n: 4 << 20})
		if err == nil {
			ws[2].(*net.TCPConn).CloseWrite()
			err = w.Close()
		}
		sent <- err
	}()
	_, err := readAll(t, r)
	wantStreamError(t, err, 3, 4, nil, "stream 3 of 4:")
	if werr := <-sent; werr == nil {
		t.Fatal("the writer of a cut connection succeeded")
	}
}

// Close ends a Reader's goroutines, even with every connection silent.
func TestReaderCloseEndsGoroutines(t *testing.T) {
	before := runtime.NumGoroutine()
	var f frames
	conns := []io.Reader{hold(f.data(1, 10)), hold(nil), hold(f.data(0, 10))}
	r := NewReader(conns)
	if n, err := r.Read(make([]byte, 100)); n != 10 || err != nil {
		t.Fatalf("Read: %d, %v; want 10, nil", n, err)
	}
	if err := r.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, err := r.Read(make([]byte, 1)); err == nil {
		t.Fatal("Read after Close succeeded")
	}
	settle(t, before)
}

// settle waits for the goroutine count to fall back to before.
func settle(t *testing.T, before int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines left running, %d before:\n%s",
				runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// slow delays every write on one connection.
type slow struct {
	io.WriteCloser
	delay time.Duration
}

func (s slow) Write(p []byte) (int, error) {
	time.Sleep(s.delay)
	return s.WriteCloser.Write(p)
}

// One slow connection of four holds nothing back: the stream completes, the
// slow one carries less, and the reader never holds more than its window
// (plus the one chunk it needs next).
func TestSlowConnection(t *testing.T) {
	const window = 2 << 20
	ws, rs := pipes(t, "tcp", 4)
	ws[1] = slow{ws[1], 20 * time.Millisecond}
	w := newWriter(ws, 64<<10)
	r := newReader(rs, window)
	defer r.Close()
	var most int
	stop := make(chan struct{})
	var sampled sync.WaitGroup
	sampled.Go(func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(time.Millisecond):
			}
			r.mu.Lock()
			most = max(most, r.buffered)
			r.mu.Unlock()
		}
	})
	const n = 32 << 20
	go func() {
		w.ReadFrom(&pattern{n: n})
		w.Close()
	}()
	h := &countWriter{}
	if _, err := readAllInto(r, h); err != nil {
		t.Fatal(err)
	}
	close(stop)
	sampled.Wait()
	if h.n != n {
		t.Fatalf("received %d bytes, want %d", h.n, n)
	}
	if limit := window + MaxChunk; most > limit {
		t.Fatalf("the reader held %d bytes out of order, more than %d", most, limit)
	}
}

type countWriter struct{ n int }

func (c *countWriter) Write(p []byte) (int, error) { c.n += len(p); return len(p), nil }

func readAllInto(r *Reader, w io.Writer) (int64, error) { return r.WriteTo(w) }
