package socketpipe

import (
	"fmt"
	"strings"
)

// Exit statuses of socketpipe's own; any other status is a stage's (pipefail) or, in ssh
// mode, the remote command's.
const (
	ExitUsage   = 1   // a command-line mistake
	ExitFailure = 2   // socketpipe itself failed: the login, the remote half, the data connection
	ExitSSH     = 255 // ssh mode's failure, as ssh's own, which tools such as rsync recognise
)

// Error is a run that failed, as socketpipe reports it: what failed, in words a user reads,
// what to do about it, and the exit status the run ends with. Every error Run returns is an
// *Error; its cause, if any, is Unwrap's.
type Error struct {
	Msg    string   // what failed: one line, lowercase, no final period
	Hints  []string // what to do about it, or what else was seen, a line each
	Status int      // the exit status: ExitFailure, ExitSSH, a stage's status, ...
	// Silent is an error that the status tells all about: in ssh mode, as with ssh, a remote
	// command's non-zero status is not socketpipe's to report.
	Silent bool
	Err    error // the cause, or nil
}

// Error is the message, as printed: without a final period or newline.
func (e *Error) Error() string { return strings.TrimRight(e.Msg, ".\n") }

func (e *Error) Unwrap() error { return e.Err }

// failure is an *Error of socketpipe's own: status, message and cause.
func failure(status int, err error, format string, args ...any) *Error {
	return &Error{Msg: fmt.Sprintf(format, args...), Status: status, Err: err}
}

// hint adds a hint line.
func (e *Error) hint(format string, args ...any) *Error {
	e.Hints = append(e.Hints, fmt.Sprintf(format, args...))
	return e
}

// An SSHNeededError is a run in ssh mode that only the ssh binary can serve: an executed ssh
// login whose server forces a command. A command line such as socketpipe --ssh then runs ssh
// with its arguments in its own place; a program has the Reason to tell.
type SSHNeededError struct{ Reason string }

func (e *SSHNeededError) Error() string { return "only the ssh binary can serve " + e.Reason }
