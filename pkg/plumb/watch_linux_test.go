//go:build linux && !portable

package plumb

import (
	"io"
	"net"
	"testing"
	"time"
)

// TestWatchConnOrderlyEnd: on a real connection the watch names the peer, reads the kernel's
// state (in flight, then the end), and takes an orderly end for no loss.
func TestWatchConnOrderlyEnd(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	a, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	w := watchConn(a.(*net.TCPConn), newWatchRules(6*time.Second, shortLiveness))
	if w == nil {
		t.Fatal("no watch on a TCP connection")
	}
	defer w.end()
	if w.peer != ln.Addr().String() {
		t.Errorf("peer %q, want %q", w.peer, ln.Addr())
	}
	if _, err := a.Write(make([]byte, 1<<20)); err != nil {
		t.Fatal(err)
	}
	a.(*net.TCPConn).CloseWrite()
	if _, err := io.Copy(io.Discard, b); err != nil {
		t.Fatal(err)
	}
	b.(*net.TCPConn).CloseWrite()
	deadline := time.Now().Add(5 * time.Second)
	for {
		s, err := sampleConn(w.rc)
		if err != nil {
			t.Fatal(err)
		}
		if s.closed {
			if s.unacked != 0 {
				t.Errorf("closed with %d segments unacknowledged", s.unacked)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the connection did not end: %+v", s)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := w.check(); err != nil {
		t.Errorf("an orderly end: %v", err)
	}
	select {
	case <-w.lost():
		t.Errorf("an orderly end taken for a lost connection")
	default:
	}
}
