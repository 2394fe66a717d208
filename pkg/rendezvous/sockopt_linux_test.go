package rendezvous

import (
	"bufio"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// polled reports whether descriptor fd is in one of this process's epoll sets (the Go
// poller's), from /proc/self/fdinfo.
func polled(t *testing.T, fd int) bool {
	t.Helper()
	fds, err := filepath.Glob("/proc/self/fd/*")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range fds {
		if l, _ := os.Readlink(p); l != "anon_inode:[eventpoll]" {
			continue
		}
		f, err := os.Open("/proc/self/fdinfo/" + filepath.Base(p))
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if w := strings.Fields(sc.Text()); len(w) >= 2 && w[0] == "tfd:" && w[1] == strconv.Itoa(fd) {
				f.Close()
				return true
			}
		}
		f.Close()
	}
	return false
}

// TestHandOver: the descriptor the commands get is blocking and out of the Go poller, which
// would otherwise wake this process for every segment the commands move.
func TestHandOver(t *testing.T) {
	a, b := tcpConns(t)
	// The control: File's duplicate is in the poller. If this fails, the test cannot see it.
	dup, err := b.File()
	if err != nil {
		t.Fatal(err)
	}
	if !polled(t, int(dup.Fd())) {
		t.Fatalf("(*net.TCPConn).File's descriptor %d is not in an epoll set: polled cannot see the poller", dup.Fd())
	}
	dup.Close()

	f, err := HandOver(a)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fd := int(f.Fd())
	if polled(t, fd) {
		t.Errorf("HandOver's descriptor %d is in the Go poller", fd)
	}
	if fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0); err != nil || fl&unix.O_NONBLOCK != 0 {
		t.Errorf("HandOver's descriptor: status flags %#x, %v; want blocking", fl, err)
	}
	if fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != nil || fl&unix.FD_CLOEXEC == 0 {
		t.Errorf("HandOver's descriptor: flags %#x, %v; want close-on-exec", fl, err)
	}
	if _, err := a.Write([]byte("x")); err == nil {
		t.Errorf("the net.Conn still works after HandOver")
	}
	// The socket itself is still open and connected.
	if _, err := f.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 5)
	if _, err := b.Read(buf); err != nil || string(buf) != "hello" {
		t.Fatalf("read %q, %v through the handed-over socket", buf, err)
	}
}
