package platform

import (
	"syscall"
	"testing"
)

func TestSignalNames(t *testing.T) {
	for _, s := range []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL, syscall.SIGPIPE, syscall.SIGINT, syscall.SIGHUP} {
		n := SignalName(s)
		if n == "" || n[:1] == "S" && n != "SEGV" && n != "STOP" {
			t.Errorf("SignalName(%d) = %q", s, n)
		}
		if got := SignalNumber(n); got != s {
			t.Errorf("SignalNumber(%q) = %d, want %d", n, got, s)
		}
	}
	if got := SignalName(syscall.Signal(200)); got != "200" {
		t.Errorf("SignalName(200) = %q", got)
	}
	if got := SignalNumber("NOSUCH"); got != 0 {
		t.Errorf("SignalNumber(NOSUCH) = %d", got)
	}
}
