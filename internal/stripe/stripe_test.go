package stripe

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
)

// block is the repeating content of test streams. Its length is prime, so
// chunks delivered out of order never line up with a copy of themselves.
var block = func() []byte {
	b := make([]byte, 1_000_003)
	x := uint32(2463534242)
	for i := range b {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b[i] = byte(x)
	}
	return b
}()

// pattern yields n bytes of block, repeated, in reads of at most step bytes
// (every read full size when step is 0).
type pattern struct {
	off, n, step int
}

func (p *pattern) Read(b []byte) (int, error) {
	if p.n == 0 {
		return 0, io.EOF
	}
	if p.step > 0 && len(b) > p.step {
		b = b[:p.step]
	}
	if len(b) > p.n {
		b = b[:p.n]
	}
	n := copy(b, block[p.off%len(block):])
	p.off += n
	p.n -= n
	return n, nil
}

func patternSum(n int) [sha256.Size]byte {
	h := sha256.New()
	io.Copy(h, &pattern{n: n})
	var s [sha256.Size]byte
	h.Sum(s[:0])
	return s
}

// pipes returns n connections, their sending sides and receiving sides in
// the same order: in-process pipes, or loopback TCP.
func pipes(t testing.TB, kind string, n int) ([]io.WriteCloser, []io.Reader) {
	t.Helper()
	ws := make([]io.WriteCloser, n)
	rs := make([]io.Reader, n)
	switch kind {
	case "pipe":
		for i := range n {
			a, b := net.Pipe()
			ws[i], rs[i] = a, b
			t.Cleanup(func() { a.Close(); b.Close() })
		}
	case "tcp":
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		for i := range n {
			a, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			b, err := ln.Accept()
			if err != nil {
				t.Fatal(err)
			}
			ws[i], rs[i] = a, b
			t.Cleanup(func() { a.Close(); b.Close() })
		}
	default:
		t.Fatalf("no such connection kind %q", kind)
	}
	return ws, rs
}

// onlyReader and onlyWriter hide ReadFrom and WriteTo, so io.Copy takes the
// Read and Write paths.
type onlyReader struct{ io.Reader }
type onlyWriter struct{ io.Writer }

type sender struct {
	name string
	send func(w *Writer, n int) error
}

// writes sends n bytes of pattern through w.Write in pieces of the given sizes, in turn.
func writes(sizes ...int) func(w *Writer, n int) error {
	return func(w *Writer, n int) error {
		src := &pattern{n: n}
		buf := make([]byte, MaxChunk*4)
		for k := 0; src.n > 0; k++ {
			m, _ := io.ReadFull(src, buf[:min(sizes[k%len(sizes)], src.n)])
			if wn, err := w.Write(buf[:m]); err != nil || wn != m {
				return fmt.Errorf("Write of %d bytes: %d, %v", m, wn, err)
			}
		}
		return nil
	}
}

var senders = []sender{
	{"ReadFrom", func(w *Writer, n int) error {
		m, err := w.ReadFrom(&pattern{n: n})
		if err == nil && m != int64(n) {
			err = fmt.Errorf("ReadFrom took %d bytes of %d", m, n)
		}
		return err
	}},
	{"ReadFromOddReads", func(w *Writer, n int) error {
		_, err := w.ReadFrom(&pattern{n: n, step: 7919})
		return err
	}},
	{"TinyWrites", writes(1, 2, 3)},
	{"OddWrites", writes(7919, 1, 65537)},
	{"HugeWrites", writes(4*MaxChunk, 3*MaxChunk+5)},
}

type receiver struct {
	name string
	recv func(r *Reader, w io.Writer) (int64, error)
}

var receivers = []receiver{
	{"WriteTo", func(r *Reader, w io.Writer) (int64, error) { return r.WriteTo(w) }},
	{"Read", func(r *Reader, w io.Writer) (int64, error) {
		return io.CopyBuffer(onlyWriter{w}, onlyReader{r}, make([]byte, 10007))
	}},
}

// roundTrip sends n bytes over conns connections and checks what arrives.
func roundTrip(t *testing.T, kind string, conns, n int, s sender, rc receiver) {
	ws, rs := pipes(t, kind, conns)
	w := NewWriter(ws)
	r := NewReader(rs)
	defer r.Close()
	var sendErr error
	var wg sync.WaitGroup
	wg.Go(func() {
		sendErr = s.send(w, n)
		if err := w.Close(); sendErr == nil {
			sendErr = err
		}
	})
	h := sha256.New()
	got, err := rc.recv(r, h)
	wg.Wait()
	if sendErr != nil {
		t.Fatalf("sending: %v", sendErr)
	}
	if err != nil {
		t.Fatalf("receiving: %v", err)
	}
	if got != int64(n) {
		t.Fatalf("received %d bytes, sent %d", got, n)
	}
	if want := patternSum(n); !bytes.Equal(h.Sum(nil), want[:]) {
		t.Fatalf("the %d bytes received differ from those sent", n)
	}
	if _, err := r.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("Read after the end: %v, want io.EOF", err)
	}
}

// Every way of sending, every way of receiving, over one, two and eight
// connections, arrives byte for byte.
func TestRoundTrip(t *testing.T) {
	for _, kind := range []string{"pipe", "tcp"} {
		for _, conns := range []int{1, 2, 8} {
			for _, s := range senders {
				for _, rc := range receivers {
					n := 3*MaxChunk + 12345
					if s.name == "TinyWrites" {
						n = 50_000
					}
					t.Run(fmt.Sprintf("%s/%d/%s/%s", kind, conns, s.name, rc.name), func(t *testing.T) {
						roundTrip(t, kind, conns, n, s, rc)
					})
				}
			}
		}
	}
}

// 64 MiB over loopback TCP arrives byte for byte, on both paths (4 MiB in -short mode: the
// test runs in every mode, never skips).
func TestRoundTripLarge(t *testing.T) {
	size := 64 << 20
	if testing.Short() {
		size = 4 << 20
	}
	for _, conns := range []int{1, 8} {
		for _, rc := range receivers {
			t.Run(fmt.Sprintf("%d/%s", conns, rc.name), func(t *testing.T) {
				roundTrip(t, "tcp", conns, size, senders[0], rc)
			})
		}
	}
}

// An empty stream is a stream: end frames only, and the reader's io.EOF.
func TestEmpty(t *testing.T) {
	for _, write := range []bool{false, true} {
		ws, rs := pipes(t, "pipe", 3)
		w := NewWriter(ws)
		r := NewReader(rs)
		go func() {
			if write {
				w.Write(nil)
				w.ReadFrom(bytes.NewReader(nil))
			}
			w.Close()
		}()
		if n, err := r.Read(make([]byte, 10)); n != 0 || err != io.EOF {
			t.Fatalf("Read of an empty stream: %d, %v; want 0, io.EOF", n, err)
		}
		r.Close()
	}
}
