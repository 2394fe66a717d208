package sshlogin

import "golang.org/x/sys/unix"

// The ioctl(2) requests that read and set a terminal's termios on Linux: TCGETS and TCSETS.
const (
	ioctlGetTermios = unix.TCGETS
	ioctlSetTermios = unix.TCSETS
)
