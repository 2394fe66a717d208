package rendezvous

import (
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestKeepaliveFitsBound: an idle data connection to a dead peer ends within the bound a silent
// control channel gets (30 s by default): Tune gives the socket keepalive whose idle time plus
// its unanswered probes is no longer than that.
func TestKeepaliveFitsBound(t *testing.T) {
	a, _ := tcpConns(t)
	if err := Tune(a, Liveness{}); err != nil {
		t.Fatal(err)
	}
	rc, err := a.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	lv := Liveness{}.WithDefaults()
	var idle, intvl, cnt int
	var errs [3]error
	rc.Control(func(fd uintptr) {
		idle, errs[0] = syscall.GetsockoptInt(int(fd), syscall.IPPROTO_TCP, unix.TCP_KEEPIDLE)
		intvl, errs[1] = syscall.GetsockoptInt(int(fd), syscall.IPPROTO_TCP, unix.TCP_KEEPINTVL)
		cnt, errs[2] = syscall.GetsockoptInt(int(fd), syscall.IPPROTO_TCP, unix.TCP_KEEPCNT)
	})
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	got := time.Duration(idle)*time.Second + time.Duration(cnt*intvl)*time.Second
	if want := lv.KeepIdle + time.Duration(lv.KeepCount)*lv.KeepInterval; got != want {
		t.Errorf("the socket's keepalive gives up after %v (idle %d s, %d probes %d s apart), want %v", got, idle, cnt, intvl, want)
	}
	if got > PingDeadAfter(lv.PingInterval) {
		t.Errorf("the socket's keepalive gives up after %v, beyond the bound %v", got, PingDeadAfter(lv.PingInterval))
	}
}
