//go:build darwin || freebsd

package plumb

import (
	"runtime"

	"golang.org/x/sys/unix"
)

// tcpWindows returns the largest send and receive buffers the kernel's autotuning gives one
// TCP connection: net.inet.tcp.autosndbufmax and autorcvbufmax on macOS, sendbuf_max and
// recvbuf_max on FreeBSD. 0 when unreadable.
func tcpWindows() (send, recv int64) {
	s, r := "net.inet.tcp.sendbuf_max", "net.inet.tcp.recvbuf_max"
	if runtime.GOOS == "darwin" {
		s, r = "net.inet.tcp.autosndbufmax", "net.inet.tcp.autorcvbufmax"
	}
	return sysctlInt(s), sysctlInt(r)
}

func sysctlInt(name string) int64 {
	n, err := unix.SysctlUint32(name)
	if err != nil {
		return 0
	}
	return int64(n)
}
