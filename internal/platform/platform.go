// Package platform tells what this machine and system offer that socketpipe's choices depend
// on: AES instructions for AES-GCM, and the names of signals.
package platform

import (
	"fmt"
	"runtime"
	"strings"
	"syscall"

	"golang.org/x/sys/cpu"
	"golang.org/x/sys/unix"
)

// HasAESGCM reports whether this CPU runs Go's AES-GCM in hardware (the instructions its
// assembly needs), which makes it faster than ChaCha20-Poly1305.
func HasAESGCM() bool {
	switch runtime.GOARCH {
	case "amd64":
		return cpu.X86.HasAES && cpu.X86.HasPCLMULQDQ && cpu.X86.HasSSE41 && cpu.X86.HasSSSE3
	case "arm64":
		return cpu.ARM64.HasAES && cpu.ARM64.HasPMULL
	case "s390x":
		return cpu.S390X.HasAES && cpu.S390X.HasAESCTR && cpu.S390X.HasGHASH
	case "ppc64", "ppc64le":
		return true // POWER8 and later, Go's minimum
	}
	return false
}

// SignalName returns a signal's name without "SIG" ("TERM"), or its number if it has none.
func SignalName(sig syscall.Signal) string {
	n := unix.SignalName(sig)
	if n == "" {
		return fmt.Sprint(int(sig))
	}
	return strings.TrimPrefix(n, "SIG")
}

// SignalNumber returns the number of a signal named without "SIG" on this system, or 0.
func SignalNumber(name string) syscall.Signal {
	return unix.SignalNum("SIG" + name)
}
