package plumb

import "golang.org/x/sys/unix"

// pipeCloexec and socketpairCloexec make close-on-exec descriptors in one call: pipe2(2) and
// socketpair(2) with SOCK_CLOEXEC.
func pipeCloexec(p []int) error { return unix.Pipe2(p, unix.O_CLOEXEC) }

func socketpairCloexec() ([2]int, error) {
	return unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
}
