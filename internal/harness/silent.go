package harness

import (
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// SilentListener takes connections and never says a word, as a port that a hostile peer names
// for the other side to dial: every dial reaches it and then waits. Count says how many came.
type SilentListener struct {
	ln    net.Listener
	n     atomic.Int64
	mu    sync.Mutex
	conns []net.Conn
}

// NewSilentListener listens on ip at an ephemeral port, in the test's own network namespace,
// until the test ends.
func NewSilentListener(t testing.TB, ip string) *SilentListener {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatal(err)
	}
	s := &SilentListener{ln: ln}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.n.Add(1)
			s.mu.Lock()
			s.conns = append(s.conns, c)
			s.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		s.mu.Lock()
		for _, c := range s.conns {
			c.Close()
		}
		s.mu.Unlock()
	})
	return s
}

// Addr is the listening address, host:port.
func (s *SilentListener) Addr() string { return s.ln.Addr().String() }

// Port is the listening port.
func (s *SilentListener) Port() int { return s.ln.Addr().(*net.TCPAddr).Port }

// Reached reports whether a connection came yet.
func (s *SilentListener) Reached() bool { return s.n.Load() > 0 }

// Count waits a moment for connections still in the listen queue, then says how many came:
// call it once the dialling side is done.
func (s *SilentListener) Count() int {
	time.Sleep(100 * time.Millisecond) // the dials are over; let the accepts catch up
	return int(s.n.Load())
}
