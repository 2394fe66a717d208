package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/socketpipe/socketpipe"
)

// The voice of socketpipe on standard error: every failure reaches here as a value and is
// printed once, as "socketpipe: error: " and the message, then a "socketpipe: hint: " line
// for each hint.

// report prints e and returns the status socketpipe exits with: 0 for nil.
func report(w io.Writer, e *socketpipe.Error) int {
	if e == nil {
		return 0
	}
	printError(w, e)
	return e.Status
}

func printError(w io.Writer, e *socketpipe.Error) {
	var said *sshVoice
	switch {
	case e.Silent:
	case errors.As(e.Err, &said):
		fmt.Fprintf(w, "ssh: %s\n", e.Msg)
	default:
		fmt.Fprintf(w, "socketpipe: error: %s\n", e.Error())
		for _, h := range e.Hints {
			fmt.Fprintf(w, "socketpipe: hint: %s\n", h)
		}
	}
}

// sshVoice is an error that socketpipe, run under the name ssh, says as ssh would: "ssh: "
// and the message, no hints.
type sshVoice struct{ err error }

func (e *sshVoice) Error() string { return e.err.Error() }
func (e *sshVoice) Unwrap() error { return e.err }
