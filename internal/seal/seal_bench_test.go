package seal

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"testing"
)

var benchFrameSizes = []int{16 << 10, 64 << 10, frameSize, maxFramePayload}

// BenchmarkSeal measures sealing alone: Write of whole frames to io.Discard.
func BenchmarkSeal(b *testing.B) {
	for _, c := range ciphers {
		for _, size := range benchFrameSizes {
			b.Run(fmt.Sprintf("%s/%dK", c, size>>10), func(b *testing.B) {
				clientSeal, _, _, _ := testKeys(b, c)
				s := newSealWriterSize(io.Discard, clientSeal, size)
				chunk := randomBytes(size, 1)
				b.SetBytes(int64(size))
				b.ReportAllocs()
				for b.Loop() {
					if _, err := s.Write(chunk); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkOpen measures reading and opening: a stream of 64 frames per op,
// from memory, written to io.Discard.
func BenchmarkOpen(b *testing.B) {
	for _, c := range ciphers {
		for _, size := range benchFrameSizes {
			b.Run(fmt.Sprintf("%s/%dK", c, size>>10), func(b *testing.B) {
				clientSeal, _, _, serverOpen := testKeys(b, c)
				plain := randomBytes(64*size, 2)
				stream := sealStream(b, clientSeal, plain, size)
				var br bytes.Reader
				o := NewOpenReader(&br, serverOpen)
				b.SetBytes(int64(len(plain)))
				b.ReportAllocs()
				for b.Loop() {
					br.Reset(stream)
					resetOpenReader(o, &br)
					if _, err := o.WriteTo(io.Discard); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkLoopbackTCP sends a stream over a loopback TCP connection, sealing
// on one goroutine and opening on another, against the same without -e.
func BenchmarkLoopbackTCP(b *testing.B) {
	for _, c := range append([]string{"plain"}, ciphers...) {
		b.Run(c, func(b *testing.B) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			defer ln.Close()
			w, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				b.Fatal(err)
			}
			defer w.Close()
			r, err := ln.Accept()
			if err != nil {
				b.Fatal(err)
			}
			defer r.Close()

			var send func(io.Reader) error
			var recv func() error
			if c == "plain" {
				send = func(src io.Reader) error { _, err := io.Copy(w, src); return err }
				recv = func() error { _, err := io.Copy(io.Discard, onlyReader{r}); return err }
			} else {
				clientSeal, _, _, serverOpen := testKeys(b, c)
				s := NewSealWriter(w, clientSeal)
				o := NewOpenReader(r, serverOpen)
				send = func(src io.Reader) error {
					if _, err := s.ReadFrom(src); err != nil {
						return err
					}
					return s.Close()
				}
				recv = func() error { _, err := o.WriteTo(io.Discard); return err }
			}
			b.SetBytes(frameSize)
			b.ReportAllocs()
			b.ResetTimer()
			sent := make(chan error, 1)
			go func() {
				err := send(&countingReader{n: int64(b.N) * frameSize})
				w.(*net.TCPConn).CloseWrite()
				sent <- err
			}()
			if err := recv(); err != nil {
				b.Fatal(err)
			}
			if err := <-sent; err != nil {
				b.Fatal(err)
			}
		})
	}
}
