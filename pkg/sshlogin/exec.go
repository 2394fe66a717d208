package sshlogin

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"

	"github.com/socketpipe/socketpipe/internal/platform"
)

// execRun is a login command running as a child process.
type execRun struct {
	cmd *exec.Cmd
}

// execStart starts the login command with the remote command line as its last word. The
// child stays in our process group, so that ssh can still read a password from /dev/tty,
// but it never gets the terminal as stdin or stdout: those are pipes or /dev/null.
func (c *Cmd) execStart(ctx context.Context) (*execRun, error) {
	args := append([]string(nil), c.Login[1:]...)
	if c.Subsystem && IsSSH(c.Login[0]) {
		args = append([]string{"-s"}, args...)
	}
	if c.BatchMode && IsSSH(c.Login[0]) {
		args = append([]string{"-oBatchMode=yes"}, args...)
	}
	args = append(args, c.Command)
	cmd := exec.Command(c.Login[0], args...)
	cmd.Stdin = c.Stdin
	cmd.Stdout = c.Stdout
	cmd.Stderr = c.Stderr
	if c.stdinPipe != nil {
		w, err := cmd.StdinPipe()
		if err != nil {
			return nil, err
		}
		c.stdinPipe.set(w)
	}
	if c.stdoutPipe != nil {
		r, err := cmd.StdoutPipe()
		if err != nil {
			return nil, err
		}
		c.stdoutPipe.set(r)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("login command: %w", err)
	}
	return &execRun{cmd: cmd}, nil
}

func (e *execRun) wait() error {
	err := e.cmd.Wait()
	var xe *exec.ExitError
	if errors.As(err, &xe) {
		if ws, ok := xe.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			sig := ws.Signal()
			return &ExitError{Status: 128 + int(sig), Signal: platform.SignalName(sig)}
		}
		return &ExitError{Status: xe.ExitCode()}
	}
	if err != nil {
		return fmt.Errorf("login command: %w", err)
	}
	return nil
}

// close kills the login command and what it started that still runs under it: a wrapper
// script's children (a ProxyCommand, a sleep) would otherwise outlive the run, holding the
// control channel's pipes open. The login shares our process group (see execStart), so its
// descendants are found through /proc rather than killed as a group.
func (e *execRun) close() error {
	if e.cmd.ProcessState != nil {
		return nil
	}
	kids := descendants(e.cmd.Process.Pid)
	err := e.cmd.Process.Kill()
	for _, pid := range kids {
		syscall.Kill(pid, syscall.SIGKILL)
	}
	if errors.Is(err, os.ErrProcessDone) {
		return nil
	}
	return err
}

// descendants returns the pids of the processes under pid (children first), from the parent
// pids in /proc; nil where /proc cannot be read.
func descendants(pid int) []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	children := map[int][]int{}
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// The parent pid is the second field after the command name, which is in
		// parentheses and may contain anything.
		i := bytes.LastIndexByte(stat, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(stat[i+1:]))
		if len(f) < 2 {
			continue
		}
		if pp, err := strconv.Atoi(f[1]); err == nil {
			children[pp] = append(children[pp], p)
		}
	}
	var out []int
	queue := []int{pid}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, c := range children[p] {
			out = append(out, c)
			queue = append(queue, c)
		}
	}
	return out
}
