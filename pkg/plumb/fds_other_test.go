//go:build !linux

package plumb

import "golang.org/x/sys/unix"

// pipeCloexec and socketpairCloexec make close-on-exec descriptors: pipe(2) and socketpair(2),
// then fcntl(FD_CLOEXEC), where the flags of pipe2 and SOCK_CLOEXEC are not (macOS).
func pipeCloexec(p []int) error {
	if err := unix.Pipe(p); err != nil {
		return err
	}
	unix.CloseOnExec(p[0])
	unix.CloseOnExec(p[1])
	return nil
}

func socketpairCloexec() ([2]int, error) {
	sv, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM, 0)
	if err == nil {
		unix.CloseOnExec(sv[0])
		unix.CloseOnExec(sv[1])
	}
	return sv, err
}
