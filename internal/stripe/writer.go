package stripe

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"sync"
)

// Writer stripes one stream over several connections. Its methods must not
// be called concurrently.
type Writer struct {
	ws       []io.WriteCloser
	chunk    int
	jobs     []chan *job
	job      job
	br       bytes.Reader
	exited   sync.WaitGroup
	started  bool
	closed   bool
	closeErr error

	mu    sync.Mutex // one read of the source at a time; numbers chunks
	seq   uint64
	total uint64

	errMu sync.Mutex
	err   error
}

// job is one Write or ReadFrom: its source, shared by every connection's
// goroutine until it hits end of file.
type job struct {
	src  io.Reader
	eof  bool // guarded by Writer.mu
	n    int64
	done sync.WaitGroup
}

// NewWriter stripes one stream over ws, each one connection's sending side (a
// TCP conn, or with -e a seal writer over one). Close writes every
// connection's end frame, then closes each of ws (the caller's Close does the
// half-close). ws must not be empty.
func NewWriter(ws []io.WriteCloser) *Writer {
	return newWriter(ws, DefaultChunk)
}

func newWriter(ws []io.WriteCloser, chunk int) *Writer {
	if len(ws) == 0 {
		panic("stripe: NewWriter with no connections")
	}
	if chunk < 1 || chunk > MaxChunk {
		panic("stripe: chunk size out of range")
	}
	return &Writer{ws: ws, chunk: chunk}
}

// Write sends p, returning once all of it has been written to the
// connections. On error, n is how much of p was taken from it.
func (w *Writer) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, w.error()
	}
	w.br.Reset(p)
	n, err := w.feed(&w.br)
	w.br.Reset(nil)
	return int(n), err
}

// ReadFrom sends everything r yields until end of file, one goroutine per
// connection, each taking the next chunk as soon as it is free to send it. It
// returns once every chunk has been written.
func (w *Writer) ReadFrom(r io.Reader) (int64, error) {
	return w.feed(r)
}

func (w *Writer) feed(src io.Reader) (int64, error) {
	if w.closed {
		return 0, errors.New("write to a closed stripe writer")
	}
	if err := w.error(); err != nil {
		return 0, err
	}
	if !w.started {
		w.start()
	}
	w.job = job{src: src}
	w.job.done.Add(len(w.ws))
	for _, c := range w.jobs {
		c <- &w.job
	}
	w.job.done.Wait()
	n := w.job.n
	w.job.src = nil
	return n, w.error()
}

func (w *Writer) start() {
	w.started = true
	w.jobs = make([]chan *job, len(w.ws))
	w.exited.Add(len(w.ws))
	for i := range w.ws {
		w.jobs[i] = make(chan *job, 1)
		go w.run(i)
	}
}

// run is connection i's goroutine: for each job, take the next chunk of the
// source, number it, send it, until the source ends or anything fails.
func (w *Writer) run(i int) {
	defer w.exited.Done()
	buf := make([]byte, headerSize+w.chunk)
	for j := range w.jobs[i] {
		for w.error() == nil {
			w.mu.Lock()
			if j.eof {
				w.mu.Unlock()
				break
			}
			n, err := j.src.Read(buf[headerSize:])
			seq := w.seq
			if err != nil && err != io.EOF {
				j.eof = true
				w.mu.Unlock()
				w.fail(err)
				break
			}
			if err == io.EOF {
				j.eof = true
			}
			if n > 0 {
				w.seq++
				w.total += uint64(n)
				j.n += int64(n)
			}
			w.mu.Unlock()
			if n > 0 {
				putHeader(buf, typeData, seq, uint64(n))
				if _, err := w.ws[i].Write(buf[:headerSize+n]); err != nil {
					w.fail(w.streamError(i, err))
					break
				}
			}
		}
		j.done.Done()
	}
}

func (w *Writer) streamError(i int, err error) error {
	return &StreamError{Stream: i + 1, Streams: len(w.ws), Err: err}
}

func (w *Writer) fail(err error) {
	w.errMu.Lock()
	if w.err == nil {
		w.err = err
	}
	w.errMu.Unlock()
}

func (w *Writer) error() error {
	w.errMu.Lock()
	defer w.errMu.Unlock()
	return w.err
}

// Close ends the stream: it writes every connection's end frame, then closes
// each connection. After an error (a connection's write, the source's read)
// it closes every connection without end frames, so the peer fails too, and
// returns that error.
func (w *Writer) Close() error {
	if w.closed {
		return w.closeErr
	}
	w.closed = true
	if w.started {
		for _, c := range w.jobs {
			close(c)
		}
		w.exited.Wait()
	}
	err := w.error()
	if err == nil {
		var end [headerSize]byte
		putHeader(end[:], typeEnd, w.seq, w.total)
		// Every connection that can take its end frame gets it, so the
		// peer names the one that failed rather than whichever it hears of first.
		for i, c := range w.ws {
			if _, werr := c.Write(end[:]); werr != nil && err == nil {
				err = w.streamError(i, fmt.Errorf("writing the end frame: %w", werr))
			}
		}
	}
	for i, c := range w.ws {
		if cerr := c.Close(); cerr != nil && err == nil {
			err = w.streamError(i, cerr)
		}
	}
	w.closeErr = err
	return err
}
