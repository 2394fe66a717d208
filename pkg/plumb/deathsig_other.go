//go:build !freebsd && (!linux || portable)

package plumb

// Systems with no parent-death signal (macOS, OpenBSD, NetBSD, and Linux built with the
// portable tag): the kernel cannot kill a child when socketpipe dies, so a watch does. It is a
// pipe whose write end only socketpipe holds (close-on-exec) and a small sh that reads its other
// end: when socketpipe ends, however it ends, the kernel closes the write end, the read returns
// end of file, and the watch kills the command's process group. POSIX sh and kill(1) are all it
// needs, so it works the same on every Unix; no kqueue(2) EVFILT_PROC or polling of getppid(2).

import (
	"os"
	"os/exec"
	"strconv"
	"syscall"
)

// dieWithParent sets nothing: there is no prctl(PR_SET_PDEATHSIG) or procctl(PROC_PDEATHSIG_CTL)
// here; watchParent stands for it.
func dieWithParent(*syscall.SysProcAttr) {}

// watchScript kills process group $1 when its standard input reaches end of file. It ignores
// the hang-up and interrupt that may reach socketpipe's own group as that ends.
const watchScript = `trap '' HUP INT; read _; kill -s KILL -- -"$1" 2>/dev/null`

// watchParent starts the watch over process group pgid and returns the function that ends it
// (call it once the group's leader has been waited for). If the watch cannot start, the
// command still runs, as on a system with nothing to offer, and the remote half still kills
// the group when its control channel ends (Server).
func watchParent(pgid int) (stop func()) {
	r, w, err := os.Pipe()
	if err != nil {
		return func() {}
	}
	c := exec.Command("/bin/sh", "-c", watchScript, "socketpipe-watch", strconv.Itoa(pgid))
	c.Stdin = r
	// A group of its own: a signal to socketpipe's group must not take the watch with it.
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	err = c.Start()
	r.Close()
	if err != nil {
		w.Close()
		return func() {}
	}
	return func() {
		c.Process.Kill() // before w closes: a closed pipe is the watch's signal to kill
		c.Wait()
		w.Close()
	}
}
