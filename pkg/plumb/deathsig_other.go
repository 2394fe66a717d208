//go:build !freebsd && (!linux || portable)

package plumb

// Systems with no parent-death signal (macOS, OpenBSD, NetBSD, and Linux built with the
// portable tag): the kernel cannot kill a child when socketpipe dies.

import "syscall"

// dieWithParent sets nothing: there is no prctl(PR_SET_PDEATHSIG) or procctl(PROC_PDEATHSIG_CTL)
// here. The remote half still kills the command's group when its control channel ends or the
// client goes silent (Server), which covers every ending but socketpipe itself being killed.
func dieWithParent(*syscall.SysProcAttr) {}
