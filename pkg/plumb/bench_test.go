package plumb

import (
	"io"
	"net"
	"os"
	"strings"
	"sync/atomic"
	"testing"
)

func BenchmarkParseArgs(b *testing.B) {
	for _, bm := range []struct{ name, line string }{
		{"original", "-b -i { tar cf - / } -l { ssh remotehost } -r { bzip2 -c } -o { dd of=/dev/st0 bs=32k }"},
		{"nested", "-l { ssh h } -r { socketpipe -i { cat } -l { ssh c } -r { cat } -o { cat } } -o { cat } -t 2.5 -m reverse -e --cipher=chacha20-poly1305"},
	} {
		args := strings.Fields(bm.line)
		b.Run(bm.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := ParseArgs(args); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkCopy measures the relay (used where the commands cannot hold the socket) moving
// b.N MiB: from a TCP socket into a pipe (one splice), between two TCP sockets (splice through
// a pipe of its own), and through the reused buffer when the kernel cannot splice.
func BenchmarkCopy(b *testing.B) {
	const chunk = 1 << 20
	b.Run("tcp-to-pipe", func(b *testing.B) {
		src, feed := tcpPair(b)
		dst, drain := pipePair(b)
		benchCopy(b, chunk, feed, src, dst, drain, Copy)
	})
	b.Run("tcp-to-tcp", func(b *testing.B) {
		src, feed := tcpPair(b)
		drain, dst := tcpPair(b)
		benchCopy(b, chunk, feed, src, dst, drain, Copy)
	})
	b.Run("buffer", func(b *testing.B) {
		src, feed := tcpPair(b)
		drain, dst := tcpPair(b)
		benchCopy(b, chunk, feed, src, dst, drain, func(dst, src *os.File, _ *atomic.Int64) (int64, error) {
			return copyBuffer(dst, src, nil)
		})
	})
}

type copyFunc = func(dst, src *os.File, n *atomic.Int64) (int64, error)

func benchCopy(b *testing.B, chunk int, feed, src, dst, drain *os.File, copy copyFunc) {
	b.ReportAllocs()
	b.SetBytes(int64(chunk))
	buf := make([]byte, chunk)
	n := b.N
	go func() {
		for i := 0; i < n; i++ {
			if _, err := feed.Write(buf); err != nil {
				break
			}
		}
		feed.Close()
	}()
	drained := make(chan int64)
	go func() {
		m, _ := io.CopyBuffer(io.Discard, drain, make([]byte, chunk))
		drained <- m
	}()
	b.ResetTimer()
	moved, err := copy(dst, src, nil)
	dst.Close()
	got := <-drained
	b.StopTimer()
	if err != nil || moved != int64(n)*int64(chunk) || got != moved {
		b.Fatalf("moved %d, drained %d, want %d: %v", moved, got, int64(n)*int64(chunk), err)
	}
}

// tcpPair returns the two ends of a loopback TCP connection as files: r is the accepting end,
// w the dialling one.
func tcpPair(b *testing.B) (r, w *os.File) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	d, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	a, err := ln.Accept()
	if err != nil {
		b.Fatal(err)
	}
	r, err = a.(*net.TCPConn).File()
	if err != nil {
		b.Fatal(err)
	}
	w, err = d.(*net.TCPConn).File()
	if err != nil {
		b.Fatal(err)
	}
	a.Close()
	d.Close()
	b.Cleanup(func() { r.Close(); w.Close() })
	return r, w
}

func pipePair(b *testing.B) (w, r *os.File) {
	r, w, err := os.Pipe()
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { r.Close(); w.Close() })
	return w, r
}
