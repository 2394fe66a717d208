package rendezvous

import (
	"net"
	"os"
	"syscall"
	"testing"
)

func noDelay(t *testing.T, f *os.File) bool {
	t.Helper()
	v, err := syscall.GetsockoptInt(int(f.Fd()), syscall.IPPROTO_TCP, syscall.TCP_NODELAY)
	if err != nil {
		t.Fatal(err)
	}
	return v != 0
}

func tcpConns(t *testing.T) (a, b *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	d, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close(); c.Close() })
	return d.(*net.TCPConn), c.(*net.TCPConn)
}

// TestTune: a connection the commands will hold gets the kernel's default (Nagle's algorithm
// on, which Go turns off); one socketpipe relays on turns it off; SetNoDelay switches a socket
// already handed over as a file.
func TestTune(t *testing.T) {
	a, b := tcpConns(t)
	if err := Tune(a, Liveness{}); err != nil {
		t.Fatal(err)
	}
	if err := TuneRelay(b, Liveness{}); err != nil {
		t.Fatal(err)
	}
	fa, err := a.File()
	if err != nil {
		t.Fatal(err)
	}
	defer fa.Close()
	fb, err := b.File()
	if err != nil {
		t.Fatal(err)
	}
	defer fb.Close()
	if noDelay(t, fa) {
		t.Errorf("Tune left TCP_NODELAY on")
	}
	if !noDelay(t, fb) {
		t.Errorf("TuneRelay left TCP_NODELAY off")
	}
	if err := SetNoDelay(fa, true); err != nil || !noDelay(t, fa) {
		t.Errorf("SetNoDelay(true): %v, TCP_NODELAY %v", err, noDelay(t, fa))
	}
	if err := SetNoDelay(fb, false); err != nil || noDelay(t, fb) {
		t.Errorf("SetNoDelay(false): %v, TCP_NODELAY %v", err, noDelay(t, fb))
	}
	if v, err := syscall.GetsockoptInt(int(fa.Fd()), syscall.SOL_SOCKET, syscall.SO_KEEPALIVE); err != nil || v == 0 {
		t.Errorf("Tune: SO_KEEPALIVE %d, %v; want it on", v, err)
	}
}
