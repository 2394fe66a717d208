package stripe

import (
	"errors"
	"io"
	"math"
	"math/bits"
	"sync"
)

// Reader reassembles a stream a Writer striped. Its Read and WriteTo must not
// be called concurrently; Close may be called at any time.
type Reader struct {
	rs      []io.Reader
	window  int
	started sync.Once

	mu       sync.Mutex
	cond     sync.Cond
	conns    []conn
	chunks   map[uint64]chunk // taken in, not yet delivered
	buffered int              // capacity of the buffers in chunks
	next     uint64           // the chunk to deliver next
	bytes    uint64           // bytes delivered
	ended    int              // connections past their end frame and at end of file
	haveEnd  bool             // an end frame gave endSeq and endBytes
	endSeq   uint64
	endBytes uint64
	err      error
	closed   bool

	cur    chunk // being delivered by Read
	curOff int
}

// conn is what the Reader knows of one connection.
type conn struct {
	// bound is the lowest chunk number the connection can still deliver:
	// the header it holds, or one past the last it took in; math.MaxUint64
	// once its end frame came.
	bound uint64
	// last is the highest chunk number seen on it, if any.
	last    uint64
	hasLast bool
}

type chunk struct {
	buf *[]byte
	n   int
}

var errClosed = errors.New("read from a closed stripe reader")

// NewReader reassembles what a Writer sent over rs, in order, the same
// connections in the same order on the other side. Read returns io.EOF only at
// the exact end: every connection ended with its end frame and they agree on
// the total. Anything else is a *StreamError naming the connection.
func NewReader(rs []io.Reader) *Reader {
	return newReader(rs, DefaultWindow)
}

func newReader(rs []io.Reader, window int) *Reader {
	if len(rs) == 0 {
		panic("stripe: NewReader with no connections")
	}
	r := &Reader{
		rs:     rs,
		window: window,
		conns:  make([]conn, len(rs)),
		chunks: make(map[uint64]chunk),
	}
	r.cond.L = &r.mu
	return r
}

func (r *Reader) start() {
	r.started.Do(func() {
		for i := range r.rs {
			go r.run(i)
		}
	})
}

func (r *Reader) streamError(i int, err error) error {
	return &StreamError{Stream: i + 1, Streams: len(r.rs), Err: err}
}

// failLocked records the first error and wakes everyone.
func (r *Reader) failLocked(i int, err error) {
	if r.err == nil && !r.closed {
		r.err = r.streamError(i, err)
	}
	r.cond.Broadcast()
}

func (r *Reader) stopped() bool { return r.err != nil || r.closed }

// run is connection i's goroutine: read each frame, take its chunk in when
// it is the next needed or fits the window, until the end frame and end of
// file, or anything fails.
func (r *Reader) run(i int) {
	var h [headerSize]byte
	src := r.rs[i]
	for {
		if _, err := io.ReadFull(src, h[:]); err != nil {
			r.mu.Lock()
			if err == io.EOF || err == io.ErrUnexpectedEOF {
				err = ErrEndedEarly
			}
			r.failLocked(i, err)
			r.mu.Unlock()
			return
		}
		typ, seq, value := parseHeader(h[:])
		switch typ {
		case typeData:
			if !r.data(i, src, seq, value) {
				return
			}
		case typeEnd:
			r.end(i, src, seq, value)
			return
		default:
			r.mu.Lock()
			r.failLocked(i, badFrame("unknown frame type %d", typ))
			r.mu.Unlock()
			return
		}
	}
}

// data takes in the data frame whose header run read; false means stop.
func (r *Reader) data(i int, src io.Reader, seq, length uint64) bool {
	r.mu.Lock()
	c := &r.conns[i]
	if err := r.admitLocked(c, seq, length); err != nil {
		r.failLocked(i, err)
		r.mu.Unlock()
		return false
	}
	c.last, c.hasLast, c.bound = seq, true, seq
	r.checkGapLocked(i)
	size := classSize(int(length))
	for !r.stopped() && seq != r.next && r.buffered+size > r.window {
		r.checkGapLocked(i)
		if r.stopped() {
			break
		}
		r.cond.Wait()
	}
	if r.stopped() {
		r.mu.Unlock()
		return false
	}
	r.buffered += size
	r.mu.Unlock()

	buf := getBuf(int(length))
	_, err := io.ReadFull(src, (*buf)[:length])

	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		putBuf(buf)
		r.buffered -= size
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			err = ErrEndedEarly
		}
		r.failLocked(i, err)
		return false
	}
	if _, dup := r.chunks[seq]; dup || seq < r.next {
		putBuf(buf)
		r.buffered -= size
		r.failLocked(i, badFrame("chunk %d came twice", seq))
		return false
	}
	if r.stopped() {
		putBuf(buf)
		r.buffered -= size
		return false
	}
	r.chunks[seq] = chunk{buf: buf, n: int(length)}
	c.bound = seq + 1
	r.checkGapLocked(i)
	r.cond.Broadcast()
	return !r.stopped()
}

// admitLocked checks a data frame's header against what came before.
func (r *Reader) admitLocked(c *conn, seq, length uint64) error {
	switch {
	case length == 0 || length > MaxChunk:
		return badFrame("chunk %d has length %d, not 1 to %d", seq, length, MaxChunk)
	case c.hasLast && seq <= c.last:
		return badFrame("chunk %d after chunk %d on the same connection", seq, c.last)
	case r.haveEnd && seq >= r.endSeq:
		return badFrame("chunk %d of a stream of %d chunks", seq, r.endSeq)
	case seq < r.next:
		return badFrame("chunk %d came twice", seq)
	}
	if _, dup := r.chunks[seq]; dup {
		return badFrame("chunk %d came twice", seq)
	}
	return nil
}

// end handles connection i's end frame, then expects end of file.
func (r *Reader) end(i int, src io.Reader, chunks, total uint64) {
	r.mu.Lock()
	c := &r.conns[i]
	switch {
	case r.haveEnd && (chunks != r.endSeq || total != r.endBytes):
		r.failLocked(i, badFrame("end frame says %d chunks, %d bytes; another said %d chunks, %d bytes",
			chunks, total, r.endSeq, r.endBytes))
		r.mu.Unlock()
		return
	case c.hasLast && c.last >= chunks:
		r.failLocked(i, badFrame("end frame says %d chunks after chunk %d", chunks, c.last))
		r.mu.Unlock()
		return
	}
	if !r.haveEnd {
		r.haveEnd, r.endSeq, r.endBytes = true, chunks, total
		for j := range r.conns {
			if o := &r.conns[j]; o.hasLast && o.last >= chunks {
				r.failLocked(j, badFrame("chunk %d of a stream of %d chunks", o.last, chunks))
				r.mu.Unlock()
				return
			}
		}
	}
	c.bound = math.MaxUint64
	r.checkGapLocked(i)
	r.mu.Unlock()

	var b [1]byte
	n, err := io.ReadFull(src, b[:])
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case n > 0:
		r.failLocked(i, badFrame("bytes after the end frame"))
	case err != io.EOF:
		r.failLocked(i, err)
	default:
		r.ended++
		r.cond.Broadcast()
	}
}

// checkGapLocked fails the stream when the next chunk is not here and no
// connection can still deliver it: each one's chunk numbers strictly
// increase, so one already past it never will.
func (r *Reader) checkGapLocked(i int) {
	if r.stopped() || (r.haveEnd && r.next >= r.endSeq) {
		return
	}
	if _, ok := r.chunks[r.next]; ok {
		return
	}
	for j := range r.conns {
		if r.conns[j].bound <= r.next {
			return
		}
	}
	if i < 0 {
		i = 0
		for j := range r.conns {
			if r.conns[j].bound < r.conns[i].bound {
				i = j
			}
		}
	}
	r.failLocked(i, badFrame("chunk %d is missing: every connection is past it", r.next))
}

// nextChunk waits for the next chunk in order. ok false with a nil error is
// the exact end of the stream.
func (r *Reader) nextChunk() (chunk, error) {
	r.start()
	r.mu.Lock()
	defer r.mu.Unlock()
	for {
		if r.err != nil {
			return chunk{}, r.err
		}
		if r.closed {
			return chunk{}, errClosed
		}
		if c, ok := r.chunks[r.next]; ok {
			delete(r.chunks, r.next)
			r.buffered -= cap(*c.buf)
			r.next++
			r.bytes += uint64(c.n)
			r.cond.Broadcast()
			r.checkGapLocked(-1)
			return c, nil
		}
		if r.ended == len(r.conns) {
			if r.next == r.endSeq && r.bytes == r.endBytes {
				return chunk{}, io.EOF
			}
			r.failLocked(len(r.conns)-1, badFrame("end frames say %d chunks, %d bytes; got %d chunks, %d bytes",
				r.endSeq, r.endBytes, r.next, r.bytes))
			continue
		}
		r.cond.Wait()
	}
}

// Read reads the stream in order.
func (r *Reader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if r.cur.buf == nil {
		c, err := r.nextChunk()
		if err != nil {
			return 0, err
		}
		r.cur, r.curOff = c, 0
	}
	n := copy(p, (*r.cur.buf)[r.curOff:r.cur.n])
	r.curOff += n
	if r.curOff == r.cur.n {
		putBuf(r.cur.buf)
		r.cur = chunk{}
	}
	return n, nil
}

// WriteTo writes the stream to w in order, each chunk from the buffer it
// was read into.
func (r *Reader) WriteTo(w io.Writer) (int64, error) {
	var total int64
	if r.cur.buf != nil {
		n, err := w.Write((*r.cur.buf)[r.curOff:r.cur.n])
		total += int64(n)
		if err != nil {
			return total, err
		}
		putBuf(r.cur.buf)
		r.cur = chunk{}
	}
	for {
		c, err := r.nextChunk()
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
		n, err := w.Write((*c.buf)[:c.n])
		putBuf(c.buf)
		total += int64(n)
		if err != nil {
			return total, err
		}
	}
}

// Close stops the Reader: its goroutines end as soon as their reads return,
// and it closes each connection that is an io.Closer so that blocked reads
// do. It does not wait for them.
func (r *Reader) Close() error {
	r.mu.Lock()
	already := r.closed
	r.closed = true
	for k, c := range r.chunks {
		putBuf(c.buf)
		delete(r.chunks, k)
	}
	r.buffered = 0
	r.cond.Broadcast()
	r.mu.Unlock()
	if already {
		return nil
	}
	var first error
	for _, src := range r.rs {
		if c, ok := src.(io.Closer); ok {
			if err := c.Close(); err != nil && first == nil {
				first = err
			}
		}
	}
	return first
}

// Buffers come from size-class pools, powers of two from 4 KiB to MaxChunk,
// so small frames do not each hold a MaxChunk buffer.
const (
	minClassShift = 12
	maxClassShift = 20
)

var pools [maxClassShift - minClassShift + 1]sync.Pool

func class(n int) int {
	if n <= 1<<minClassShift {
		return 0
	}
	return bits.Len(uint(n-1)) - minClassShift
}

func classSize(n int) int { return 1 << (class(n) + minClassShift) }

func getBuf(n int) *[]byte {
	k := class(n)
	if b, ok := pools[k].Get().(*[]byte); ok {
		return b
	}
	b := make([]byte, 1<<(k+minClassShift))
	return &b
}

func putBuf(b *[]byte) {
	pools[class(cap(*b))].Put(b)
}
