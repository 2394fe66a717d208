package plumb

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"

	"github.com/socketpipe/socketpipe/internal/quote"
	"golang.org/x/sys/unix"
)

// Stage names, in pipeline order.
const (
	StageInput  = "input"
	StageRemote = "remote"
	StageOutput = "output"
)

// Stage is one command of the pipeline and how it ended.
type Stage struct {
	Name   string   `json:"name"`   // input, remote or output
	Argv   []string `json:"argv"`   // the command
	Ran    bool     `json:"ran"`    // it was started
	Exit   int      `json:"exit"`   // its exit status, or 128+signal when killed
	Signal string   `json:"signal"` // "KILL", "PIPE", ... when killed by a signal
	Err    string   `json:"error"`  // why it could not run, if it could not
}

// Failed reports whether the stage counts as failed for pipefail.
func (s *Stage) Failed() bool { return s.Exit != 0 }

// describe says how the stage ended, for an error message. The remote stage's signal name
// and error text are the remote half's words: they are made printable here.
func (s *Stage) describe() string {
	name := "command"
	if len(s.Argv) > 0 {
		name = fmt.Sprintf("%q", s.Argv[0])
	}
	switch {
	case s.Err != "":
		return fmt.Sprintf("%s command %s: %s", s.Name, name, quote.Printable(s.Err, 512))
	case s.Signal != "":
		return fmt.Sprintf("%s command %s was killed by SIG%s", s.Name, name, quote.Printable(s.Signal, 32))
	default:
		return fmt.Sprintf("%s command %s exited with status %d", s.Name, name, s.Exit)
	}
}

// SignalName returns a signal's name without "SIG".
func SignalName(sig syscall.Signal) string {
	n := unix.SignalName(sig)
	if n == "" {
		return fmt.Sprint(int(sig))
	}
	return strings.TrimPrefix(n, "SIG")
}

// SignalNumber returns the number of a signal named without "SIG", or 0.
func SignalNumber(name string) syscall.Signal {
	return unix.SignalNum("SIG" + name)
}

// setEnded records how a command that was started ended.
func (s *Stage) setEnded(err error) {
	s.Ran = true
	var ee *exec.ExitError
	if err == nil {
		s.Exit = 0
		return
	}
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			s.Signal = SignalName(ws.Signal())
			s.Exit = 128 + int(ws.Signal())
			return
		}
		s.Exit = ee.ExitCode()
		return
	}
	s.Exit = 1
	s.Err = err.Error()
}

// setStartError records a command that could not be started, with a shell's status for it.
func (s *Stage) setStartError(err error) {
	s.Exit = 126
	switch {
	case errors.Is(err, exec.ErrNotFound), errors.Is(err, os.ErrNotExist):
		s.Exit = 127
		s.Err = "not found"
	case errors.Is(err, os.ErrPermission):
		s.Err = "permission denied"
	default:
		s.Err = err.Error()
	}
}

// Pipefail returns the status of the rightmost failed stage, as a shell with pipefail does,
// and that stage; 0 and nil when all succeeded.
func Pipefail(stages []*Stage) (int, *Stage) {
	for i := len(stages) - 1; i >= 0; i-- {
		if s := stages[i]; s != nil && s.Failed() {
			return s.Exit, s
		}
	}
	return 0, nil
}

// command builds an exec.Cmd for argv, run without a shell; it dies with socketpipe.
func command(argv []string, stdin, stdout, stderr *os.File, ownGroup bool) *exec.Cmd {
	c := exec.Command(argv[0], argv[1:]...)
	// A nil *os.File must stay a nil interface: exec.Cmd then uses /dev/null.
	if stdin != nil {
		c.Stdin = stdin
	}
	if stdout != nil {
		c.Stdout = stdout
	}
	if stderr != nil {
		c.Stderr = stderr
	}
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: ownGroup}
	dieWithParent(c.SysProcAttr)
	return c
}
