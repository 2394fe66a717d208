//go:build darwin || freebsd || netbsd || openbsd

package sshlogin

import "golang.org/x/sys/unix"

// The ioctl(2) requests that read and set a terminal's termios on the BSDs and macOS: TIOCGETA
// and TIOCSETA (what tcgetattr(3) and tcsetattr(3) with TCSANOW call).
const (
	ioctlGetTermios = unix.TIOCGETA
	ioctlSetTermios = unix.TIOCSETA
)
