package harness

import "syscall"

// dieWithTest makes sshd die with the test binary: prctl(PR_SET_PDEATHSIG), so a -timeout
// panic, which skips every Cleanup, leaves no sshd behind.
func dieWithTest() *syscall.SysProcAttr { return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} }
