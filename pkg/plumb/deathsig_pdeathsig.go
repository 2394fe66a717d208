//go:build (linux && !portable) || freebsd

package plumb

// A child's death with its parent where the kernel offers it: prctl(PR_SET_PDEATHSIG) on
// Linux, procctl(PROC_PDEATHSIG_CTL) on FreeBSD, both behind SysProcAttr.Pdeathsig.

import "syscall"

// dieWithParent has the kernel kill the child when socketpipe dies.
func dieWithParent(a *syscall.SysProcAttr) { a.Pdeathsig = syscall.SIGKILL }

// watchParent has nothing to do: the kernel watches (dieWithParent).
func watchParent(pgid int) (stop func()) { return func() {} }
