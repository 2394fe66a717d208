package plumb

import (
	"os"
	"strconv"
	"strings"
)

// tcpWindows returns the largest send and receive buffers Linux's autotuning gives one TCP
// connection: the third figures of net.ipv4.tcp_wmem and tcp_rmem. 0 when unreadable.
func tcpWindows() (send, recv int64) {
	return sysctlMax("/proc/sys/net/ipv4/tcp_wmem"), sysctlMax("/proc/sys/net/ipv4/tcp_rmem")
}

func sysctlMax(path string) int64 {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) != 3 {
		return 0
	}
	n, err := strconv.ParseInt(f[2], 10, 64)
	if err != nil || n < 0 {
		return 0
	}
	return n
}
