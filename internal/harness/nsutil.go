//go:build linux

package harness

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

const netnsRunDir = "/run/netns"

// addNetns creates a named network namespace with its loopback up. `ip netns add` makes
// /run/netns a shared mount point the first time it runs; concurrent first calls (parallel test
// binaries) can trip over each other, so creation is serialised with a lock file.
func addNetns(name string) error {
	unlock, err := lockFile("/run/socketpipe-harness-netns.lock")
	if err != nil {
		return err
	}
	out, err := exec.Command("ip", "netns", "add", name).CombinedOutput()
	unlock()
	if err != nil {
		return fmt.Errorf("ip netns add %s: %v: %s", name, err, strings.TrimSpace(string(out)))
	}
	if out, err := exec.Command("ip", "-n", name, "link", "set", "lo", "up").CombinedOutput(); err != nil {
		deleteNetns(name)
		return fmt.Errorf("ip -n %s link set lo up: %v: %s", name, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// deleteNetns kills every process still in the namespace and removes its name; the kernel frees
// the namespace (and the veth ends inside it) when the last reference goes.
func deleteNetns(name string) error {
	if out, err := exec.Command("ip", "netns", "pids", name).Output(); err == nil {
		var pids []int
		for _, f := range strings.Fields(string(out)) {
			var pid int
			if _, err := fmt.Sscan(f, &pid); err == nil && pid != os.Getpid() {
				pids = append(pids, pid)
			}
		}
		killAndReap(pids)
	}
	if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
		return fmt.Errorf("ip netns del %s: %v: %s", name, err, strings.TrimSpace(string(out)))
	}
	return nil
}

func lockFile(path string) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("harness: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("harness: flock %s: %w", path, err)
	}
	return func() { f.Close() }, nil
}

// inNetns runs fn on an OS thread that has joined the named network namespace ("" means the
// current one). Sockets keep the namespace they were created in, so a listener or connection
// made by fn can be used from any goroutine afterwards. Only the network namespace changes:
// fn must not start processes (use Host.Command for that).
func inNetns(name string, fn func() error) error {
	if name == "" {
		return fn()
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("harness: %w", err)
			return
		}
		defer orig.Close()
		target, err := os.Open(filepath.Join(netnsRunDir, name))
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("harness: network namespace %s: %w", name, err)
			return
		}
		defer target.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("harness: setns %s: %w", name, err)
			return
		}
		ferr := fn()
		if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
			// The thread stays locked, so the runtime discards it when this goroutine ends
			// instead of running other goroutines in the wrong namespace.
			errc <- fmt.Errorf("harness: setns back from %s: %w", name, err)
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}
