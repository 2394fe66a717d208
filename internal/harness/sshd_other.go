//go:build !linux

package harness

import "syscall"

// dieWithTest sets nothing where there is no parent-death signal: Stop and the sweep of stale
// sshds (stale.go) end those a killed test binary leaves.
func dieWithTest() *syscall.SysProcAttr { return &syscall.SysProcAttr{} }
