package sshlogin

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"syscall"

	"golang.org/x/sys/unix"
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
	if c.BatchMode && isSSH(c.Login[0]) {
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
		return nil, fmt.Errorf("sshlogin: %w", err)
	}
	return &execRun{cmd: cmd}, nil
}

func (e *execRun) wait() error {
	err := e.cmd.Wait()
	var xe *exec.ExitError
	if errors.As(err, &xe) {
		if ws, ok := xe.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			sig := ws.Signal()
			return &ExitError{Status: 128 + int(sig), Signal: signalName(sig)}
		}
		return &ExitError{Status: xe.ExitCode()}
	}
	if err != nil {
		return fmt.Errorf("sshlogin: %w", err)
	}
	return nil
}

func (e *execRun) close() error {
	if e.cmd.ProcessState != nil {
		return nil
	}
	err := e.cmd.Process.Kill()
	if errors.Is(err, os.ErrProcessDone) {
		return nil
	}
	return err
}

// signalName is "KILL" for SIGKILL, as ssh's exit-signal message spells signals.
func signalName(sig syscall.Signal) string {
	name := unix.SignalName(sig)
	if len(name) > 3 && name[:3] == "SIG" {
		return name[3:]
	}
	return fmt.Sprint(int(sig))
}
